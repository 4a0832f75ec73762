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
from .exhibits import eight_k_documents
from .parsing import (
    EdgarDataError,
    FilingRef,
    base_form,
    is_8k,
    is_amendment,
    normalize_cik,
    parse_full_index,
    quarter_of,
    sic_division,
    sniff_content,
    wanted_form,
)

log = logging.getLogger(__name__)

UNIVERSE_COLUMNS = ["cik", "ticker", "name", "sic", "industry_code"]
INDEX_COLUMNS = ["accession", "cik", "form", "is_amendment", "filing_date", "report_date", "primary_document", "url",
                 "items", "acceptance_datetime"]
# One row per stored document: the primary document (is_primary=True, document_type = the form) and, for 8-Ks,
# each EX-99 exhibit; images and PDFs are rows with skip_reason and no uri. (accession, document) is the key.
RAW_COLUMNS = ["accession", "cik", "form", "filing_date", "document_type", "document", "is_primary", "uri", "sha256", "bytes",
               "content_type", "source", "fetched_at", "skip_reason", "error"]
DEFAULT_FORMS = ("10-K", "10-Q", "8-K")


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


def filing_index(client: EdgarClient, ciks: list[int], start: dt.date, end: dt.date,
                 forms: tuple[str, ...] = DEFAULT_FORMS, via_full_index: bool | None = None) -> tuple[pd.DataFrame, Problems]:
    """Every filing of the ``forms`` families (FINSEC_FORMS; amendments flagged) the companies filed in [start, end);
    8-K rows carry EDGAR's ``items`` ("2.02,9.01").

    ``via_full_index`` (default: ``client.bulk``, i.e. a large universe) lists the quarter's filings from EDGAR's
    full-index, one request for every company, and takes each filing's primary document, report date, items and
    acceptance time from the company's submissions, which ``client.bulk`` reads from the nightly bulk
    submissions.zip (master.idx names the filing, not its primary document). A filing the index lists but the
    nightly archive does not know yet is looked up with one fresh submissions request for its company."""
    if via_full_index is None:
        via_full_index = client.bulk
    ciks = [int(c) for c in ciks]
    problems = Problems()
    rows = []
    if via_full_index:
        refs_by_cik, problems = _refs_via_full_index(client, ciks, start, end, forms)
    else:
        refs_by_cik = {}
        for cik in ciks:
            try:
                refs_by_cik[cik] = client.filings(cik, since=start, until=end)
            except (EdgarError, EdgarDataError) as exc:
                problems.add(f"submissions of CIK {cik}", exc, key=cik)
    for refs in refs_by_cik.values():
        for ref in refs:
            if not wanted_form(ref.form, forms) or not (start.isoformat() <= ref.filing_date < end.isoformat()):
                continue
            rows.append({"accession": ref.accession, "cik": ref.cik, "form": ref.form,
                         "is_amendment": is_amendment(ref.form), "filing_date": ref.filing_date,
                         "report_date": ref.report_date, "primary_document": ref.primary_document,
                         "url": client._url("www", ref.document_path),
                         "items": ref.items if is_8k(ref.form) else None,
                         "acceptance_datetime": ref.acceptance_datetime})
    df = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    df = df.drop_duplicates("accession").sort_values(["filing_date", "cik", "accession"]).reset_index(drop=True)
    return _strings(df.astype({"cik": "int64", "is_amendment": bool})), problems


def quarters_between(start: dt.date, end: dt.date) -> list[tuple[int, int]]:
    """(year, quarter) of every calendar quarter that meets [start, end)."""
    out, day = [], quarter_of(start)
    while day < end:
        out.append((day.year, (day.month - 1) // 3 + 1))
        day = dt.date(day.year + (day.month == 10), (day.month + 2) % 12 + 1, 1)
    return out


def _refs_via_full_index(client: EdgarClient, ciks: list[int], start: dt.date, end: dt.date,
                         forms: tuple[str, ...]) -> tuple[dict[int, list[FilingRef]], Problems]:
    """The quarter's wanted filings of ``ciks`` from master.idx, detailed from each company's submissions."""
    problems = Problems()
    wanted = set(ciks)
    listed: dict[int, dict[str, object]] = {}  # cik -> accession -> index entry
    for year, quarter in quarters_between(start, end):
        source = f"full-index/{year}/QTR{quarter}/master.idx"
        try:
            entries = parse_full_index(client.full_index(year, quarter, "master"), "master", source)
        except (EdgarError, EdgarDataError) as exc:  # without the index, fall back to one request per company
            problems.add(f"{source} (reading each company's submissions instead)", exc)
            return {cik: _filings_or_problem(client, cik, start, end, problems) for cik in ciks}, problems
        for e in entries:
            if e.cik in wanted and wanted_form(e.form, forms) and start.isoformat() <= e.date_filed < end.isoformat():
                listed.setdefault(e.cik, {})[e.accession] = e
    out: dict[int, list[FilingRef]] = {}
    for cik, entries in sorted(listed.items()):
        refs = {r.accession: r for r in _filings_or_problem(client, cik, start, end, problems)}
        if set(entries) - set(refs):  # filed after the nightly archive was built: ask EDGAR for this company now
            try:
                refs.update({r.accession: r for r in client.filings(cik, since=start, until=end, refresh=True)})
            except (EdgarError, EdgarDataError) as exc:
                problems.add(f"submissions of CIK {cik}", exc, key=cik)
        chosen = []
        for acc, e in sorted(entries.items()):
            ref = refs.get(acc)
            if ref is None:  # still unknown: the full submission .txt holds the document (see filing_document)
                ref = FilingRef(acc, cik, e.form, e.date_filed, None, None)
            chosen.append(ref)
        out[cik] = chosen
    return out, problems


def _filings_or_problem(client: EdgarClient, cik: int, start: dt.date, end: dt.date, problems: Problems) -> list[FilingRef]:
    try:
        return client.filings(cik, since=start, until=end)
    except (EdgarError, EdgarDataError) as exc:
        problems.add(f"submissions of CIK {cik}", exc, key=int(cik))
        return []


def document_key(cik: int, accession: str, primary_document: str | None) -> str:
    return f"filings/{cik}/{accession}/{primary_document or 'main-document.txt'}"


def fetch_filings(client: EdgarClient, store: ObjectStore, index: pd.DataFrame, previous: pd.DataFrame | None = None,
                  threads: int = 4) -> tuple[pd.DataFrame, Problems, int]:
    """Store each filing's primary document (and an 8-K's EX-99 exhibits); reuse what a previous run stored.

    Returns (rows, problems, documents fetched). A filing whose documents are all stored is not fetched again.
    """
    problems = Problems()
    reuse: dict[str, list[dict]] = {}
    if previous is not None and len(previous) and "document_type" in previous:
        for rec in previous.to_dict("records"):
            reuse.setdefault(rec["accession"], []).append(rec)

    def reusable(rec: dict) -> list[dict] | None:
        old = reuse.get(rec["accession"])
        if not old or any(not _missing(r.get("error")) for r in old):
            return None
        primary = [r for r in old if r.get("is_primary")]
        if len(primary) != 1 or primary[0].get("uri") != store.uri(document_key(rec["cik"], rec["accession"], rec["primary_document"])):
            return None
        if not all(store.exists(r["uri"]) for r in old if not _missing(r.get("uri"))):
            return None
        return old

    def one(rec: dict) -> tuple[list[dict], int]:
        base = {"accession": rec["accession"], "cik": int(rec["cik"]), "form": rec["form"], "filing_date": rec["filing_date"]}
        old = reusable(rec)
        if old is not None:
            return old, 0
        ref = FilingRef(rec["accession"], int(rec["cik"]), rec["form"], rec["filing_date"], rec["report_date"], rec["primary_document"])
        what = f"filing {rec['accession']} (CIK {rec['cik']}, {base_form(rec['form'])})"
        try:
            if is_8k(rec["form"]):
                documents, notes = eight_k_documents(client, ref)
                for note in notes:
                    log.info(f"{what}: {note}")
            else:
                data, source = client.filing_document(ref)
                documents = [_Document(base_form(rec["form"]), rec["primary_document"], data, source, True)]
        except (EdgarError, EdgarDataError) as exc:
            problems.add(what, exc)
            return [{**base, "document_type": base_form(rec["form"]), "document": rec["primary_document"], "is_primary": True,
                     **_EMPTY, "error": str(exc)}], 0
        rows, fetched = [], 0
        for doc in documents:
            row = {**base, "document_type": doc.document_type, "document": doc.document, "is_primary": doc.primary, **_EMPTY,
                   "source": doc.source}
            if doc.data is None:
                if doc.error:
                    problems.add(f"{what} exhibit {doc.document} ({doc.document_type})", doc.error)
                rows.append({**row, "skip_reason": doc.skip_reason, "error": doc.error})
                continue
            kind = sniff_content(doc.data)
            if kind in ("empty", "binary", "pdf"):
                reason = f"{'primary document' if doc.primary else 'exhibit'} is {kind}, not HTML or text ({len(doc.data)} bytes)"
                if doc.primary:
                    problems.add(what, reason)
                    rows.append({**row, "error": reason})
                else:
                    rows.append({**row, "content_type": kind, "bytes": len(doc.data), "skip_reason": reason})
                continue
            key = document_key(rec["cik"], rec["accession"], rec["primary_document"] if doc.primary else doc.document)
            uri = store.put_bytes(key, doc.data)
            fetched += 1
            rows.append({**row, "uri": uri, "sha256": hashlib.sha256(doc.data).hexdigest(), "bytes": len(doc.data),
                         "content_type": kind, "fetched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        return rows, fetched

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(one, index.to_dict("records")))
    rows = [r for rs, _ in results for r in rs]
    fetched = sum(f for _, f in results)
    df = pd.DataFrame(rows, columns=RAW_COLUMNS)
    return _strings(df.astype({"cik": "int64", "bytes": "Int64", "is_primary": bool})), problems, fetched


_EMPTY = {"uri": None, "sha256": None, "bytes": None, "content_type": None, "source": None, "fetched_at": None,
          "skip_reason": None, "error": None}


@dataclass(frozen=True)
class _Document:
    document_type: str
    document: str | None
    data: bytes
    source: str
    primary: bool
    skip_reason: str | None = None
    error: str | None = None


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def _strings(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns as string dtype, so all-null columns still store as VARCHAR."""
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].astype("string")
    return df
