"""Parsers and identifiers for EDGAR data: CIKs, accessions, quarters, submissions, SGML."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

ACCESSION_RE = re.compile(r"^\d{10}-\d{2}-\d{6}$")
ANNUAL_QUARTERLY_FORMS = ("10-K", "10-Q", "10-K405", "10-KT", "10-QT", "10-KSB", "10-QSB")
# FINSEC_FORMS names form families; each family takes its variants (amendments, old small-business forms).
FORM_FAMILIES = {
    "10-K": ("10-K", "10-K405", "10-KT", "10-KSB"),
    "10-Q": ("10-Q", "10-QT", "10-QSB"),
    "8-K": ("8-K", "8-K12B", "8-K12G3", "8-K15D5"),
}
EDGAR_FIRST_QUARTER = dt.date(1993, 1, 1)
# EDGAR's nightly bulk archives: every company's submissions JSON / companyfacts JSON, one member each.
BULK_SUBMISSIONS_PATH = "/Archives/edgar/daily-index/bulkdata/submissions.zip"
BULK_COMPANYFACTS_PATH = "/Archives/edgar/daily-index/xbrl/companyfacts.zip"


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


def is_8k(form: str) -> bool:
    return base_form(form) in FORM_FAMILIES["8-K"]


def form_family(form: str) -> str | None:
    """'10-K405/A' -> '10-K', '8-K/A' -> '8-K'; None for forms outside FORM_FAMILIES."""
    base = base_form(form)
    return next((family for family, members in FORM_FAMILIES.items() if base in members), None)


def wanted_form(form: str, families: tuple[str, ...] | list[str]) -> bool:
    """Whether a filing's form belongs to one of the FINSEC_FORMS families."""
    return form_family(form) in families


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
    items: str | None = None  # 8-K: EDGAR's comma-separated item numbers, e.g. "2.02,9.01"
    acceptance_datetime: str | None = None  # ISO time EDGAR accepted the filing

    @property
    def folder(self) -> str:
        return f"/Archives/edgar/data/{self.cik}/{self.accession.replace('-', '')}"

    @property
    def full_submission_path(self) -> str:
        """The complete submission .txt (every document of the filing as SGML <DOCUMENT> blocks)."""
        return f"{self.folder}/{self.accession}.txt"

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
    report = _optional(arrays, "reportDate", n)
    primary = _optional(arrays, "primaryDocument", n)
    items = _optional(arrays, "items", n)
    accepted = _optional(arrays, "acceptanceDateTime", n)
    return [
        FilingRef(arrays["accessionNumber"][i], cik, arrays["form"][i], arrays["filingDate"][i],
                  report[i] or None, primary[i] or None, items[i] or None, accepted[i] or None)
        for i in range(n)
    ]


def _optional(arrays: dict, key: str, n: int) -> list:
    """An optional parallel array; absent or of the wrong length (malformed) reads as all-missing."""
    values = arrays.get(key)
    return list(values) if isinstance(values, list) and len(values) == n else [None] * n


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


# ---------------------------------------------------------------- 8-K: items and documents

# Items as EDGAR's submissions JSON and the form number them since August 2004, with their official titles
# (the SGML header's ITEM INFORMATION lines carry these titles, not the numbers).
EIGHT_K_ITEMS = {
    "1.01": "Entry into a Material Definitive Agreement",
    "1.02": "Termination of a Material Definitive Agreement",
    "1.03": "Bankruptcy or Receivership",
    "1.04": "Mine Safety - Reporting of Shutdowns and Patterns of Violations",
    "1.05": "Material Cybersecurity Incidents",
    "2.01": "Completion of Acquisition or Disposition of Assets",
    "2.02": "Results of Operations and Financial Condition",
    "2.03": "Creation of a Direct Financial Obligation or an Obligation under an Off-Balance Sheet Arrangement of a Registrant",
    "2.04": "Triggering Events That Accelerate or Increase a Direct Financial Obligation or an Obligation under an Off-Balance Sheet Arrangement",
    "2.05": "Costs Associated with Exit or Disposal Activities",
    "2.06": "Material Impairments",
    "3.01": "Notice of Delisting or Failure to Satisfy a Continued Listing Rule or Standard; Transfer of Listing",
    "3.02": "Unregistered Sales of Equity Securities",
    "3.03": "Material Modification to Rights of Security Holders",
    "4.01": "Changes in Registrant's Certifying Accountant",
    "4.02": "Non-Reliance on Previously Issued Financial Statements or a Related Audit Report or Completed Interim Review",
    "5.01": "Changes in Control of Registrant",
    "5.02": "Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain Officers; "
            "Compensatory Arrangements of Certain Officers",
    "5.03": "Amendments to Articles of Incorporation or Bylaws; Change in Fiscal Year",
    "5.04": "Temporary Suspension of Trading Under Registrant's Employee Benefit Plans",
    "5.05": "Amendments to the Registrant's Code of Ethics, or Waiver of a Provision of the Code of Ethics",
    "5.06": "Change in Shell Company Status",
    "5.07": "Submission of Matters to a Vote of Security Holders",
    "5.08": "Shareholder Director Nominations",
    "6.01": "ABS Informational and Computational Material",
    "6.02": "Change of Servicer or Trustee",
    "6.03": "Change in Credit Enhancement or Other External Support",
    "6.04": "Failure to Make a Required Distribution",
    "6.05": "Securities Act Updating Disclosure",
    "6.06": "Static Pool",
    "7.01": "Regulation FD Disclosure",
    "8.01": "Other Events",
    "9.01": "Financial Statements and Exhibits",
}
# Before the 2004 renumbering: Items 1-12.
LEGACY_EIGHT_K_ITEMS = {
    "1": "Changes in Control of Registrant",
    "2": "Acquisition or Disposition of Assets",
    "3": "Bankruptcy or Receivership",
    "4": "Changes in Registrant's Certifying Accountant",
    "5": "Other Events",
    "6": "Resignations of Registrant's Directors",
    "7": "Financial Statements and Exhibits",
    "8": "Change in Fiscal Year",
    "9": "Regulation FD Disclosure",
    "10": "Amendments to the Registrant's Code of Ethics",
    "11": "Temporary Suspension of Trading Under Registrant's Employee Benefit Plans",
    "12": "Results of Operations and Financial Condition",
}
EIGHT_K_RENUMBERING = "2004-08-23"


def _title_key(title: str) -> str:
    return re.sub(r"[^a-z]+", " ", title.lower()).strip()


_ITEM_BY_TITLE = {_title_key(t): k for k, t in EIGHT_K_ITEMS.items()}


def parse_items(value: str | None) -> list[str]:
    """EDGAR's items field ("2.02,9.01") as a sorted list of ids; '' or None -> []."""
    if not value:
        return []
    out = {part.strip() for part in str(value).split(",") if part.strip()}
    return sorted(out, key=lambda k: tuple(int(x) for x in k.split(".")) if re.fullmatch(r"\d+(?:\.\d+)?", k) else (99,))


def item_id_from_title(title: str) -> str | None:
    """'Results of Operations and Financial Condition' -> '2.02' (EDGAR's official titles, punctuation ignored);
    older wording of 5.02 ('... Principal Officers') is matched on its first words."""
    key = _title_key(title)
    if key in _ITEM_BY_TITLE:
        return _ITEM_BY_TITLE[key]
    for known, item in _ITEM_BY_TITLE.items():
        if len(key) >= 25 and (known.startswith(key[:25]) or key.startswith(known[:25])):
            return item
    return None


@dataclass(frozen=True)
class SubmissionHeader:
    """What the SGML header of a full submission says about the filing."""

    items: tuple[str, ...]  # ids mapped from ITEM INFORMATION titles
    item_titles: tuple[str, ...]
    acceptance_datetime: str | None  # ISO
    form: str | None


_HEADER_END_RE = re.compile(rb"</SEC-HEADER>|</IMS-HEADER>|<DOCUMENT>", re.I)
_ITEM_INFORMATION_RE = re.compile(rb"^\s*ITEM INFORMATION:\s*(.+?)\s*$", re.M)
_ACCEPTANCE_RE = re.compile(rb"<ACCEPTANCE-DATETIME>\s*(\d{14})")
_SUBMISSION_TYPE_RE = re.compile(rb"CONFORMED SUBMISSION TYPE:\s*(\S+)")


def submission_header(data: bytes) -> SubmissionHeader:
    """Items (from ITEM INFORMATION), acceptance time and form from a full submission's SGML header."""
    end = _HEADER_END_RE.search(data)
    head = data[: end.start() if end else 20000]
    titles = [m.decode("latin-1") for m in _ITEM_INFORMATION_RE.findall(head)]
    items = tuple(dict.fromkeys(i for i in (item_id_from_title(t) for t in titles) if i))
    accepted = _ACCEPTANCE_RE.search(head)
    when = None
    if accepted:
        s = accepted.group(1).decode()
        when = f"{s[:4]}-{s[4:6]}-{s[6:8]}T{s[8:10]}:{s[10:12]}:{s[12:14]}"
    form = _SUBMISSION_TYPE_RE.search(head)
    return SubmissionHeader(items, tuple(titles), when, form.group(1).decode() if form else None)


@dataclass(frozen=True)
class SgmlDocument:
    """One <DOCUMENT> of a full submission: its declared type, file name and body."""

    type: str
    sequence: int | None
    filename: str | None
    description: str | None
    body: bytes


_SGML_FIELD_RE = {k: re.compile(rb"<" + k.encode() + rb">[ \t]*([^\r\n<]*)", re.I)
                  for k in ("TYPE", "SEQUENCE", "FILENAME", "DESCRIPTION")}


def full_submission_documents(data: bytes) -> list[SgmlDocument]:
    """Every <DOCUMENT> block of a full submission .txt, in order."""
    docs = []
    for block in SGML_DOC_RE.findall(data):
        head = block[: block.upper().find(b"<TEXT>")] if b"<TEXT>" in block.upper() else block[:2000]
        fields = {k: (m.group(1).strip().decode("latin-1") if (m := r.search(head)) else None)
                  for k, r in _SGML_FIELD_RE.items()}
        text = SGML_TEXT_RE.search(block)
        body = (text.group(1) if text else block).strip()
        seq = fields["SEQUENCE"]
        docs.append(SgmlDocument((fields["TYPE"] or "").upper(), int(seq) if seq and seq.isdigit() else None,
                                 fields["FILENAME"] or None, fields["DESCRIPTION"] or None, body))
    return docs


EXHIBIT_PRESS_RELEASE_RE = re.compile(r"^EX-99(?:\.\d+)?[A-Z]?$", re.I)
_EXHIBIT_NAME_RE = re.compile(r"(?:exhibit|(?:(?<![a-z])|(?<=\dd))ex)[-_]?99(?:[-_.]?(\d{1,2}))?(?!\d)", re.I)
_UNREADABLE_EXTENSIONS = {".jpg": "image", ".jpeg": "image", ".gif": "image", ".png": "image", ".pdf": "PDF"}


def exhibit_type_from_name(name: str) -> str | None:
    """'d845033dex991.htm' -> 'EX-99.1', 'ex99-2.htm' -> 'EX-99.2', 'ex99.htm' -> 'EX-99'; None otherwise."""
    stem = name.rsplit("/", 1)[-1].lower()
    match = _EXHIBIT_NAME_RE.search(stem)
    if not match:
        return None
    return f"EX-99.{int(match.group(1))}" if match.group(1) else "EX-99"


def unreadable_kind(name: str | None, doc_type: str | None = None, body: bytes = b"") -> str | None:
    """'image' or 'PDF' for exhibits that hold no text to extract (SGML type GRAPHIC or PDF, an image or PDF
    file name, a uuencoded or PDF body); None for text and HTML."""
    kind = (doc_type or "").upper()
    if kind == "GRAPHIC":
        return "image"
    if kind == "PDF":
        return "PDF"
    if name:
        for ext, what in _UNREADABLE_EXTENSIONS.items():
            if name.lower().endswith(ext):
                return what
    head = body[:200].lstrip()
    if head[:4].upper() == b"%PDF" or head.startswith(b"<PDF>"):
        return "PDF"
    if head.startswith(b"begin 6"):  # uuencoded binary inside a full submission
        return "image"
    return None


def directory_listing(index_json: dict, source: str) -> list[dict]:
    """Items of an EDGAR filing folder's index.json ({'directory': {'item': [{'name', 'size', ...}]}})."""
    try:
        items = index_json["directory"]["item"]
        return [{"name": str(i["name"]), "size": i.get("size")} for i in items]
    except (KeyError, TypeError) as exc:
        raise EdgarDataError(f"{source}: not an EDGAR directory listing ({exc!r} missing or wrong type)") from exc


@dataclass(frozen=True, order=True)
class IndexEntry:
    """One row of an EDGAR full-index or daily-index file."""

    cik: int
    name: str
    form: str
    date_filed: str  # YYYY-MM-DD
    filename: str  # edgar/data/<cik>/<accession>.txt

    @property
    def accession(self) -> str:
        return self.filename.rsplit("/", 1)[-1].removesuffix(".txt")


_INDEX_COLUMNS = {"company": ("Company Name", "Form Type", "CIK", "Date Filed", "File Name"),
                  "form": ("Form Type", "Company Name", "CIK", "Date Filed", "File Name")}


def parse_full_index(data: bytes, kind: str = "master", source: str = "full-index") -> list[IndexEntry]:
    """Rows of a quarterly full-index (or daily-index) file: ``master`` is pipe-delimited, ``company`` and ``form``
    are fixed-width with the columns where the header puts them. Dates come back as YYYY-MM-DD."""
    if kind not in ("master", "company", "form"):
        raise ValueError(f"index kind {kind!r}: master, company or form")
    text = data.decode("latin-1")
    lines = text.splitlines()
    try:
        dashes = next(i for i, line in enumerate(lines) if line.startswith("-----"))
    except StopIteration:
        raise EdgarDataError(f"{source}: no '-----' line under the header; not an EDGAR {kind}.idx") from None
    header = " ".join(lines[max(0, dashes - 2):dashes])
    out = []
    if kind == "master":
        if "CIK|Company Name|Form Type|Date Filed|Filename" not in header:
            raise EdgarDataError(f"{source}: header 'CIK|Company Name|Form Type|Date Filed|Filename' missing")
        for n, line in enumerate(lines[dashes + 1:], dashes + 2):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) != 5 or not parts[0].strip().isdigit():
                raise EdgarDataError(f"{source} line {n}: expected CIK|Company Name|Form Type|Date Filed|Filename, got {line!r}")
            out.append(IndexEntry(int(parts[0]), parts[1].strip(), parts[2].strip(), _index_date(parts[3], source, n),
                                  parts[4].strip()))
        return out
    head_line = lines[dashes - 1]
    names = _INDEX_COLUMNS[kind]
    starts = [head_line.find(name) for name in names]
    if min(starts) < 0 or starts != sorted(starts):
        raise EdgarDataError(f"{source}: header {head_line!r} lacks the columns {', '.join(names)}")
    bounds = list(zip(starts, starts[1:] + [None]))
    for n, line in enumerate(lines[dashes + 1:], dashes + 2):
        if not line.strip():
            continue
        cells = dict(zip(names, (line[a:b].strip() for a, b in bounds)))
        if not cells["CIK"].isdigit() or not cells["File Name"]:
            raise EdgarDataError(f"{source} line {n}: not a {kind}.idx row: {line!r}")
        out.append(IndexEntry(int(cells["CIK"]), cells["Company Name"], cells["Form Type"],
                              _index_date(cells["Date Filed"], source, n), cells["File Name"]))
    return out


def _index_date(value: str, source: str, n: int) -> str:
    value = value.strip()
    if re.fullmatch(r"\d{8}", value):
        value = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise EdgarDataError(f"{source} line {n}: date {value!r} is not YYYY-MM-DD")
    return value
