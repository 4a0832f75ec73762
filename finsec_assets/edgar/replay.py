"""A real HTTP server on 127.0.0.1 that replays EDGAR files laid out like EDGAR's URLs.

It serves both hosts (``/files``, ``/Archives`` for www.sec.gov; ``/submissions``,
``/api`` for data.sec.gov), sends stored ``NAME.gz`` files gzip-encoded as EDGAR
does, records the time of every request, and injects faults on demand (429 with
Retry-After, 503, dropped connections, slow or truncated responses, bad JSON).
Tests and benchmarks use it; so can anyone who wants to run live mode offline:
``python -m finsec_assets.edgar.replay --root path/to/edgar --port 8765``.

It also answers the requests that scale: the quarterly full-index (``/Archives/edgar/full-index/YYYY/QTRn/
{master,company,form}.idx``) and the nightly bulk archives (``/Archives/edgar/daily-index/bulkdata/submissions.zip``,
``/Archives/edgar/daily-index/xbrl/companyfacts.zip``), synthesized from the files under ``root``. Given a
``SyntheticUniverse`` (``--synthetic N --quarters 2015Q1:2024Q4 --seed 0``) it serves that universe first, then
the files under ``root``.
"""

from __future__ import annotations

import argparse
import collections
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .client import SAMPLE_DIR
from .synthetic import SyntheticUniverse, TreeIndex


class ReplayServer:
    def __init__(self, root: str | Path = SAMPLE_DIR, host: str = "127.0.0.1", port: int = 0,
                 universe: SyntheticUniverse | None = None):
        self.root = Path(root)
        self.universe = universe
        self.tree_index = TreeIndex(self.root)
        self.faults: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.requests: list[tuple[float, str, int, str]] = []  # (time, path, status, user agent)
        self._lock = threading.Lock()
        self._local = threading.local()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                server._handle(self)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, path: str, *faults: str) -> None:
        """Queue faults for the next requests of ``path``: '429', '429:<retry-after s>', '503', 'drop',
        'slow:<seconds>', 'truncate', 'badjson', '404'."""
        with self._lock:
            self.faults[path].extend(faults)

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="edgar-replay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def hits(self, path: str) -> int:
        return sum(1 for _, p, _, _ in self.requests if p == path)

    def _record(self, path: str, status: int, agent: str) -> None:
        """Log a request at the time it arrived (before its body was generated), as SEC would count it."""
        arrived = getattr(self._local, "arrived", None) or time.time()
        with self._lock:
            self.requests.append((arrived, path, status, agent))

    def _next_fault(self, path: str) -> str | None:
        with self._lock:
            queue = self.faults.get(path)
            return queue.popleft() if queue else None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        self._local.arrived = time.time()
        path = h.path.split("?", 1)[0]
        agent = h.headers.get("User-Agent", "")
        fault = self._next_fault(path)
        if fault == "drop":
            self._record(path, 0, agent)
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault.split(":", 1)[1]))
            fault = None
        if fault and fault.split(":")[0] in ("429", "503", "404"):
            status = int(fault.split(":")[0])
            self._record(path, status, agent)
            h.send_response(status)
            if ":" in fault:
                h.send_header("Retry-After", fault.split(":", 1)[1])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        rel = path.lstrip("/")
        try:
            body, encoding = self._body(path)
        except Exception as exc:  # noqa: BLE001 - a generator bug answers 500 naming it, never hangs the client
            self._record(path, 500, agent)
            body = f"replay failed on {path}: {exc!r}".encode()
            h.send_response(500)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if body is None:
            self._record(path, 404, agent)
            body = b"Not Found"
            h.send_response(404)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        if fault == "badjson":
            body, encoding = b'{"filings": {"recent": ', None
        declared = len(body)
        if fault == "truncate":  # promise the whole body, send a third, hang up
            body = body[: max(1, len(body) // 3)]
            h.close_connection = True
        self._record(path, 200, agent)
        h.send_response(200)
        ctype = ("application/json" if rel.endswith(".json") else "text/html" if rel.endswith((".htm", ".html"))
                 else "application/zip" if rel.endswith(".zip") else "text/plain")
        h.send_header("Content-Type", ctype)
        if encoding:
            h.send_header("Content-Encoding", encoding)
        h.send_header("Content-Length", str(declared))
        h.end_headers()
        h.wfile.write(body)

    def _body(self, path: str) -> tuple[bytes | None, str | None]:
        """(bytes, content encoding) at ``path``: the synthetic universe, then files under root, then the
        full-index and bulk archives synthesized from root; (None, None) is a 404."""
        if self.universe is not None:
            body = self.universe.resolve(path)
            if body is not None or self.universe.owns(path):
                return body, None
        rel = path.lstrip("/")
        plain, gz = self.root / rel, self.root / (rel + ".gz")
        if ".." not in Path(rel).parts:
            if plain.is_file():
                return plain.read_bytes(), None
            if gz.is_file():
                return gz.read_bytes(), "gzip"
        return self.tree_index.resolve(path), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(SAMPLE_DIR))
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--synthetic", type=int, metavar="N", help="serve a synthetic universe of N companies")
    parser.add_argument("--quarters", default="2023Q3:2024Q2", help="its quarters, FIRST:LAST (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", default=None, help="tree whose documents it reuses (default: --root)")
    parser.add_argument("--universe-file", default=None, help="write its FINSEC_UNIVERSE file here")
    args = parser.parse_args()
    universe = None
    if args.synthetic:
        universe = SyntheticUniverse(args.synthetic, args.quarters, seed=args.seed, source_dir=args.source or args.root)
    server = ReplayServer(args.root, host=args.host, port=args.port, universe=universe)
    print(f"replaying {args.root} at {server.url} (FINSEC_EDGAR_WWW_URL and FINSEC_EDGAR_DATA_URL)", flush=True)
    if universe is not None:
        env = universe.env(server.url, args.universe_file)
        print(f"{universe!r}; environment:", flush=True)
        for key, value in env.items():
            print(f"  export {key}={value}", flush=True)
    try:
        server.httpd.serve_forever()
    finally:
        if universe is not None:
            universe.close()


if __name__ == "__main__":
    main()
