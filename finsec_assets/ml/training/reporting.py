"""What a run tells its caller: the loss-curve picture, the environment, and the result, through
Dagster Pipes when launched by it or as JSON on stdout otherwise (rank 0 only)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .trainer import process_rank, world_size


def plot_loss_curves(curves: Mapping[str, Sequence[tuple[int, float]]], path: Path, title: str,
                     notes: Sequence[str] = ()) -> Path:
    """Training loss per logged step, one line per stage (steps continue across stages)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    offset = 0
    for stage, points in curves.items():
        if points:
            xs = [offset + s for s, _ in points]
            ax.plot(xs, [loss for _, loss in points], marker=".", label=stage)
            offset = xs[-1]
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend()
    if notes:
        ax.text(0.99, 0.97, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=8,
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)
    return path


def environment_info(deepspeed_config: Path | None) -> dict:
    import torch
    import transformers

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "world_size": world_size(), "deepspeed_config": deepspeed_config.name if deepspeed_config else None}
    if deepspeed_config is not None:
        import deepspeed

        info["deepspeed"] = deepspeed.__version__
    return info


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


SUMMARY_KEY = "checkpoint_summary"  # the one Pipes metadata entry an entry point reports


class RunReporter:
    """Logs and the final result of an entry point: through Dagster Pipes when launched by it,
    to stderr/stdout otherwise. Ranks other than 0 stay silent."""

    def __init__(self, pipes=None):
        self.pipes = pipes
        if pipes is not None:
            self.log = pipes.log
        else:
            self.log = logging.getLogger("finsec_assets.ml.entry")
            if not self.log.handlers:
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
                self.log.addHandler(handler)
                self.log.setLevel(logging.INFO)
                self.log.propagate = False
            if process_rank() != 0:
                self.log.setLevel(logging.WARNING)

    def report(self, summary: Mapping[str, Any], data_version: str | None = None) -> None:
        """The run's result as plain values: one JSON entry through Pipes (the asset shapes it into
        Dagster metadata), or JSON on stdout."""
        if process_rank() != 0:
            return
        if self.pipes is not None:
            self.pipes.report_asset_materialization(
                metadata={SUMMARY_KEY: {"raw_value": dict(summary), "type": "json"}}, data_version=data_version
            )
        else:
            print(json.dumps({"data_version": data_version, SUMMARY_KEY: summary}, indent=2, default=str))
