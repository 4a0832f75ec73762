"""The ingestion steps behind company_universe, filing_index and raw_filings, as plain functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from ..storage.object_store import ObjectStore
from .client import EdgarClient, EdgarError
from .parsing import (
    EdgarDataError,
    FilingRef,
    base_form,
    is_10k_or_10q,
    is_amendment,
    normalize_cik,
    sic_division,
    sniff_content,
)

log = logging.getLogger(__name__)

UNIVERSE_COLUMNS = ["cik", "ticker", "name", "sic", "industry_code"]
INDEX_COLUMNS = ["accession", "cik", "form", "is_amendment", "filing_date", "report_date", "primary_document", "url"]
RAW_COLUMNS = ["accession", "cik", "form", "filing_date", "uri", "sha256", "bytes", "content_type", "source", "fetched_at", "error"]


@dataclass
class Problems:
    """Per-item failures that must not stop the rest of the batch."""

    items: list[str] = field(default_factory=list)
    failed: dict = field(default_factory=dict)  # key (a CIK, an accession) -> message, for checks that name them

    def add(self, what: str, exc: Exception | str, key=None) -> None:
        msg = f"{what}: {exc}"
        log.warning(msg)
        self.items.append(msg)
        if key is not None:
            self.failed[key] = msg


def resolve_universe(client: EdgarClient, entries: tuple[str, ...] | list[str]) -> tuple[pd.DataFrame, Problems]:
    """Tickers or CIKs to company rows (name and SIC from the submissions JSON)."""
    problems = Problems()
    tickers = None
    rows = []
    for entry in entries:
        try:
            if entry.isdigit():
                cik, ticker = normalize_cik(entry), None
            else:
                tickers = tickers if tickers is not None else client.company_tickers()
                if entry.upper() not in tickers:
                    raise EdgarDataError(f"unknown ticker (not in company_tickers.json); give its CIK instead")
                cik, ticker = tickers[entry.upper()], entry.upper()
            sub = client.submissions(cik)
            ticker = ticker or next(iter(sub.get("tickers") or []), None)
            sic = str(sub.get("sic") or "") or None
            rows.append({"cik": cik, "ticker": ticker, "name": sub.get("name"), "sic": sic,
                         "industry_code": sic_division(sic)})
        except (EdgarError, EdgarDataError) as exc:
            problems.add(f"universe entry {entry!r}", exc)
    df = pd.DataFrame(rows, columns=UNIVERSE_COLUMNS).drop_duplicates("cik").reset_index(drop=True)
    return _strings(df.astype({"cik": "int64"})), problems


def filing_index(client: EdgarClient, ciks: list[int], start: dt.date, end: dt.date) -> tuple[pd.DataFrame, Problems]:
    """Every 10-K/10-Q (amendments flagged) of the companies filed in [start, end)."""
    problems = Problems()
    rows = []
    for cik in ciks:
        try:
            refs = client.filings(cik, since=start, until=end)
        except (EdgarError, EdgarDataError) as exc:
            problems.add(f"submissions of CIK {cik}", exc, key=int(cik))
            continue
        for ref in refs:
            if not is_10k_or_10q(ref.form) or not (start.isoformat() <= ref.filing_date < end.isoformat()):
                continue
            rows.append({"accession": ref.accession, "cik": ref.cik, "form": ref.form,
                         "is_amendment": is_amendment(ref.form), "filing_date": ref.filing_date,
                         "report_date": ref.report_date, "primary_document": ref.primary_document,
                         "url": client._url("www", ref.document_path)})
    df = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    df = df.drop_duplicates("accession").sort_values(["filing_date", "cik", "accession"]).reset_index(drop=True)
    return _strings(df.astype({"cik": "int64", "is_amendment": bool})), problems


def document_key(cik: int, accession: str, primary_document: str | None) -> str:
    return f"filings/{cik}/{accession}/{primary_document or 'main-document.txt'}"


def fetch_filings(client: EdgarClient, store: ObjectStore, index: pd.DataFrame, previous: pd.DataFrame | None = None,
                  threads: int = 4) -> tuple[pd.DataFrame, Problems, int]:
    """Store each filing's primary document; reuse what a previous run stored. Returns (rows, problems, fetched)."""
    problems = Problems()
    reuse = {}
    if previous is not None and len(previous):
        ok = previous[previous["error"].isna()] if "error" in previous else previous
        reuse = {r["accession"]: r for r in ok.to_dict("records")}

    def one(rec: dict) -> tuple[dict, bool]:
        base = {"accession": rec["accession"], "cik": int(rec["cik"]), "form": rec["form"], "filing_date": rec["filing_date"]}
        key = document_key(rec["cik"], rec["accession"], rec["primary_document"])
        old = reuse.get(rec["accession"])
        if old is not None and old.get("uri") == store.uri(key) and store.exists(key):
            return old, False
        ref = FilingRef(rec["accession"], int(rec["cik"]), rec["form"], rec["filing_date"], rec["report_date"], rec["primary_document"])
        try:
            data, source = client.filing_document(ref)
            kind = sniff_content(data)
            if kind in ("empty", "binary", "pdf"):
                raise EdgarDataError(f"primary document is {kind}, not HTML or text ({len(data)} bytes)")
            uri = store.put_bytes(key, data)
            return {**base, "uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                    "content_type": kind, "source": source, "fetched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "error": None}, True
        except (EdgarError, EdgarDataError) as exc:
            problems.add(f"filing {rec['accession']} (CIK {rec['cik']}, {base_form(rec['form'])})", exc)
            return {**base, "uri": None, "sha256": None, "bytes": None, "content_type": None, "source": None,
                    "fetched_at": None, "error": str(exc)}, False

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(one, index.to_dict("records")))
    rows = [r for r, _ in results]
    fetched = sum(f for _, f in results)
    df = pd.DataFrame(rows, columns=RAW_COLUMNS)
    return _strings(df.astype({"cik": "int64", "bytes": "Int64"})), problems, fetched


def _strings(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns as string dtype, so all-null columns still store as VARCHAR."""
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].astype("string")
    return df
