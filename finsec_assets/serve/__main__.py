"""``python -m finsec_assets.serve --host 127.0.0.1 --port 8000``: the service under uvicorn.

It reads the same settings as the graph (FINSEC_HOME, FINSEC_OBJECT_STORE_URL, ...) plus FINSEC_SERVE_*.
Binding to anything but loopback needs FINSEC_SERVE_TOKEN: an open port must not serve models to anyone.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..settings import ServeSettings, Settings, SettingsError, is_loopback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finsec_assets.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--no-access-log", action="store_true", help="do not log one line per request")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        serve = ServeSettings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if serve.token is None and not is_loopback(args.host):
        print(f"error: refusing to bind {args.host!r} without a token: set FINSEC_SERVE_TOKEN (clients then send "
              "'Authorization: Bearer <token>') or bind 127.0.0.1", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"error: --port {args.port}: expected 1-65535", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import uvicorn

    from .app import create_app

    app = create_app(settings, serve)
    print(f"finsec-assets serving on http://{args.host}:{args.port} (OpenAPI: /docs; FINSEC_HOME={settings.home}; "
          f"auth: {'bearer token' if serve.token else 'none, loopback only'})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=not args.no_access_log,
                timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
