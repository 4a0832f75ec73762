"""Section extraction: quality against ground truth and speed, ours vs a peer (edgartools).

    .venv/bin/python benchmarks/sections.py [--edgar-dir ../shared/edgar] [--peer-python PATH]

Corpus: every distinct 10-K/10-Q primary document in ``<edgar-dir>/MANIFEST.tsv``
(36 filings). Ground truth: ``<edgar-dir>/ground_truth/sec-parser-test-data``:
per-item sizes for 11 10-Ks (sizes there are of the items' HTML, so the ratio
column only shows scale; "found" is the measure) and the labelled elements of
the Apple 10-Q 0000320193-23-000077, against which token recall and precision
per item are computed (the labelled text leaves tables out, as we do).

The peer runs in its own virtual environment (never imported here), through a
subprocess, on the same bytes; its timing is measured inside that process
around parsing and section extraction only, like ours. Set it up with

    python3 -m venv /work/peer-venv && /work/peer-venv/bin/pip install edgartools==5.62.0

Targets (issue 3): every annotated item found; MD&A and Risk Factors recall >=
0.95 and precision >= 0.9 on the labelled 10-Q; faster than the peer (MB/s).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from finsec_assets.text.sections import extract_sections_with_report  # noqa: E402

DEFAULT_EDGAR = REPO.parent / "shared" / "edgar"
DEFAULT_PEER_PYTHON = Path("/work/peer-venv/bin/python")

PEER_SCRIPT = r'''
import gzip, json, sys, time, warnings
warnings.filterwarnings("ignore")
from edgar.documents import parse_html, ParserConfig
import edgar
jobs = json.load(open(sys.argv[1]))
out = {"version": getattr(edgar, "__version__", "?"), "results": []}
for job in jobs:
    raw = open(job["path"], "rb").read()
    if job["path"].endswith(".gz"):
        raw = gzip.decompress(raw)
    html = raw.decode("utf-8", errors="replace")
    t0 = time.perf_counter()
    sections, error = {}, None
    try:
        document = parse_html(html, ParserConfig(form=job["form"]))
        for name, section in document.sections.items():
            part, item = getattr(section, "part", None), getattr(section, "item", None)
            if not item:
                continue
            key = item.upper() if job["form"] == "10-K" else f"{part}-{item.upper()}"
            sections[key] = section.text() or ""
    except Exception as exc:  # the peer failing on a filing is a result too
        error = f"{type(exc).__name__}: {exc}"[:200]
    out["results"].append({"path": job["path"], "seconds": time.perf_counter() - t0,
                           "sections": sections, "error": error})
json.dump(out, sys.stdout)
'''

TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> Counter:
    return Counter(TOKEN_RE.findall(text.lower().replace("’", "'")))


def recall_precision(truth: str, predicted: str) -> tuple[float, float]:
    t, p = tokens(truth), tokens(predicted)
    overlap = sum((t & p).values())
    recall = overlap / max(1, sum(t.values()))
    precision = overlap / max(1, sum(p.values())) if p else 0.0
    return recall, precision


def load_corpus(edgar_dir: Path) -> list[dict]:
    seen, corpus = set(), []
    with open(edgar_dir / "MANIFEST.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["form"] not in ("10-K", "10-Q") or row["sha256"] in seen:
                continue
            seen.add(row["sha256"])
            path = edgar_dir / row["path"]
            accession = path.parent.name if path.parent.name.isdigit() and len(path.parent.name) == 18 else (
                path.name.split(".")[0].replace("-", ""))
            corpus.append({"path": str(path), "form": row["form"], "company": row["company"],
                           "accession": accession, "name": path.name.replace(".gz", "")})
    return corpus


def read_bytes(path: str) -> bytes:
    raw = Path(path).read_bytes()
    return gzip.decompress(raw) if path.endswith(".gz") else raw


def ten_q_truth(gt_file: Path) -> dict[str, str]:
    """sec-parser's labelled 10-Q elements -> our item ids with their text (tables have none)."""
    mapping = {"part1item1": "I-1", "part1item2": "I-2", "part1item3": "I-3", "part1item4": "I-4",
               "part2item1": "II-1", "part2item1a": "II-1A", "part2item2": "II-2", "part2item3": "II-3",
               "part2item4": "II-4", "part2item5": "II-5", "part2item6": "II-6"}
    truth: dict[str, list[str]] = {}
    current = None
    for element in json.loads(gt_file.read_text()):
        if element["cls_name"] == "TopSectionTitle":
            current = mapping.get(element.get("section_type", ""))
            continue
        if current and element.get("text_content"):
            truth.setdefault(current, []).append(element["text_content"])
    return {item: "\n".join(parts) for item, parts in truth.items()}


def run_ours(corpus: list[dict], repeat: int) -> dict[str, dict]:
    results = {}
    for job in corpus:
        data = read_bytes(job["path"])
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            report = extract_sections_with_report(data, job["form"], accession=job["accession"])
            best = min(best, time.perf_counter() - t0)
        results[job["path"]] = {"seconds": best, "bytes": len(data), "report": report,
                                "sections": {s.item: s.text for s in report.sections}}
    return results


def run_peer(corpus: list[dict], peer_python: Path) -> dict | None:
    if not peer_python.exists():
        print(f"peer: {peer_python} not found; set up the peer venv (see the module docstring)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "peer.py"
        script.write_text(PEER_SCRIPT)
        jobs = Path(tmp) / "jobs.json"
        jobs.write_text(json.dumps([{"path": j["path"], "form": j["form"]} for j in corpus]))
        env = dict(os.environ, EDGAR_IDENTITY="benchmark benchmark@example.com", EDGAR_LOCAL_DATA_DIR=tmp)
        completed = subprocess.run([str(peer_python), str(script), str(jobs)], capture_output=True, text=True,
                                   env=env, timeout=3600)
    if completed.returncode != 0:
        print("peer failed:", completed.stderr[-2000:])
        return None
    out = json.loads(completed.stdout)
    return {"version": out["version"], "results": {r["path"]: r for r in out["results"]}}


def fmt_ratio(value: float | None) -> str:
    return "   -" if value is None else f"{value:4.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edgar-dir", type=Path, default=DEFAULT_EDGAR)
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER_PYTHON)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="best of N timings for ours")
    parser.add_argument("--peer-cache", type=Path, help="reuse (or save) the peer's results in this JSON file")
    args = parser.parse_args()
    if not (args.edgar_dir / "MANIFEST.tsv").exists():
        print(f"{args.edgar_dir} not present: this benchmark needs ../shared/edgar")
        return 1
    corpus = load_corpus(args.edgar_dir)
    ours = run_ours(corpus, args.repeat)
    peer = None
    if args.peer_cache and args.peer_cache.exists() and not args.no_peer:
        peer = json.loads(args.peer_cache.read_text())
    elif not args.no_peer:
        peer = run_peer(corpus, args.peer_python)
        if peer and args.peer_cache:
            args.peer_cache.write_text(json.dumps(peer))
    peer_name = f"edgartools {peer['version']}" if peer else "peer"
    by_accession = {job["accession"]: job for job in corpus}
    gt_root = args.edgar_dir / "ground_truth" / "sec-parser-test-data"
    failures: list[str] = []

    # ------------------------------------------------------------- 10-K items found
    print("\n== 10-K items vs ground truth (sec-parser-test-data expected-top-level-sections)")
    print("   found: Y = section located (flags shown), - = missing; ratio = our text chars / GT chars (GT counts HTML)")
    total = found_ours = found_peer = 0
    for gt_file in sorted(gt_root.glob("10-K/*/*/expected-top-level-sections.json")):
        accession = gt_file.parent.name.replace("-", "")
        job = by_accession.get(accession)
        if job is None:
            continue
        ours_sections = ours[job["path"]]["sections"]
        report = ours[job["path"]]["report"]
        peer_sections = peer["results"][job["path"]]["sections"] if peer else {}
        print(f"\n{gt_file.parts[-3]} {gt_file.parent.name}  {job['name']}  doc flags: {','.join(report.flags) or '-'}")
        print(f"   {'item':5s} {'GT chars':>9s} | {'ours':>4s} {'chars':>7s} {'ratio':>5s} {'flags':28s} | {'peer':>4s} {'chars':>7s} {'ratio':>5s}")
        for entry in json.loads(gt_file.read_text()):
            item = entry["identifier"].upper()
            gt_chars = entry["character_count"]
            if gt_chars == 0:  # annotated as absent from this filing (PepsiCo has no Item 6)
                present = item in ours_sections
                print(f"   {item:5s} {gt_chars:9d} | absent from the filing; ours {'found one' if present else 'none either'}")
                continue
            total += 1
            section = report.get(item)
            ok = section is not None
            found_ours += ok
            peer_ok = item in peer_sections
            found_peer += peer_ok
            if not ok:
                failures.append(f"10-K {job['name']} item {item} missing")
            ours_chars = len(section.text) if section else 0
            peer_chars = len(peer_sections.get(item, ""))
            print(f"   {item:5s} {gt_chars:9d} | {'Y' if ok else '-':>4s} {ours_chars:7d} "
                  f"{fmt_ratio(ours_chars / gt_chars if ok else None):>5s} {','.join(section.flags if section else ())[:28]:28s} | "
                  f"{'Y' if peer_ok else '-':>4s} {peer_chars:7d} {fmt_ratio(peer_chars / gt_chars if peer_ok else None):>5s}")
    print(f"\n10-K annotated items found: ours {found_ours}/{total}, {peer_name} {found_peer if peer else '-'}/{total}")

    # ------------------------------------------------------------ 10-Q labelled text
    print("\n== 10-Q labelled text (AAPL 0000320193-23-000077): token recall / precision per item")
    target_rows = []
    for gt_file in sorted(gt_root.glob("10-Q/*/*/expected-structure-and-text.json")):
        accession = gt_file.parent.name.replace("-", "")
        job = by_accession.get(accession)
        if job is None:
            continue
        truth = ten_q_truth(gt_file)
        ours_sections = ours[job["path"]]["sections"]
        peer_sections = peer["results"][job["path"]]["sections"] if peer else {}
        print(f"   {'item':6s} {'GT tokens':>9s} | {'ours R':>6s} {'ours P':>6s} | {'peer R':>6s} {'peer P':>6s}")
        for item, text in truth.items():
            r, p = recall_precision(text, ours_sections.get(item, ""))
            pr, pp = recall_precision(text, peer_sections.get(item, "")) if peer else (None, None)
            total += 1
            if item not in ours_sections:
                failures.append(f"10-Q {job['name']} item {item} missing")
            print(f"   {item:6s} {sum(tokens(text).values()):9d} | {r:6.3f} {p:6.3f} | "
                  f"{'-' if pr is None else f'{pr:6.3f}':>6s} {'-' if pp is None else f'{pp:6.3f}':>6s}")
            if item in ("I-2", "II-1A"):
                target_rows.append((item, r, p))
                if r < 0.95 or p < 0.9:
                    failures.append(f"10-Q {job['name']} {item} recall {r:.3f} precision {p:.3f} below target")

    # ------------------------------------------------------------- whole corpus
    print("\n== Whole corpus: MD&A and Risk Factors located, items found")
    print(f"   {'filing':32s} {'form':4s} | {'ours items':>10s} {'MD&A':>7s} {'RF':>7s} {'ms':>6s} | "
          f"{'peer items':>10s} {'MD&A':>7s} {'RF':>7s} {'ms':>7s}")
    ours_ms, peer_ms, total_bytes = [], [], 0
    mdna_ours = mdna_peer = 0
    for job in corpus:
        mine = ours[job["path"]]
        mdna, rf = ("7", "1A") if job["form"] == "10-K" else ("I-2", "II-1A")
        theirs = peer["results"][job["path"]] if peer else {"sections": {}, "seconds": float("nan"), "error": None}
        total_bytes += mine["bytes"]
        ours_ms.append(mine["seconds"] * 1000)
        peer_ms.append(theirs["seconds"] * 1000)
        mdna_ours += len(mine["sections"].get(mdna, "")) > 0
        mdna_peer += len(theirs["sections"].get(mdna, "")) > 0
        note = f"  peer error: {theirs['error']}" if theirs.get("error") else ""
        print(f"   {job['name'][:32]:32s} {job['form']:4s} | {len(mine['sections']):10d} "
              f"{len(mine['sections'].get(mdna, '')):7d} {len(mine['sections'].get(rf, '')):7d} {mine['seconds'] * 1000:6.0f} | "
              f"{len(theirs['sections']):10d} {len(theirs['sections'].get(mdna, '')):7d} "
              f"{len(theirs['sections'].get(rf, '')):7d} {theirs['seconds'] * 1000:7.0f}{note}")
    n = len(corpus)
    print(f"\nMD&A with text: ours {mdna_ours}/{n}, {peer_name} {mdna_peer if peer else '-'}/{n}")

    # --------------------------------------------------------------------- speed
    megabytes = total_bytes / 1e6
    print(f"\n== Speed over {n} filings, {megabytes:.1f} MB of documents (one process, one thread)")
    print(f"   {'extractor':24s} {'MB/s':>7s} {'ms/filing mean':>15s} {'median':>8s} {'max':>8s}")
    print(f"   {'finsec_assets':24s} {megabytes / (sum(ours_ms) / 1000):7.2f} {statistics.mean(ours_ms):15.0f} "
          f"{statistics.median(ours_ms):8.0f} {max(ours_ms):8.0f}")
    if peer:
        print(f"   {peer_name:24s} {megabytes / (sum(peer_ms) / 1000):7.2f} {statistics.mean(peer_ms):15.0f} "
              f"{statistics.median(peer_ms):8.0f} {max(peer_ms):8.0f}")
        if sum(ours_ms) >= sum(peer_ms):
            failures.append("not faster than the peer")

    print("\n== Targets")
    for item, r, p in target_rows:
        print(f"   {item}: recall {r:.3f} (>= 0.95), precision {p:.3f} (>= 0.90)")
    print("   all targets met" if not failures else "   MISSED:\n     " + "\n     ".join(failures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
