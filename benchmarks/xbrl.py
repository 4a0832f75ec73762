"""Inline-XBRL facts: correctness against SEC's companyfacts and speed, ours vs Arelle and ixbrlparse; dataset sizes.

    .venv/bin/python benchmarks/xbrl.py [--edgar-dir ../shared/edgar] [--peer-filings 6] [--json out.json]

Corpus: every iXBRL 10-K/10-Q primary document in ``<edgar-dir>/MANIFEST.tsv`` (36 filings). Correctness: for each
filing whose company has ``api/xbrl/companyfacts`` JSON, every companyfacts fact whose ``accn`` is that filing must
be among the reader's non-dimensional facts with the same value, period and unit (companyfacts writes unit names cut
at 20 characters and a one-day duration as an instant; both are applied to our side before comparing).

Speed: facts/s and MB/s of uncompressed HTML. Ours is timed end to end (parse, transforms, contexts *and* the
alignment to section text, which runs the text cleaner and the section extractor); the peers only read facts.
Arelle runs offline (no taxonomy download: the DTS is missing, so facts keep their values but concepts have no
types); ixbrlparse reads with BeautifulSoup. Peers run on the first ``--peer-filings`` filings with companyfacts
(they are slow); ours on all. Dataset sizes: the five dataset builders on all corpus filings, rows per 100 filings
(filing_industry needs pooled embeddings, one row per filing; not built here).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from finsec_assets.text.sections import extract_sections_with_report  # noqa: E402
from finsec_assets.xbrl import datasets as ds  # noqa: E402
from finsec_assets.xbrl import extract_facts  # noqa: E402
from finsec_assets.xbrl.companyfacts import agreement, companyfacts_for_accession, load_companyfacts  # noqa: E402

DEFAULT_EDGAR = REPO.parent / "shared" / "edgar"


def corpus(edgar: Path) -> list[dict]:
    facts_dir = edgar / "api" / "xbrl" / "companyfacts"
    by_cik = {int(p.name[3:13]): p for p in facts_dir.glob("CIK*.json*")}
    out, seen = [], set()
    with open(edgar / "MANIFEST.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            path = row["path"]
            if row["form"] not in ("10-K", "10-Q") or not re.search(r"/\d{18}/[^/]+\.htm(\.gz)?$", path) or row["sha256"] in seen:
                continue
            seen.add(row["sha256"])
            raw = (edgar / path).read_bytes()
            html = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            if b"inlineXBRL" not in html[:20000]:
                continue
            cik, folder = int(path.split("/")[3]), path.split("/")[4]
            out.append({"path": path, "cik": cik, "accession": f"{folder[:10]}-{folder[10:12]}-{folder[12:]}",
                        "form": row["form"], "html": html, "companyfacts": by_cik.get(cik)})
    return out


# ------------------------------------------------------------------------------------ peers


def arelle_facts(html: bytes) -> pd.DataFrame:
    """Arelle (offline) -> the columns agreement() needs."""
    from arelle import Cntlr

    logging.getLogger("arelle").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "filing.htm"
        path.write_bytes(html)
        cntlr = Cntlr.Cntlr(logFileName="logToBuffer")
        cntlr.webCache.workOffline = True
        model = cntlr.modelManager.load(str(path))
        rows = []
        for f in model.facts:
            ctx = f.context
            if f.localName != "nonFraction" or ctx is None:
                continue
            try:
                value = float(f.value) if f.value not in (None, "") else float("nan")
            except ValueError:
                value = float("nan")
            one = dt.timedelta(days=1)  # Arelle's end and instant datetimes are exclusive (midnight after the day)
            if ctx.isInstantPeriod:
                start, end = "", (ctx.instantDatetime - one).date().isoformat()
            elif ctx.isStartEndPeriod:
                start, end = ctx.startDatetime.date().isoformat(), (ctx.endDatetime - one).date().isoformat()
            else:
                start, end = "", ""
            unit = ""
            if f.unit is not None:
                num, den = f.unit.measures
                unit = "*".join(q.localName for q in num) + ("/" + "*".join(q.localName for q in den) if den else "")
            rows.append({"concept": str(f.qname), "is_numeric": True, "unit": unit, "period_start": start,
                         "period_end": end, "value": value, "dimensions": {} if not ctx.qnameDims else {"dims": 1}})
        cntlr.modelManager.close()
        cntlr.close()
    return pd.DataFrame(rows, columns=["concept", "is_numeric", "unit", "period_start", "period_end", "value", "dimensions"])


def ixbrlparse_facts(html: bytes) -> pd.DataFrame:
    import warnings

    from ixbrlparse import IXBRL

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one warning per fact in a format it does not implement
        doc = IXBRL(io.BytesIO(html), raise_on_error=False)
    rows = []
    for f in doc.numeric:
        ctx = f.context
        if ctx is None or isinstance(ctx, str):
            continue
        start = ctx.startdate.isoformat() if getattr(ctx, "startdate", None) else ""
        end = (ctx.enddate or ctx.instant).isoformat() if (getattr(ctx, "enddate", None) or getattr(ctx, "instant", None)) else ""
        value = f.value if isinstance(f.value, (int, float)) else float("nan")
        unit = str(f.unit or "").rsplit(":", 1)[-1]
        rows.append({"concept": f"{f.schema}:{f.name}", "is_numeric": True, "unit": unit, "period_start": start,
                     "period_end": end, "value": float(value), "dimensions": {} if not ctx.segments else {"dims": 1}})
    return pd.DataFrame(rows, columns=["concept", "is_numeric", "unit", "period_start", "period_end", "value", "dimensions"])


# ------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edgar-dir", type=Path, default=DEFAULT_EDGAR)
    parser.add_argument("--peer-filings", type=int, default=6, help="filings the (slow) peers read; 0 skips them")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    if not (args.edgar_dir / "MANIFEST.tsv").exists():
        print(f"no corpus at {args.edgar_dir} (needs MANIFEST.tsv)", file=sys.stderr)
        return 2
    filings = corpus(args.edgar_dir)
    cache: dict = {}

    def sec_facts(f: dict) -> pd.DataFrame | None:
        if f["companyfacts"] is None:
            return None
        cf = cache.setdefault(f["companyfacts"], load_companyfacts(f["companyfacts"].read_bytes()))
        return companyfacts_for_accession(cf, f["accession"])

    readers = {"ours": extract_facts, "arelle": arelle_facts, "ixbrlparse": ixbrlparse_facts}
    stats = {name: {"filings": 0, "seconds": 0.0, "mb": 0.0, "facts": 0, "sec_facts": 0, "found": 0} for name in readers}
    per_filing, all_facts, all_sections, misses = [], [], [], []
    with_cf = [f for f in filings if f["companyfacts"] is not None]
    peer_set = {f["accession"] for f in with_cf[: args.peer_filings]}
    for f in filings:
        truth = sec_facts(f)
        row = {"filing": Path(f["path"]).name, "mb": round(len(f["html"]) / 1e6, 2)}
        for name, reader in readers.items():
            if name != "ours" and f["accession"] not in peer_set:
                continue
            t0 = time.perf_counter()
            try:
                facts = reader(f["html"])
            except Exception as exc:  # a peer that fails on a filing counts as finding nothing
                print(f"{name} failed on {f['path']}: {exc!r}", file=sys.stderr)
                facts = pd.DataFrame(columns=["concept", "is_numeric", "unit", "period_start", "period_end", "value", "dimensions"])
            seconds = time.perf_counter() - t0
            s = stats[name]
            s["filings"] += 1
            s["seconds"] += seconds
            s["mb"] += len(f["html"]) / 1e6
            s["facts"] += len(facts)
            if truth is not None:
                summary, missed = agreement(facts, truth)
                s["sec_facts"] += summary["sec_facts"]
                s["found"] += summary["found"]
                row[f"{name}_agreement"] = round(summary["agreement"], 4)
                if name == "ours" and len(missed):
                    misses.append(missed.assign(filing=row["filing"]))
            row[f"{name}_s"] = round(seconds, 2)
            if name == "ours":
                row["facts"] = len(facts)
                row["aligned"] = int(facts["section"].notna().sum())
                report = extract_sections_with_report(f["html"], f["form"])
                all_facts.append(facts.assign(accession=f["accession"], cik=f["cik"]))
                all_sections.append(pd.DataFrame([{"accession": f["accession"], "cik": f["cik"], "item": x.item,
                                                   "text": x.text, "start": x.start} for x in report.sections]))
        per_filing.append(row)

    print(f"Corpus: {len(filings)} iXBRL 10-K/10-Q filings, {sum(len(f['html']) for f in filings) / 1e6:.0f} MB of HTML; "
          f"{len(with_cf)} with companyfacts; peers on {len(peer_set)}.\n")
    print("| reader | filings | facts | facts/s | MB/s | companyfacts facts | found | agreement |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in stats.items():
        if not s["filings"]:
            continue
        agree = s["found"] / s["sec_facts"] if s["sec_facts"] else float("nan")
        print(f"| {name} | {s['filings']} | {s['facts']} | {s['facts'] / s['seconds']:.0f} | {s['mb'] / s['seconds']:.2f} | "
              f"{s['sec_facts']} | {s['found']} | {agree:.2%} |")
    # Same filings for all: the peers' subset.
    if peer_set:
        print(f"\nOn the {len(peer_set)} filings every reader read:")
        print("| reader | seconds | companyfacts agreement |")
        print("|---|---:|---:|")
        for name in readers:
            rows = [r for r in per_filing if f"{name}_s" in r and any(a == r["filing"] for a in
                    [Path(f["path"]).name for f in filings if f["accession"] in peer_set])]
            secs = sum(r[f"{name}_s"] for r in rows)
            agrees = [r[f"{name}_agreement"] for r in rows if f"{name}_agreement" in r]
            print(f"| {name} | {secs:.1f} | {sum(agrees) / len(agrees):.2%} (mean per filing) |" if agrees else f"| {name} | {secs:.1f} | - |")
    if misses:
        print("\nOur misses against companyfacts:")
        print(pd.concat(misses)[["filing", "concept", "unit", "period_start", "period_end", "value", "reason"]].to_markdown(index=False))

    facts, sections = pd.concat(all_facts, ignore_index=True), pd.concat(all_sections, ignore_index=True)
    n = facts["accession"].nunique()
    built = {"ner_dataset": ds.ner_dataset(facts, sections)[0], "qa_dataset": ds.qa_dataset(facts, sections)[0],
             "relation_dataset": ds.relation_dataset(facts, sections)[0],
             "classification_dataset (paragraph_item)": ds.classification_dataset(sections, None, None)[0],
             "summarization_dataset": ds.summarization_dataset(sections)[0]}
    print(f"\nDataset sizes on these {n} filings ({facts['cik'].nunique()} companies):")
    print("| dataset | rows | rows per 100 filings | train / validation / test |")
    print("|---|---:|---:|---|")
    for name, df in built.items():
        split = " / ".join(str(int((df["split"] == s).sum())) for s in ds.SPLITS)
        print(f"| {name} | {len(df)} | {100 * len(df) / n:.0f} | {split} |")
    aligned = facts[facts["is_numeric"] & ~facts["is_hidden"]]
    print(f"\nAlignment: {int(aligned['section'].notna().sum())} of {len(aligned)} visible numeric facts placed in a "
          f"section ({int((~aligned['in_table']).sum())} in prose, of which "
          f"{int((aligned['section'].notna() & ~aligned['in_table']).sum())} placed; facts in data tables are not in the text).")
    if args.json:
        args.json.write_text(json.dumps({"readers": stats, "filings": per_filing,
                                         "datasets": {k: len(v) for k, v in built.items()}, "n_filings": n}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
