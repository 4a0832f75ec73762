"""Parsers and identifiers for EDGAR data: CIKs, accessions, quarters, submissions, SGML."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

ACCESSION_RE = re.compile(r"^\d{10}-\d{2}-\d{6}$")
ANNUAL_QUARTERLY_FORMS = ("10-K", "10-Q", "10-K405", "10-KT", "10-QT", "10-KSB", "10-QSB")
EDGAR_FIRST_QUARTER = dt.date(1993, 1, 1)


class EdgarDataError(ValueError):
    """EDGAR data that is malformed; the message names the source."""


def normalize_cik(value: str | int) -> int:
    text = str(value).strip().upper().removeprefix("CIK")
    if not text.isdigit() or not 0 < int(text) < 10**10:
        raise EdgarDataError(f"{value!r} is not a CIK (expected 1 to 10 digits, e.g. 320193 or 0000320193)")
    return int(text)


def cik10(cik: int) -> str:
    return f"{int(cik):010d}"


def validate_accession(accession: str) -> str:
    if not isinstance(accession, str) or not ACCESSION_RE.match(accession):
        raise EdgarDataError(f"{accession!r} is not an accession number (expected 0000320193-24-000123)")
    return accession


def base_form(form: str) -> str:
    return form.upper().removesuffix("/A")


def is_amendment(form: str) -> bool:
    return form.upper().endswith("/A")


def is_10k_or_10q(form: str) -> bool:
    return base_form(form) in ANNUAL_QUARTERLY_FORMS


def quarter_of(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_bounds(partition_key: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """[start, end) of a quarter partition key such as ``2024-01-01``; rejects keys outside EDGAR's range."""
    try:
        start = dt.date.fromisoformat(partition_key)
    except ValueError as exc:
        raise EdgarDataError(f"quarter {partition_key!r} is not a date like 2024-01-01") from exc
    if start.day != 1 or start.month not in (1, 4, 7, 10):
        raise EdgarDataError(f"quarter {partition_key!r} must be the first day of a quarter (01-01, 04-01, 07-01, 10-01)")
    today = today or dt.date.today()
    if start < EDGAR_FIRST_QUARTER or start > quarter_of(today):
        raise EdgarDataError(f"quarter {partition_key!r} is outside EDGAR's range ({EDGAR_FIRST_QUARTER} to {quarter_of(today)})")
    end = dt.date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
    return start, end


def quarter_label(partition_key: str) -> str:
    start = dt.date.fromisoformat(partition_key)
    return f"{start.year}Q{(start.month - 1) // 3 + 1}"


def sic_division(sic: str | int | None) -> str | None:
    """SIC division letter (A-J) of a 4-digit SIC code, as in JumpStart's industry_code."""
    if sic in (None, ""):
        return None
    code = int(sic)
    for upper, letter in ((999, "A"), (1499, "B"), (1799, "C"), (3999, "D"), (4999, "E"), (5199, "F"),
                          (5999, "G"), (6799, "H"), (8999, "I"), (9999, "J")):
        if code <= upper:
            return letter
    return None


@dataclass(frozen=True)
class FilingRef:
    accession: str
    cik: int
    form: str
    filing_date: str
    report_date: str | None
    primary_document: str | None

    @property
    def folder(self) -> str:
        return f"/Archives/edgar/data/{self.cik}/{self.accession.replace('-', '')}"

    @property
    def document_path(self) -> str:
        """Path of the primary document, or of the full submission .txt when there is none."""
        if self.primary_document:
            return f"{self.folder}/{self.primary_document}"
        return f"/Archives/edgar/data/{self.cik}/{self.accession}.txt"


def filings_from_submissions_arrays(arrays: dict, cik: int, source: str) -> list[FilingRef]:
    """Rows from the parallel arrays of ``filings.recent`` or an older page."""
    try:
        n = len(arrays["accessionNumber"])
        cols = {k: arrays[k] for k in ("accessionNumber", "filingDate", "form")}
        for k, v in cols.items():
            if len(v) != n:
                raise EdgarDataError(f"{source}: array {k!r} has {len(v)} entries, accessionNumber has {n}")
    except (KeyError, TypeError) as exc:
        raise EdgarDataError(f"{source}: not a submissions filings object ({exc!r} missing or wrong type)") from exc
    report = arrays.get("reportDate") or [None] * n
    primary = arrays.get("primaryDocument") or [None] * n
    return [
        FilingRef(arrays["accessionNumber"][i], cik, arrays["form"][i], arrays["filingDate"][i],
                  report[i] or None, primary[i] or None)
        for i in range(n)
    ]


SGML_DOC_RE = re.compile(rb"<DOCUMENT>(.*?)</DOCUMENT>", re.S | re.I)
SGML_TYPE_RE = re.compile(rb"<TYPE>\s*([^\s<]+)", re.I)
SGML_TEXT_RE = re.compile(rb"<TEXT>(.*?)(?:</TEXT>|$)", re.S | re.I)


def main_document_from_full_submission(data: bytes, form: str) -> bytes:
    """The body of the <DOCUMENT> whose <TYPE> is the filing's form (the first one otherwise)."""
    docs = SGML_DOC_RE.findall(data)
    if not docs:
        raise EdgarDataError("full submission has no <DOCUMENT> blocks")
    wanted = base_form(form).encode()
    chosen = docs[0]
    for doc in docs:
        m = SGML_TYPE_RE.search(doc)
        if m and m.group(1).upper().removesuffix(b"/A") == wanted:
            chosen = doc
            break
    text = SGML_TEXT_RE.search(chosen)
    return (text.group(1) if text else chosen).strip()


def sniff_content(data: bytes) -> str:
    """'html', 'xml', 'text', 'pdf', 'binary' or 'empty' from the first bytes."""
    head = data[:4096].lstrip().lower()
    if not head:
        return "empty"
    if head.startswith(b"%pdf"):
        return "pdf"
    if head.startswith(b"\x89png") or head.startswith(b"pk\x03\x04") or head.startswith(b"\x1f\x8b"):
        return "binary"
    if b"<html" in head or b"<!doctype html" in head or b"<body" in head:
        return "html"
    if head.startswith(b"<?xml") or b"<xbrl" in head:
        return "xml" if b"<html" not in data[:20000].lower() else "html"
    if b"\x00" in head:
        return "binary"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    if printable / len(head) < 0.85:
        return "binary"
    return "text"
