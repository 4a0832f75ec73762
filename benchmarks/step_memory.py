"""Peak memory of the per-quarter text steps as a quarter holds more filings (issue 15: ~4 MB more per filing).

    PYTHONPATH=. .venv/bin/python benchmarks/step_memory.py [--copies 1,4] [--quarter 2023-07-01]
        [--steps filing_summaries,pooled_embeddings] [--json OUT]

The sample quarter's filing_sections are replicated ``copies`` times into a quarter of their own (each copy
its own accessions, and a copy marker in every sentence, so neither the sentence-vector cache nor the encoder's
de-duplication gains from a repeat), then each step is materialized in a fresh subprocess, whose VmHWM is
its peak RSS. Prints filings, peak MB and MB per added filing between the smallest and largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(var, value)

STEP = """
import pathlib, sys, dagster as dg
from finsec_assets.defs.common import FinsecResource, LakeIOManager
from finsec_assets.defs.edgar.assets import company_universe
from finsec_assets.defs.embeddings.assets import pooled_embeddings
from finsec_assets.defs.text.assets import filing_sections, filing_summaries, nlp_scores
assets = {a.key.path[-1]: a for a in (filing_summaries, pooled_embeddings, nlp_scores)}
upstream = [dg.AssetSpec("filing_sections", partitions_def=filing_sections.partitions_def), dg.AssetSpec("company_universe")]
finsec = FinsecResource()
result = dg.materialize([assets[sys.argv[1]], *upstream], selection=[assets[sys.argv[1]]], partition_key=sys.argv[2],
                        resources={"finsec": finsec, "io_manager": LakeIOManager(finsec=finsec)})
assert result.success
hwm = next(l for l in pathlib.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print("PEAK", int(hwm.split()[1]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", default="1,4")
    parser.add_argument("--quarter", default="2023-07-01")
    parser.add_argument("--steps", default="filing_summaries,pooled_embeddings")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    copies = [int(c) for c in args.copies.split(",")]
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]

    home = Path(tempfile.mkdtemp(prefix="step-memory-"))
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "FINSEC_HOME": str(home / "finsec"), "DAGSTER_HOME": str(home / "dagster"),
           "FINSEC_EDGAR_SOURCE": "sample", "PYTHONPATH": str(REPO)}
    os.environ.update(env)
    import dagster as dg
    import pandas as pd

    from finsec_assets.defs.common import FinsecResource, LakeIOManager
    from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
    from finsec_assets.defs.text.assets import filing_sections
    from finsec_assets.storage.lake import open_lake

    assets = [company_universe, filing_index, raw_filings, filing_sections]
    finsec = FinsecResource()
    resources = {"finsec": finsec, "io_manager": LakeIOManager(finsec=finsec)}
    assert dg.materialize(assets, selection=[company_universe], resources=resources).success
    assert dg.materialize(assets, selection=[filing_index, raw_filings, filing_sections], partition_key=args.quarter,
                          resources=resources).success
    lake = open_lake()
    base = lake.read_partition("filing_sections", args.quarter)
    rows = []
    for n, count in enumerate(copies):
        target = f"{2001 + n}-01-01"  # a quarter of its own per size
        frames = []
        for k in range(count):
            copy = base.copy()
            copy["accession"] = copy["accession"] + f"-c{k}"
            copy["text"] = copy["text"].map(lambda t, k=k: re.sub(r"([.!?]) ", rf"\1 c{k}x{n} ", t))
            frames.append(copy)
        lake.replace_partition("filing_sections", target, pd.concat(frames, ignore_index=True))
        filings = int(base["accession"].nunique()) * count
        for step in steps:
            out = subprocess.run([sys.executable, "-c", STEP, step, target], env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{step} at {count} copies failed:\n{out.stderr[-3000:]}")
            peak = int(next(line for line in out.stdout.splitlines() if line.startswith("PEAK")).split()[1]) / 1024
            rows.append({"step": step, "copies": count, "filings": filings, "peak_rss_mb": round(peak)})
            print(f"{step:<18} {filings:>5} filings  peak {peak:7.0f} MB", flush=True)
    print(f"{'step':<18} {'filings':>8} {'peak MB':>8} {'MB per added filing':>20}")
    for step in steps:
        mine = sorted((r for r in rows if r["step"] == step), key=lambda r: r["filings"])
        for r in mine:
            print(f"{step:<18} {r['filings']:>8} {r['peak_rss_mb']:>8}")
        if len(mine) > 1:
            slope = (mine[-1]["peak_rss_mb"] - mine[0]["peak_rss_mb"]) / (mine[-1]["filings"] - mine[0]["filings"])
            print(f"{step:<18} {'':>8} {'':>8} {slope:>20.2f}")
    print(f"(load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps({"runs": rows}, indent=1))


if __name__ == "__main__":
    main()
