"""Both sides of a launch: the command the Dagster asset runs (plain Python, ``torchrun`` or the
``deepspeed`` launcher) and, in the launched process, its config and reporter (Pipes extras, or a
JSON file and ``--set`` overrides when run by hand)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .config import TrainingInputError, deep_merge, parse_overrides
from .reporting import RunReporter
from .trainer import process_rank

FAILURE_PREFIX = "training failed: "


def _pipes_extras_without_messages() -> dict:
    """Pipes extras for ranks > 0: read the injected context, open no message channel."""
    from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader

    params = PipesEnvVarParamsLoader().load_context_params()
    with PipesDefaultContextLoader().load_context(params) as data:
        return dict(data.get("extras") or {})


@contextlib.contextmanager
def entry_point_session(description: str, argv: Sequence[str] | None = None) -> Iterator[tuple[dict, RunReporter]]:
    """Config and a reporter for an entry point.

    Config, later sources winning: ``--config FILE`` (JSON), the ``config`` mapping in the Pipes
    extras, then ``--set key=value`` overrides (dotted keys for nested settings).
    """
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="JSON file of settings")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args(argv)
    raw: dict = {}
    if args.config:
        try:
            raw = json.loads(Path(args.config).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingInputError(f"--config {args.config}: {exc}") from exc
    if PipesEnvVarParamsLoader().is_dagster_pipes_process():
        if process_rank() == 0:
            with open_dagster_pipes() as pipes:
                try:
                    config = deep_merge(deep_merge(raw, pipes.extras.get("config") or {}), parse_overrides(args.set))
                    yield config, RunReporter(pipes)
                except Exception as exc:
                    pipes.log.error(f"{FAILURE_PREFIX}{type(exc).__name__}: {exc}")  # the reason, for the asset's Failure
                    raise
            return
        raw = deep_merge(raw, _pipes_extras_without_messages().get("config") or {})
    yield deep_merge(raw, parse_overrides(args.set)), RunReporter(None)


def quiet_libraries() -> None:
    """Keep the run's log readable: no weight-loading tables or progress bars from transformers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def launch_command(entry_module: str, processes: int = 1, launcher: str = "torchrun") -> list[str]:
    """The command that runs an entry point: plain Python for one process, ``torchrun`` (or the
    ``deepspeed`` launcher) for several GPUs on this machine."""
    if processes <= 1:
        return [sys.executable, "-m", entry_module]
    if launcher == "deepspeed":
        exe = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
        return [exe, f"--num_gpus={processes}", "--module", entry_module]
    if launcher != "torchrun":
        raise TrainingInputError(f"launcher={launcher!r}: use torchrun or deepspeed")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", entry_module]


def visible_gpu_count() -> int:
    """GPUs this process could use (NVML count; does not initialise CUDA)."""
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no torch or no driver means no GPUs
        return 0
