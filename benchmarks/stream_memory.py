"""Peak memory of xbrl_facts (one quarter) and the NER/QA/relation/summarization datasets as the filings grow
(issue 15: every step flat in the number of filings).

    PYTHONPATH=. .venv/bin/python benchmarks/stream_memory.py [--code DIR] [--filings 8,48] [--dataset-filings 16,128]
        [--skip xbrl|datasets] [--json OUT]

xbrl_facts: the sample's NVDA 10-K (1387 facts) is copied N times under new accessions into a quarter of raw_filings
and filing_sections, then xbrl_facts is materialized for that quarter (every copy read: nothing to reuse) with
FINSEC_STEP_WORKERS=1, so the extraction runs in the measured process. Datasets: the facts and sections of the PEP
and WMT 10-Ks are copied N times (new accessions and CIKs) straight into xbrl_facts/filing_sections, then each
dataset is materialized. Every step runs in a freshly exec'd process whose VmHWM is its peak RSS. ``--code`` runs
another checkout's finsec_assets (e.g. main, for the numbers before the streaming change) with the same data.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for var, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(var, value)
SAMPLE = REPO / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"

STEP = """
import pathlib, sys, dagster as dg
from finsec_assets.defs.common import FinsecResource, LakeIOManager
from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.text.assets import filing_sections
from finsec_assets.defs.xbrl.assets import xbrl_facts
from finsec_assets.defs.understanding import datasets
assets = [company_universe, filing_index, raw_filings, filing_sections, xbrl_facts, datasets.ner_dataset,
          datasets.qa_dataset, datasets.relation_dataset, datasets.summarization_dataset]
chosen = [a for a in assets if a.key.path[-1] == sys.argv[1]]
finsec = FinsecResource()
result = dg.materialize(assets, selection=chosen, partition_key=sys.argv[2] or None,
                        resources={"finsec": finsec, "io_manager": LakeIOManager(finsec=finsec)})
assert result.success
hwm = next(l for l in pathlib.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
rows = [e.materialization.metadata["dagster/row_count"].value for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == sys.argv[1]]
print("ROWS", rows[0], "PEAK_KB", int(hwm.split()[1]))
"""


def _env(home: Path, code: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSEC_")}
    env.update(FINSEC_HOME=str(home / "finsec"), DAGSTER_HOME=str(home / "dagster"), FINSEC_EDGAR_SOURCE="sample",
               PYTHONPATH=f"{code}:{REPO}", **extra)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return env


def _peak_mb(asset: str, partition: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", STEP, asset, partition], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{asset} {partition}: {out.stderr[-3000:]}")
    words = out.stdout.split()
    return {"rows": int(words[words.index("ROWS") + 1]), "peak_mb": round(int(words[words.index("PEAK_KB") + 1]) / 1024, 1)}


def _lake(home: Path):
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake

    return open_lake(Settings.from_env({"FINSEC_HOME": str(home / "finsec")}))


def xbrl(sizes: list[int], code: Path, work: Path) -> dict:
    import pandas as pd

    home = work / "xbrl"
    env = _env(home, REPO, FINSEC_UNIVERSE="NVDA")
    for asset in ("company_universe", "filing_index", "raw_filings", "filing_sections"):
        subprocess.run([sys.executable, "-c", STEP, asset, "" if asset == "company_universe" else "2024-01-01"],
                       env=env, check=True, capture_output=True)
    lake = _lake(home)
    filings, sections = lake.read_partition("raw_filings", "2024-01-01"), lake.read_partition("filing_sections", "2024-01-01")
    out = {}
    for n, size in enumerate(sizes):
        quarter = f"{2010 + n}-01-01"
        copies = [f"{filings['accession'][0]}-{i:04d}" for i in range(size)]
        lake.replace_partition("raw_filings", quarter, pd.concat([filings.assign(accession=a) for a in copies]))
        lake.replace_partition("filing_sections", quarter, pd.concat([sections.assign(accession=a) for a in copies]))
        lake.close()
        out[size] = _peak_mb("xbrl_facts", quarter, _env(home, code, FINSEC_UNIVERSE="NVDA", FINSEC_STEP_WORKERS="1"))
        print("xbrl_facts", size, out[size], flush=True)
    return out


def datasets(sizes: list[int], code: Path, work: Path) -> dict:
    import pandas as pd

    from finsec_assets.text.sections import extract_sections_with_report
    from finsec_assets.xbrl import extract_facts

    facts, sections = [], []
    for n, rel in enumerate(["77476/000007747624000008/pep-20231230.htm.gz", "104169/000010416924000056/wmt-20240131.htm.gz"]):
        document = gzip.decompress((SAMPLE / rel).read_bytes())
        one = extract_facts(document)
        one["dimensions"] = one["dimensions"].map(lambda d: json.dumps(d, sort_keys=True))
        facts.append(one.assign(source=n))
        sections.append(pd.DataFrame([{"item": s.item, "title": s.title, "text": s.text, "start": s.start, "end": s.end,
                                       "source": n} for s in extract_sections_with_report(document, "10-K").sections]))
    facts, sections = pd.concat(facts, ignore_index=True), pd.concat(sections, ignore_index=True)
    out = {}
    for size in sizes:
        home = work / f"datasets-{size}"
        env = _env(home, code)
        lake = _lake(home)
        for q in range(0, size, 16):  # 16 filings a quarter
            f, s = [], []
            for i in range(q, min(size, q + 16)):
                keys = {"accession": f"0000000000-20-{i:06d}", "cik": 1000 + i}
                f.append(facts[facts["source"] == i % 2].drop(columns="source").assign(**keys))
                s.append(sections[sections["source"] == i % 2].drop(columns="source").assign(**keys))
            quarter = f"{2000 + q // 64}-{1 + 3 * (q // 16 % 4):02d}-01"
            lake.replace_partition("xbrl_facts", quarter, pd.concat(f, ignore_index=True))
            lake.replace_partition("filing_sections", quarter, pd.concat(s, ignore_index=True))
        lake.close()
        for asset in ("ner_dataset", "qa_dataset", "relation_dataset", "summarization_dataset"):
            out.setdefault(asset, {})[size] = _peak_mb(asset, "", env)
            print(asset, size, out[asset][size], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", default=str(REPO), help="checkout whose finsec_assets runs the steps")
    parser.add_argument("--filings", default="8,48", help="filings in the xbrl_facts quarter")
    parser.add_argument("--dataset-filings", default="16,128", help="filings the datasets read")
    parser.add_argument("--skip", choices=["xbrl", "datasets"])
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    result = {"code": args.code}
    with tempfile.TemporaryDirectory(prefix="stream-memory-") as tmp:
        if args.skip != "xbrl":
            result["xbrl_facts_peak_mb"] = xbrl([int(x) for x in args.filings.split(",")], Path(args.code), Path(tmp))
        if args.skip != "datasets":
            result["dataset_peak_mb"] = datasets([int(x) for x in args.dataset_filings.split(",")], Path(args.code), Path(tmp))
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
