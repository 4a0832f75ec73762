"""Ingest the whole ../shared/edgar corpus through the replay server: requests/s against the 10/s ceiling,
MB/s stored, and the time of a cached re-run.

    .venv/bin/python benchmarks/ingest.py [--root ../shared/edgar]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from finsec_assets.edgar.client import EdgarClient
from finsec_assets.edgar.ingest import fetch_filings
from finsec_assets.edgar.ratelimit import RateLimiter
from finsec_assets.edgar.replay import ReplayServer
from finsec_assets.storage.object_store import ObjectStore

ROOT = Path(__file__).resolve().parents[1]


def corpus(root: Path):
    """The 10-K/10-Q documents, submissions and company facts listed in MANIFEST.tsv."""
    import csv

    import pandas as pd

    rows = list(csv.DictReader(open(root / "MANIFEST.tsv"), delimiter="\t"))
    docs, json_paths = [], []
    for r in rows:
        path = r["path"].removesuffix(".gz")
        parts = path.split("/")
        if path.startswith("Archives/edgar/data/") and len(parts) == 6 and r["form"] in ("10-K", "10-Q"):
            folder = parts[4]
            filed = r["period/filing date"].split("filed ")[1].strip()
            docs.append({"accession": f"{folder[:10]}-{folder[10:12]}-{folder[12:]}", "cik": int(parts[3]),
                         "form": r["form"], "filing_date": filed, "report_date": None, "primary_document": parts[5]})
        elif path.startswith(("submissions/", "api/xbrl/companyfacts/")):
            json_paths.append("/" + path)
    return pd.DataFrame(docs).drop_duplicates("accession"), json_paths


def max_in_window(times: list[float]) -> int:
    times, best, j = sorted(times), 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "edgar"))
    args = ap.parse_args()
    root = Path(args.root)
    if not (root / "submissions").is_dir():
        root = ROOT / "finsec_assets" / "data" / "edgar"
        print(f"../shared/edgar not found; using the bundled sample {root}")
    # The shared corpus has submissions JSON for a few companies only; index every quarter they filed in.
    work = Path(tempfile.mkdtemp(prefix="finsec-ingest-"))
    try:
        with ReplayServer(root) as server:
            rows = []
            for label, cached in (("cold", False), ("cached re-run", True)):
                store = ObjectStore(str(work / "objects"))
                client = EdgarClient(source="live", www_url=server.url, data_url=server.url,
                                     user_agent="finsec benchmark bench@example.com", cache=store, limiter=RateLimiter(10))
                n0 = len(server.requests)
                t0 = time.perf_counter()
                index, json_paths = corpus(root)
                for path in json_paths:
                    client.get("data", path)
                raw, problems, fetched = fetch_filings(client, store, index, threads=8)
                elapsed = time.perf_counter() - t0
                stamps = [t for t, *_ in server.requests[n0:]]
                ok = raw[raw["uri"].notna()]
                mb = float(ok["bytes"].sum()) / 1e6 + sum(len(client.get('data', p)) for p in json_paths) / 1e6
                rows.append((label, len(index), len(ok), len(problems.items), len(stamps), elapsed,
                             len(stamps) / elapsed if elapsed else 0, max_in_window(stamps) if stamps else 0,
                             mb, mb / elapsed))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nIngest through the replay server ({root})")
    print(f"{'run':16s} {'filings':>7s} {'stored':>6s} {'failed':>6s} {'requests':>8s} {'seconds':>8s} {'req/s':>6s} "
          f"{'max/1s':>6s} {'MB':>7s} {'MB/s':>6s}")
    for r in rows:
        print(f"{r[0]:16s} {r[1]:7d} {r[2]:6d} {r[3]:6d} {r[4]:8d} {r[5]:8.2f} {r[6]:6.2f} {r[7]:6d} {r[8]:7.1f} {r[9]:6.1f}")
    print("ceiling: 10 requests in any one-second window (max/1s must be <= 10)")


if __name__ == "__main__":
    main()
