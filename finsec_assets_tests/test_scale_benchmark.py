"""benchmarks/scale.py's machinery at a tiny size: a synthetic universe of 4 filings (2 companies x 2 quarters)
replayed on 127.0.0.1, the cheap head of the per-filing graph, each stage in its own exec'd process.

Checks the JSON contract ({"runs": [{"filings": N, "stages": {stage: {filings_per_s, peak_rss_mb, seconds}}}]}),
that every number is measured (positive), that each quarter was its own step, and that the lake numbers are there.
No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "scale.py"
STAGES = ["company_universe", "filing_index", "raw_filings", "filing_sections"]


def _scale_module():
    spec = importlib.util.spec_from_file_location("scale_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quarters_partitions_and_stage_selection():
    scale = _scale_module()
    assert scale.quarter_labels(3, "2024Q1") == ["2023Q3", "2023Q4", "2024Q1"]
    assert scale.quarter_labels(40)[0] == "2015Q1" and scale.quarter_labels(40)[-1] == "2024Q4"
    assert [scale.partition_key(q) for q in ("2015Q1", "2024Q4")] == ["2015-01-01", "2024-10-01"]
    assert scale.resolve_stages("cheap")[0] == "company_universe"
    with pytest.raises(SystemExit, match="unknown"):
        scale.resolve_stages("filing_index,no_such_asset")
    plan, skipped = scale.stage_plan(scale.ALL_STAGES, 5000, encoders_max=1000)
    assert "filing_summaries" not in plan and "pooled_embeddings" in skipped and "nlp_scores" in plan


def test_a_child_process_peak_is_its_own(tmp_path):
    """The stage runner's peak is the stage process's own VmHWM: a child that allocates ~300 MB reports at least
    that, and one that allocates nothing reports far less, although both are started by the same (large) parent.
    wait4's ru_maxrss is not used: Linux carries the parent's peak across exec (2.4 GB under the full suite)."""
    scale = _scale_module()
    code = ("import sys; b = bytearray(int(sys.argv[1]) * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
            "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])")
    peaks = {mb: int(subprocess.run([sys.executable, "-c", code, str(mb)], capture_output=True, text=True,
                                    check=True).stdout) / 1024 for mb in (0, 300)}
    assert peaks[300] >= 300 and peaks[0] < 100, peaks
    assert scale._proc_status_kb("self", "VmHWM") > 0


@pytest.mark.timeout(300)
def test_tiny_run_writes_the_contracted_json(tmp_path):
    pytest.importorskip("finsec_assets.edgar.synthetic", reason="needs the synthetic universe (finsec_assets/edgar/synthetic.py)")
    out = tmp_path / "scale.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSEC_", "DAGSTER_"))}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    proc = subprocess.run([sys.executable, str(SCRIPT), "--filings", "4", "--quarters", "2", "--stages", ",".join(STAGES),
                           "--no-backfill", "--no-ui", "--last-quarters", "filing_sections=1",
                           "--workdir", str(tmp_path / "work"), "--json", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    assert run["filings"] == 4 and run["companies"] == 2 and len(run["quarters"]) == 2
    assert isinstance(run["rate_limit_lifted"], bool) and run["rate_limit"]
    assert len(run["load_start"]) == 3 and "load average" in run["uptime"]
    assert list(run["stages"]) == STAGES
    for name, stage in run["stages"].items():
        assert stage["success"], (name, stage.get("error"))
        for field in ("filings_per_s", "peak_rss_mb", "seconds"):
            assert stage[field] > 0, (name, field, stage[field])
        assert stage["rows"] > 0, name
    for name in STAGES[1:]:  # per-filing stages: one step per quarter, each with its own reset peak
        parts = run["stages"][name]["partitions"]
        if name == "filing_sections":  # --last-quarters: the last quarter only, its filings the ones counted
            assert [p["partition"] for p in parts] == ["2024-10-01"]
            assert run["stages"][name]["quarters_measured"] == 1 and run["stages"][name]["filings_measured"] == 2
            continue
        assert [p["partition"] for p in parts] == ["2024-07-01", "2024-10-01"]
        assert all(p["hwm_mb"] > 0 and p["seconds"] > 0 for p in parts)
    assert run["stages"]["raw_filings"]["edgar_requests"] >= 4  # every document came through the replay server
    assert run["lake"]["lake_data_mb"] > 0 and run["lake"]["tables"]["filing_index"] == 4
    assert run["lake"]["queries"] and all(q["median_ms"] > 0 for q in run["lake"]["queries"])
    assert "filing_sections" in proc.stdout and "filings/s" in proc.stdout  # the printed table


def test_extrapolation_separates_fixed_cost_from_cost_per_filing():
    scale = _scale_module()
    ten = [f"2024Q{q}" for q in (1, 2, 3, 4)] * 2 + ["2023Q3", "2023Q4"]

    def run(n, seconds, peak):
        return {"filings": n, "quarters": ten, "stages": {
            "nlp_scores": {"success": True, "seconds": seconds, "peak_rss_mb": peak},
            "pretrained_checkpoint": {"success": True, "seconds": 100 + n * 0.01, "peak_rss_mb": 900},
            "filing_summaries": {"success": False}}}

    ex = scale.extrapolate([run(100, 20, 500), run(1000, 110, 680)], filings=20_000, quarters=40)
    scores = ex["stages"]["nlp_scores"]
    assert scores["seconds"] == 110 + 0.1 * 19_000  # 10 s fixed + 0.1 s per filing
    assert scores["peak_rss_mb"] == 680 + 2 * 400  # 2 MB per filing in a quarter: 100 -> 500 a quarter
    assert ex["stages"]["pretrained_checkpoint"]["seconds"] == 300 and "filing_summaries" not in ex["stages"]


def test_finetuned_checkpoint_runs_on_a_company_it_can_fine_tune(tmp_path):
    """The busiest company with MD&A to validate on and other sections to train on, not just the most text."""
    import pandas as pd

    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake

    scale = _scale_module()
    env = {"FINSEC_HOME": str(tmp_path / "home")}
    rows = [(1, "1", "x" * 900), (1, "1A", "x" * 900),  # the most text, but no MD&A to validate on
            (2, "7", "x" * 800),  # MD&A only: nothing to train on
            (3, "7", "x" * 100), (3, "1", "x" * 100), (3, "I-2", "   "),
            (4, "I-2", "x" * 150), (4, "II-1A", "x" * 150)]
    sections = pd.DataFrame([{"accession": f"a{cik}-{item}", "cik": cik, "form": "10-K", "filing_date": "2024-02-01",
                              "item": item, "text": text} for cik, item, text in rows])
    lake = open_lake(Settings.from_env(env))
    lake.replace_partition("filing_sections", "2024-01-01", sections)
    lake.close()
    assert scale.busiest_cik(env, [1, 2, 3, 4]) == 4
    assert scale.busiest_cik({"FINSEC_HOME": str(tmp_path / "empty")}, [7, 8]) == 7  # no sections yet: the first
