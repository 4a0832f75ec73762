"""filing_summaries + pooled_embeddings per quarter of the bundled sample: wall and CPU seconds of each step.

    PYTHONPATH=. .venv/bin/python benchmarks/encode_once.py [--quarters 2023-07-01,2024-01-01] [--repeats 1]
        [--json OUT]

Issue 15: both steps embedded every MD&A sentence, each with its own encoder pass. This times the two steps
as the graph runs them (in-process ``materialize``, a fresh FINSEC_HOME, sample mode, sections built first
and not timed), summaries first, then embeddings, for each quarter, and prints one row per step and quarter:
wall seconds, CPU seconds of this process (steadier on a shared machine), peak RSS so far, and what each
step reports about its encoder (sentences encoded, sentences taken from the sentence-vector cache).

A repeat starts from a fresh FINSEC_HOME (an empty cache). Run it before and after a change, on the same
machine, and compare the totals of each quarter.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_once(quarters: list[str]) -> list[dict]:
    home = Path(tempfile.mkdtemp(prefix="encode-once-"))
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ.update({"FINSEC_HOME": str(home / "finsec"), "DAGSTER_HOME": str(home / "dagster"),
                       "FINSEC_EDGAR_SOURCE": "sample"})
    import dagster as dg

    from finsec_assets.defs.common import FinsecResource, LakeIOManager
    from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
    from finsec_assets.defs.embeddings.assets import pooled_embeddings
    from finsec_assets.defs.text.assets import filing_sections, filing_summaries

    assets = [company_universe, filing_index, raw_filings, filing_sections, filing_summaries, pooled_embeddings]

    def materialize(selection, partition_key=None):
        finsec = FinsecResource()
        result = dg.materialize(assets, selection=selection, partition_key=partition_key,
                                resources={"finsec": finsec, "io_manager": LakeIOManager(finsec=finsec)})
        meta = {}
        for e in result.all_events:
            if e.event_type_value == "ASSET_MATERIALIZATION":
                meta[e.asset_key.path[-1]] = {k: v.value for k, v in e.materialization.metadata.items()}
        return meta

    materialize([company_universe])
    rows = []
    for quarter in quarters:
        materialize([filing_index, raw_filings, filing_sections], quarter)
        for step in (filing_summaries, pooled_embeddings):
            wall, cpu = time.perf_counter(), cpu_seconds()
            meta = materialize([step], quarter)[step.key.path[-1]]
            rows.append({"quarter": quarter, "step": step.key.path[-1], "seconds": time.perf_counter() - wall,
                         "cpu_seconds": cpu_seconds() - cpu, "peak_rss_mb": peak_mb(),
                         "encoded_sentences": meta.get("encoded_sentences", meta.get("unique_sentences")),
                         "cached_sentences": meta.get("cached_sentences")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarters", default="2023-07-01,2024-01-01")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    quarters = [q.strip() for q in args.quarters.split(",") if q.strip()]
    runs = [run_once(quarters) for _ in range(args.repeats)]
    best = {}
    for rows in runs:
        for r in rows:
            key = (r["quarter"], r["step"])
            if key not in best or r["seconds"] < best[key]["seconds"]:
                best[key] = r
    print(f"{'quarter':<11} {'step':<18} {'wall s':>8} {'cpu s':>8} {'encoded':>8} {'cached':>8} {'peak MB':>8}")
    for quarter in quarters:
        total_wall = total_cpu = 0.0
        for step in ("filing_summaries", "pooled_embeddings"):
            r = best[(quarter, step)]
            total_wall += r["seconds"]
            total_cpu += r["cpu_seconds"]
            print(f"{quarter:<11} {step:<18} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} "
                  f"{str(r['encoded_sentences']):>8} {str(r['cached_sentences']):>8} {r['peak_rss_mb']:>8.0f}")
        print(f"{quarter:<11} {'both':<18} {total_wall:>8.1f} {total_cpu:>8.1f}")
    print(f"(load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs}, indent=1))


if __name__ == "__main__":
    main()
