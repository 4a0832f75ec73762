"""Document-understanding benchmark: per task, training throughput, inference throughput and the test metric of
every variant (baseline, fine_tuned, fine_tuned_domain, tuned; MLP for the filing industry).

It trains on the dataset tables of a FINSEC_HOME where `make demo` (or the UI) materialized them, into a
scratch checkpoint root, so the published models are left alone. ``--published`` only reads the manifests of
the latest published models (what `make demo` measured).

    python benchmarks/understanding.py --published                     # the demo's own figures
    python benchmarks/understanding.py --size full --trials 8          # bigger subsets (use a GPU)
    python benchmarks/understanding.py --tasks ner,qa --max-train 256 --epochs 2

Throughputs count examples (sentences, questions, pairs, paragraphs, documents), not tokens; training
examples/s excludes the per-epoch validation passes; inference examples/s is the test-split pass of the
predictor code (windowing included). Wall-clock figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402

from finsec_assets.ml.training import CheckpointStore, default_checkpoint_root  # noqa: E402
from finsec_assets.ml.understanding import train as ut  # noqa: E402
from finsec_assets.ml.understanding.metrics import PRIMARY  # noqa: E402

SIZES = {  # examples per split (0 = all); "demo" keeps the entry point's own defaults
    "demo": {},
    "full": {"max_train_examples": 0, "max_validation_examples": 0, "max_test_examples": 0},
}


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children: on a shared machine the wall clock
    measures the neighbours too; on two idle cores the wall time is about CPU / 2."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def table(manifests: dict[str, dict], seconds: dict[str, float] | None = None,
          cpu: dict[str, float] | None = None) -> pd.DataFrame:
    rows = []
    for task, m in manifests.items():
        metrics = pd.DataFrame(m["metrics"])
        test = metrics[metrics["split"] == "test"]
        for (sub_task, variant), group in test.groupby(["task", "variant"], sort=False):
            primary = PRIMARY[sub_task]
            values = dict(zip(group["metric"], group["value"]))
            speed = m["throughput"].get(variant, {}) if sub_task == task else {}
            rows.append({"task": sub_task, "variant": variant, "published": "*" if variant == m["published_variant"]
                         and sub_task == task else "", "train_rows": m["training_data"]["rows"]["train"] if sub_task == task else None,
                         "test_rows": m["training_data"]["rows"]["test"] if sub_task == task else None,
                         "train_ex_per_s": speed.get("train_examples_per_second"),
                         "infer_ex_per_s": speed.get("inference_examples_per_second"),
                         "metric": primary, "test_value": values.get(primary),
                         "other": ", ".join(f"{k} {v:.3g}" for k, v in values.items() if k != primary),
                         "task_seconds": (seconds or {}).get(task) if sub_task == task else None,
                         "task_cpu_seconds": (cpu or {}).get(task) if sub_task == task else None})
    return pd.DataFrame(rows)


def published(tasks) -> dict[str, dict]:
    out = {}
    for task in tasks:
        store = CheckpointStore(default_checkpoint_root(ut.MODEL_ASSETS[task]))
        version = store.latest()
        if version is None:
            print(f"{task}: nothing published under {store.root_uri}", file=sys.stderr)
            continue
        out[task] = store.read_manifest(version)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(ut.TASKS))
    p.add_argument("--published", action="store_true", help="print the latest published models' figures, train nothing")
    p.add_argument("--size", choices=sorted(SIZES), default="demo")
    p.add_argument("--max-train", type=int, default=None)
    p.add_argument("--max-test", type=int, default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="fine_tuned epochs (default: the task's demo default)")
    p.add_argument("--trials", type=int, default=None, help="study trials (default: the task's demo default)")
    p.add_argument("--max-epochs", type=int, default=None, help="the study's epoch bound (default: the task's)")
    p.add_argument("--base", default="", help="encoder for fine_tuned/tuned ('' = bundled MiniLM)")
    p.add_argument("--domain-base", default="", help="'' = the home's pretrained_checkpoint; 'none' skips it")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]

    if args.published:
        result = table(published(tasks))
    else:
        from finsec_assets.settings import Settings
        from finsec_assets.storage.object_store import ObjectStore
        from finsec_assets.storage.lake import open_lake

        store = ObjectStore(Settings.from_env().object_store_url)
        scratch = Path(tempfile.mkdtemp(prefix="understanding-bench-"))
        manifests, seconds, cpu = {}, {}, {}
        for task in tasks:
            dataset = ut.ADAPTERS[task].dataset
            df = open_lake().read_partition(f"{dataset}_dataset", None)
            if df.empty:
                print(f"{task}: {dataset}_dataset is not materialized in {store.url}; run `make demo` first", file=sys.stderr)
                continue
            path = scratch / f"{dataset}.parquet"
            df.to_parquet(path)
            raw = {"task": task, "dataset_uri": str(path), "checkpoint_root": str(scratch / "checkpoints" / task),
                   "work_dir": str(scratch / "work"), "base": args.base,
                   "domain_base": args.domain_base or default_checkpoint_root(ut.DOMAIN_ASSET),
                   "training": {} if args.epochs is None else {"epochs": args.epochs},
                   "hpo": {k: v for k, v in (("trials", args.trials), ("max_epochs", args.max_epochs)) if v is not None},
                   **SIZES[args.size]}
            for key, value in (("max_train_examples", args.max_train), ("max_test_examples", args.max_test),
                               ("max_length", args.max_length)):
                if value is not None:
                    raw[key] = value
            start, cpu0 = time.perf_counter(), _cpu_seconds()
            result = ut.train_task(ut.UnderstandingConfig.from_mapping(raw))
            seconds[task] = round(time.perf_counter() - start, 1)
            cpu[task] = round(_cpu_seconds() - cpu0, 1)
            manifests[task] = result["manifest"]
            print(f"{task}: {seconds[task]}s wall, {cpu[task]}s CPU", file=sys.stderr, flush=True)
            print(table({task: manifests[task]}, seconds, cpu).to_string(index=False), file=sys.stderr, flush=True)
        result = table(manifests, seconds, cpu)
    if result.empty:
        print("no results", file=sys.stderr)
        return 1
    pd.set_option("display.width", 220)
    pd.set_option("display.max_colwidth", 80)
    print(result.to_markdown(index=False, floatfmt=".4g") if args.markdown else result.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
