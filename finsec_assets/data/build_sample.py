"""Rebuild the bundled offline sample from a checkout of ``shared/edgar``.

The sample mirrors EDGAR's URL layout (``Archives/...``, ``submissions/...``,
``api/xbrl/companyfacts/...``, ``files/company_tickers.json``) so that sample
mode and the replay test server serve it exactly like the real hosts.

Every document is a real EDGAR file, byte for byte (stored gzipped). Two kinds
of file are derived, and say so in ``SAMPLE.md``:

* submissions JSON of companies whose real file is in ``shared/edgar`` is
  trimmed to the filings bundled here (older pages too), so the index
  never points at a document the sample lacks;
* companies without a real submissions file get one rebuilt from the MANIFEST's
  facts (accession, dates, form, primary document, 8-K items) plus their SIC code;
  for a full-submission ``.txt`` the primary document's name comes from its main
  ``<DOCUMENT>`` and the acceptance time from its SGML header.

Usage: ``python -m finsec_assets.data.build_sample ../shared/edgar``
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
import sys
from pathlib import Path

from finsec_assets.edgar.parsing import full_submission_documents, submission_header

HERE = Path(__file__).parent / "edgar"

# accession -> why it is in the sample
FILINGS = {
    # 2023Q3: ten-Qs
    "0000320193-23-000077": "AAPL 10-Q, ground truth labelled text",
    "0001045810-23-000175": "NVDA 10-Q",
    "0000104169-23-000097": "WMT 10-Q",
    "0000063908-23-000076": "MCD 10-Q",
    "0001637459-23-000114": "KHC 10-Q",
    "0000354950-23-000185": "HD 10-Q",
    "0000097476-23-000035": "TXN 10-Q",
    "0001744489-23-000171": "DIS 10-Q",
    # 2024Q1: ten-Ks with ground truth
    "0001045810-24-000029": "NVDA 10-K",
    "0001628280-24-002390": "TSLA 10-K",
    "0000104169-24-000056": "WMT 10-K",
    "0000063908-24-000072": "MCD 10-K",
    "0000200406-24-000013": "JNJ 10-K",
    "0001637459-24-000018": "KHC 10-K",
    "0000097476-24-000007": "TXN 10-K",
    "0000040545-24-000027": "GE 10-K, cross-reference index",
    "0000077476-24-000008": "PEP 10-K",
    # 8-K current reports
    "0000066740-24-000023": "MMM 8-K 2024Q1, Item 8.01 + EX-99.1 press release, full submission .txt only",
    "0000320193-20-000008": "AAPL 8-K 2020Q1, Items 2.02 and 9.01 (earnings), iXBRL primary document",
    # old and odd
    "0000912057-00-023442": "AAPL 10-Q 2000, SGML full submission, no primaryDocument",
    "0001564590-18-004771": "CARBO Ceramics 10-K 2017, no ticker, later bankrupt",
}

# SIC codes (EDGAR company pages) for companies whose submissions JSON is rebuilt.
SIC = {
    104169: ("5331", "Retail-Variety Stores", "WMT"),
    63908: ("5812", "Retail-Eating Places", "MCD"),
    1637459: ("2030", "Canned, Frozen & Preservd Fruit, Veg & Food Specialties", "KHC"),
    354950: ("5211", "Retail-Lumber & Other Building Materials Dealers", "HD"),
    97476: ("3674", "Semiconductors & Related Devices", "TXN"),
    1744489: ("4841", "Cable & Other Pay Television Services", "DIS"),
    200406: ("2834", "Pharmaceutical Preparations", "JNJ"),
    40545: ("3600", "Electronic & Other Electrical Equipment (No Computer Equip)", "GE"),
    77476: ("2080", "Beverages", "PEP"),
    66740: ("3841", "Surgical & Medical Instruments & Apparatus", "MMM"),
}

COMPANYFACTS = [320193, 1045810, 104169, 63908, 1637459, 1744489, 354950, 97476]


def _read(src: Path) -> bytes:
    if src.exists():
        return src.read_bytes()
    return gzip.decompress(src.with_name(src.name + ".gz").read_bytes())


def _put(rel: str, data: bytes, gz: bool = True) -> None:
    dst = HERE / (rel + (".gz" if gz else ""))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(gzip.compress(data, 9, mtime=0) if gz else data)


def main(shared: Path) -> None:
    if HERE.exists():
        shutil.rmtree(HERE)
    rows = list(csv.DictReader(open(shared / "MANIFEST.tsv"), delimiter="\t"))
    by_acc: dict[str, dict] = {}
    for r in rows:
        p = r["path"]
        if p.startswith("Archives/edgar/data/") and p.count("/") == 5:
            folder = p.split("/")[4]
            acc = f"{folder[:10]}-{folder[10:12]}-{folder[12:]}"
            if acc in FILINGS and not r["form"].startswith("EX-"):
                by_acc[acc] = r
    missing = set(FILINGS) - set(by_acc)
    if missing:
        raise SystemExit(f"not in MANIFEST: {sorted(missing)}")
    for r in by_acc.values():
        r["path"] = r["path"].removesuffix(".gz")  # MANIFEST names the stored file
    for acc, r in by_acc.items():
        _put(r["path"], _read(shared / r["path"]))
        if r["path"].endswith(".txt"):  # the same full submission at its canonical path
            cik = r["cik"]
            _put(f"Archives/edgar/data/{cik}/{acc}.txt", _read(shared / r["path"]))
    _put("files/company_tickers.json", _read(shared / "files/company_tickers.json"))
    for cik in COMPANYFACTS:
        rel = f"api/xbrl/companyfacts/CIK{cik:010d}.json"
        _put(rel, _read(shared / rel))

    ciks = sorted({int(r["cik"]) for r in by_acc.values()})
    for cik in ciks:
        mine = {a: r for a, r in by_acc.items() if int(r["cik"]) == cik}
        real = shared / f"submissions/CIK{cik:010d}.json"
        if real.exists():
            sub = json.loads(real.read_text())
            pages = []
            for page in sub["filings"]["files"]:
                if not (shared / "submissions" / page["name"]).exists():
                    continue
                body = json.loads((shared / "submissions" / page["name"]).read_text())
                kept = _keep(body, mine)
                if kept["accessionNumber"]:
                    _put(f"submissions/{page['name']}", json.dumps(kept).encode(), gz=False)
                    pages.append({**page, "filingCount": len(kept["accessionNumber"])})
            sub["filings"]["recent"] = _keep(sub["filings"]["recent"], mine)
            sub["filings"]["files"] = pages
        else:
            sic, desc, ticker = SIC[cik]
            any_row = next(iter(mine.values()))
            arrays = {k: [] for k in ("accessionNumber", "filingDate", "reportDate", "acceptanceDateTime", "form",
                                     "items", "primaryDocument", "primaryDocDescription", "size")}
            for acc, r in sorted(mine.items(), key=lambda kv: kv[1]["period/filing date"], reverse=True):
                period, filed = _dates(r["period/filing date"])
                form = r["form"].split(" (")[0]  # "8-K (complete submission)" -> "8-K"
                primary, items, accepted = r["path"].rsplit("/", 1)[1].removesuffix(".gz"), "", ""
                if r["path"].endswith(".txt"):  # a full submission: its header and main <DOCUMENT> say the rest
                    data = _read(shared / r["path"])
                    header = submission_header(data)
                    blocks = full_submission_documents(data)
                    primary = next((b.filename for b in blocks if b.type == form and b.filename), primary)
                    items = ",".join(_manifest_items(r["notes"]) or header.items)
                    accepted = f"{header.acceptance_datetime}.000Z" if header.acceptance_datetime else ""
                arrays["accessionNumber"].append(acc)
                arrays["filingDate"].append(filed)
                arrays["reportDate"].append(period)
                arrays["acceptanceDateTime"].append(accepted)
                arrays["form"].append(form)
                arrays["items"].append(items)
                arrays["primaryDocument"].append(primary)
                arrays["primaryDocDescription"].append(form)
                arrays["size"].append(int(r["bytes"]))
            sub = {"cik": f"{cik:010d}", "name": any_row["company"], "sic": sic,
                   "sicDescription": desc, "tickers": [ticker], "exchanges": ["NYSE"],
                   "_finsec_note": "rebuilt from shared/edgar/MANIFEST.tsv for the offline sample",
                   "filings": {"recent": arrays, "files": []}}
        _put(f"submissions/CIK{cik:010d}.json", json.dumps(sub).encode(), gz=False)
    print(f"sample: {len(by_acc)} filings, {len(ciks)} companies -> {HERE}")


def _manifest_items(notes: str) -> list[str]:
    """'... items 8.01, 9.01 ...' in a MANIFEST note -> ['8.01', '9.01']."""
    match = re.search(r"\bitems? (\d\.\d\d(?:(?:,| and) \d\.\d\d)*)", notes)
    return re.findall(r"\d\.\d\d", match.group(1)) if match else []


def _dates(field: str) -> tuple[str, str]:
    period = field.split("period ")[1].split(";")[0].strip()
    filed = field.split("filed ")[1].strip()
    return period, filed


def _keep(arrays: dict, mine: dict) -> dict:
    idx = [i for i, a in enumerate(arrays["accessionNumber"]) if a in mine]
    return {k: [v[i] for i in idx] for k, v in arrays.items()}


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/edgar"))
