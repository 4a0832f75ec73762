"""The Dagster metadata a checkpoint asset shows, built from the plain summary its entry point reports
through Pipes (``finsec_assets.ml.training.SUMMARY_KEY``)."""

import base64
import math
from collections.abc import Mapping, Sequence

import dagster as dg

from ...storage.object_store import ObjectStore

# metrics shown as numbers when the entry point measured them
OPTIONAL_METRICS = ("masked_accuracy_before", "masked_accuracy_after", "perplexity_fresh_head",
                    "masked_accuracy_fresh_head")


def _number(value) -> dg.MetadataValue:
    value = float(value)
    return dg.MetadataValue.float(value) if math.isfinite(value) else dg.MetadataValue.text(str(value))


def generations_markdown(generations: Sequence[Mapping]) -> str:
    """Each prompt in bold followed by the model's continuation."""
    parts = []
    for g in generations:
        continuation = g["text"][len(g["prompt"]):] if g["text"].startswith(g["prompt"]) else g["text"]
        parts.append(f"**{g['prompt']}**{continuation.replace(chr(10), ' ')}")
    return "\n\n".join(parts)


def checkpoint_metadata(summary: Mapping) -> dict:
    """Materialization metadata of a published (or reused) checkpoint; generations when there are some."""
    uri = summary["checkpoint_uri"]
    metrics = summary.get("metrics") or {}
    meta = {
        "checkpoint_uri": dg.MetadataValue.url(uri) if uri.startswith("s3://") else dg.MetadataValue.path(uri),
        "perplexity_before": _number(summary["perplexity_before"]),
        "perplexity_after": _number(summary["perplexity_after"]),
        "tokens_seen": dg.MetadataValue.int(int(summary["tokens_seen"])),
        "tokens_per_second": _number(summary["tokens_per_second"]),
        "version": dg.MetadataValue.text(summary["version"]),
        "reused_published_checkpoint": dg.MetadataValue.bool(bool(summary["reused"])),
        "latest_moved": dg.MetadataValue.bool(bool(summary.get("latest_moved", True))),
        "latest_version": dg.MetadataValue.text(str(summary.get("latest_version") or summary["version"])),
        "manifest": dg.MetadataValue.json(summary["manifest"]),
    }
    if metrics.get("before"):
        meta["baseline"] = dg.MetadataValue.text(str(metrics["before"]))
    for name in OPTIONAL_METRICS:
        if metrics.get(name) is not None:
            meta[name] = _number(metrics[name])
    if summary.get("generations"):
        meta["generations"] = dg.MetadataValue.md(generations_markdown(summary["generations"]))
    return meta


def loss_curve_metadata(store: ObjectStore, checkpoint_uri: str) -> dg.MetadataValue:
    """The loss-curve PNG stored next to the checkpoint, inline in the UI."""
    try:
        png = store.get_bytes(f"{checkpoint_uri}/loss_curve.png")
    except ValueError:  # a checkpoint root outside the project's store
        png = ObjectStore(checkpoint_uri).get_bytes("loss_curve.png")
    return dg.MetadataValue.md(f"![loss curve](data:image/png;base64,{base64.b64encode(png).decode()})")
