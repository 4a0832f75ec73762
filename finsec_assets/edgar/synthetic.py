"""A synthetic EDGAR of any size, built on the fly from real sample documents (no dagster, no copies on disk).

``SyntheticUniverse(companies=500, quarters="2015Q1:2024Q4", seed=0)`` is N companies x Q quarters, one
10-K or 10-Q per company per quarter. Each synthetic company is modelled on one real *source* company of the
sample (its SIC, its 10-K/10-Q documents and its companyfacts) but has its own CIK, name, ticker, accession
numbers, filing and report dates. ``resolve(path)`` returns the bytes EDGAR would serve at a URL path:
company_tickers.json, submissions JSON, companyfacts JSON, filing documents, the quarterly full-index
(master/company/form.idx) and the nightly bulk archives (submissions.zip, companyfacts.zip). Everything is a
function of the seed and the source files, so two universes with the same arguments serve identical bytes.

Documents are the real source documents reused by reference: a document is generated when asked for (a small
LRU keeps the last few) by joining the source's bytes, pre-split at every sentence end, with a marker word
unique to the filing, so every sentence of every synthetic filing is distinct text and no stage (a sentence
cache, a dedup) gains from repetition. The source's CIK (dei:EntityCentralIndexKey, xbrli:identifier), name
(dei:EntityRegistrantName and its mentions) and trading symbol become the synthetic company's; the inline XBRL
stays valid. Bytes on disk do not grow with N: only the bulk archives, built when first requested, are
written (to a temporary folder the universe removes on ``close()``).

    universe = SyntheticUniverse(companies=500, quarters="2015Q1:2024Q4", seed=0)
    with ReplayServer(universe=universe) as server:
        os.environ.update(universe.env(server.url))
"""

from __future__ import annotations

import atexit
import collections
import datetime as dt
import gzip
import hashlib
import io
import json
import random
import re
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .parsing import (
    BULK_COMPANYFACTS_PATH,
    BULK_SUBMISSIONS_PATH,
    EdgarDataError,
    base_form,
    cik10,
    is_amendment,
    quarter_of,
)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "edgar"
# Synthetic CIKs are drawn from [3,000,000, 9,999,999]: above every CIK EDGAR has assigned so far (about 2.0M in
# 2025) and so above every sample CIK; normalize_cik accepts them (up to 10 digits).
SYNTHETIC_CIK_RANGE = (3_000_000, 10_000_000)
QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")
# A sentence end in a document's text: a lower-case letter, figure, ')' or '%', a period, then blank space and a
# capital (or the end of the text run); also ':', ';', '?' and '!' there. Tags, scripts, styles, the hidden ix:header and numeric facts are skipped.
_SPACE = rb"(?:\s|&#160;|&nbsp;|&#xa0;|&#xA0;|&#8203;)"
_SKIP_OR_END = re.compile(
    rb"(<((?i:script|style|ix:header|ix:nonfraction))\b.*?</\2\s*>|<ix:nonNumeric[^>]*name=\"dei:[^>]*>.*?</ix:nonNumeric>)"
    rb"|(<[^>]*>)"
    rb"|(?<=[A-Za-z0-9)%\"\]])[.:;?!](?=" + _SPACE + rb"*(?:<|$)|" + _SPACE + rb"+(?:[A-Z(\"]|&#822[01];|\xe2\x80\x9c))",
    re.S,
)
# "Item 7." / "PART II." ends a heading, not a sentence: a marker there would hide the item from section extraction.
_HEADING_END = re.compile(rb"(?i)\b(?:item|part)(?:\s|&#160;|&nbsp;|&#xa0;|<[^>]*>)*[0-9IVX]{1,4}[A-C]?$")
_REGISTRANT_RE = re.compile(rb'name="dei:EntityRegistrantName"[^>]*>([^<]+)<')
_CIK, _NAME, _TICKER = b"\x00finsec-cik\x00", b"\x00finsec-name\x00", b"\x00finsec-ticker\x00"
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
_NAME_WORDS = ["Acorn", "Alder", "Amber", "Apex", "Arbor", "Ardent", "Aspen", "Atlas", "Aurora", "Basalt", "Beacon",
               "Birch", "Bluewater", "Boreal", "Brightline", "Cascade", "Cedar", "Cinder", "Cobalt", "Copper", "Crescent",
               "Cypress", "Delta", "Driftwood", "Ember", "Evergreen", "Falcon", "Fathom", "Fjord", "Garnet", "Glacier",
               "Granite", "Harbor", "Hawthorn", "Helix", "Heron", "Horizon", "Indigo", "Ironwood", "Juniper", "Keystone",
               "Kestrel", "Lantern", "Larch", "Lumen", "Magnolia", "Maple", "Meridian", "Mesa", "Northwind", "Oakmont",
               "Obsidian", "Onyx", "Orchard", "Osprey", "Pinnacle", "Prairie", "Quarry", "Quartz", "Redwood", "Ridge",
               "Riverbend", "Saffron", "Sequoia", "Sierra", "Silverline", "Summit", "Tamarack", "Tidewater", "Timber",
               "Topaz", "Trillium", "Tundra", "Vantage", "Verdant", "Willow", "Yarrow", "Zenith"]
_NAME_KINDS = ["Industries", "Holdings", "Systems", "Technologies", "Brands", "Group", "Enterprises", "Partners",
               "Materials", "Networks", "Foods", "Energy", "Devices", "Retail", "Labs"]
_NAME_SUFFIX = ["Inc.", "Corp", "Co", "Inc.", "Corporation"]


def parse_quarter(text: str) -> tuple[int, int]:
    """'2015Q1' -> (2015, 1)."""
    m = QUARTER_RE.match(str(text).strip().upper())
    if not m:
        raise EdgarDataError(f"quarter {text!r}: expected YYYYQn such as 2015Q1")
    return int(m.group(1)), int(m.group(2))


def quarter_range(start: str, end: str | None = None, n_quarters: int | None = None) -> list[str]:
    """Quarters from ``start`` to ``end`` inclusive ('2015Q1', '2024Q4'), or ``n_quarters`` of them."""
    year, q = parse_quarter(start)
    if (end is None) == (n_quarters is None):
        raise ValueError("give either the last quarter or the number of quarters")
    if end is not None:
        last = parse_quarter(end)
        if last < (year, q):
            raise EdgarDataError(f"quarters {start}:{end}: the last comes before the first")
        n_quarters = (last[0] - year) * 4 + last[1] - q + 1
    if n_quarters < 1:
        raise ValueError(f"n_quarters={n_quarters}: at least one quarter")
    out = []
    for _ in range(n_quarters):
        out.append(f"{year}Q{q}")
        year, q = (year + 1, 1) if q == 4 else (year, q + 1)
    return out


def parse_quarters(value) -> list[str]:
    """'2015Q1:2024Q4', '2023Q3', or a list of 'YYYYQn'."""
    if isinstance(value, str):
        if ":" in value:
            first, last = value.split(":", 1)
            return quarter_range(first, last)
        value = [value]
    out = [f"{y}Q{q}" for y, q in (parse_quarter(v) for v in value)]
    if not out:
        raise ValueError("quarters: at least one")
    if len(set(out)) != len(out):
        raise ValueError(f"quarters {value!r}: repeated quarters")
    return sorted(out)


def quarter_start(quarter: str) -> dt.date:
    year, q = parse_quarter(quarter)
    return dt.date(year, 3 * q - 2, 1)


def _quarter_end(day: dt.date) -> dt.date:
    start = quarter_of(day)
    nxt = dt.date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _xml_text(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()


def _digest(*parts) -> bytes:
    return hashlib.sha256(":".join(map(str, parts)).encode()).digest()


def marker_word(*parts) -> str:
    """A pronounceable lower-case word (4 syllables) that is a function of ``parts``: 'kobazetu'."""
    d = _digest("marker", *parts)
    return "".join(_SYLLABLES[b % len(_SYLLABLES)] for b in d[:4])


# ------------------------------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class SourceDocument:
    """A real 10-K/10-Q primary document of the source tree."""

    cik: int
    accession: str
    form: str
    filing_date: str
    report_date: str | None
    primary_document: str
    path: Path  # NAME or NAME.gz under source_dir


@dataclass(frozen=True)
class SourceCompany:
    cik: int
    name: str
    sic: str | None
    sic_description: str | None
    ticker: str | None
    documents: tuple[SourceDocument, ...]
    facts_path: Path | None  # companyfacts JSON (or .gz), when the source has one


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _existing(base: Path) -> Path | None:
    for p in (base, base.with_name(base.name + ".gz")):
        if p.is_file():
            return p
    return None


def source_companies(source_dir: Path, forms: tuple[str, ...] = ("10-K", "10-Q")) -> list[SourceCompany]:
    """The companies of an EDGAR-layout tree with at least one primary 10-K/10-Q document present on disk."""
    out = []
    for sub_path in sorted((source_dir / "submissions").glob("CIK??????????.json")):
        try:
            sub = json.loads(sub_path.read_text())
            recent = sub["filings"]["recent"]
            cik = int(sub["cik"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EdgarDataError(f"{sub_path}: not a submissions JSON ({exc!r})") from exc
        docs = []
        n = len(recent["accessionNumber"])
        for i in range(n):
            form = recent["form"][i]
            primary = (recent.get("primaryDocument") or [""] * n)[i]
            if is_amendment(form) or base_form(form) not in forms or not primary or not primary.endswith((".htm", ".html")):
                continue
            acc = recent["accessionNumber"][i]
            path = _existing(source_dir / "Archives" / "edgar" / "data" / str(cik) / acc.replace("-", "") / primary)
            if path is None:
                continue
            docs.append(SourceDocument(cik, acc, base_form(form), recent["filingDate"][i],
                                       (recent.get("reportDate") or [None] * n)[i] or None, primary, path))
        if not docs:
            continue
        facts = _existing(source_dir / "api" / "xbrl" / "companyfacts" / f"CIK{cik10(cik)}.json")
        out.append(SourceCompany(cik, sub.get("name") or f"CIK {cik}", str(sub.get("sic") or "") or None,
                                 sub.get("sicDescription"), next(iter(sub.get("tickers") or []), None),
                                 tuple(sorted(docs, key=lambda d: d.accession)), facts))
    return out


# ------------------------------------------------------------------------------------------------ universe
@dataclass(frozen=True)
class SyntheticFiling:
    cik: int
    accession: str
    form: str
    filing_date: str
    report_date: str
    acceptance_datetime: str
    primary_document: str
    quarter: str
    source: SourceDocument

    @property
    def folder(self) -> str:
        return f"/Archives/edgar/data/{self.cik}/{self.accession.replace('-', '')}"

    @property
    def document_path(self) -> str:
        return f"{self.folder}/{self.primary_document}"

    @property
    def marker(self) -> str:
        return marker_word(self.cik, self.accession)


@dataclass(frozen=True)
class SyntheticCompany:
    cik: int
    name: str
    ticker: str
    sic: str | None
    sic_description: str | None
    source: SourceCompany
    filings: tuple[SyntheticFiling, ...]  # oldest first


class _LRU:
    def __init__(self, size: int):
        self.size, self._data, self._lock = size, collections.OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


class SyntheticUniverse:
    """N synthetic companies x Q quarters over the real documents of ``source_dir``; see the module docstring."""

    def __init__(self, companies: int = 100, quarters=None, seed: int = 0, source_dir: str | Path = SAMPLE_DIR,
                 forms: tuple[str, ...] = ("10-K", "10-Q"), start: str | None = None, n_quarters: int | None = None,
                 cache_size: int = 32):
        if not isinstance(companies, int) or companies < 1:
            raise ValueError(f"companies={companies!r}: a positive whole number")
        if companies > SYNTHETIC_CIK_RANGE[1] - SYNTHETIC_CIK_RANGE[0]:
            raise ValueError(f"companies={companies}: at most {SYNTHETIC_CIK_RANGE[1] - SYNTHETIC_CIK_RANGE[0]}")
        if quarters is None:
            if start is None:
                raise ValueError("give quarters ('2015Q1:2024Q4' or a list) or start and n_quarters")
            quarters = quarter_range(start, n_quarters=n_quarters or 1)
        self.quarters = parse_quarters(quarters)
        bad_forms = [f for f in forms if f not in ("10-K", "10-Q")]
        if bad_forms or not forms:
            raise ValueError(f"forms={forms!r}: a subset of 10-K, 10-Q")
        self.forms = tuple(forms)
        self.seed = seed
        self.source_dir = Path(source_dir)
        if not (self.source_dir / "submissions").is_dir():
            raise EdgarDataError(f"source_dir={self.source_dir}: no submissions/ folder (expected an EDGAR-layout tree "
                                 "such as finsec_assets/data/edgar or ../shared/edgar)")
        self.sources = source_companies(self.source_dir, self.forms)
        if not self.sources:
            raise EdgarDataError(f"source_dir={self.source_dir}: no {'/'.join(self.forms)} primary document on disk")
        self._docs = _LRU(cache_size)
        self._facts = _LRU(max(4, cache_size // 4))
        self._split = _LRU(256)  # per source document: its bytes cut at sentence ends, its names
        self._templates: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._tmp: Path | None = None
        self._bulk: dict[str, Path] = {}
        self._build(companies)
        self.by_cik = {c.cik: c for c in self.companies}
        self.by_accession = {f.accession: f for c in self.companies for f in c.filings}
        self.by_quarter: dict[str, list[SyntheticFiling]] = collections.defaultdict(list)
        for c in self.companies:
            for f in c.filings:
                self.by_quarter[quarter_of(dt.date.fromisoformat(f.filing_date)).isoformat()].append(f)

    # -- construction -----------------------------------------------------------------------
    def _build(self, n: int) -> None:
        rng = random.Random(f"finsec-synthetic:{self.seed}")
        ciks = rng.sample(range(*SYNTHETIC_CIK_RANGE), n)
        offset = rng.randrange(len(self.sources))
        names, tickers = set(), set()
        real_tickers = self._real_tickers()
        companies = []
        for i, cik in enumerate(ciks):
            src = self.sources[(i + offset) % len(self.sources)]
            crng = random.Random(_digest(self.seed, cik))
            name = f"{crng.choice(_NAME_WORDS)} {crng.choice(_NAME_KINDS)} {crng.choice(_NAME_SUFFIX)}"
            if name in names:
                name = f"{name.rsplit(' ', 1)[0]} {i} {name.rsplit(' ', 1)[1]}"
            names.add(name)
            while True:
                ticker = "".join(crng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(crng.choice((3, 4, 4, 5))))
                if ticker not in tickers and ticker not in real_tickers:
                    break
            tickers.add(ticker)
            annual_q = crng.randrange(1, 5)  # the calendar quarter in which it files its 10-K
            by_form = {f: [d for d in src.documents if d.form == f] for f in self.forms}
            filings = []
            for qi, quarter in enumerate(self.quarters):
                year, q = parse_quarter(quarter)
                form = "10-K" if q == annual_q else "10-Q"
                if form not in self.forms or not by_form.get(form):
                    form = next(f for f in self.forms if by_form.get(f)) if not by_form.get(form) else form
                    if not by_form.get(form):
                        continue
                docs = by_form[form]
                source = docs[qi % len(docs)]
                qstart = quarter_start(quarter)
                filed = qstart + dt.timedelta(days=crng.randrange(20, 85))
                report = qstart - dt.timedelta(days=1)
                accession = f"{cik10(cik)}-{year % 100:02d}-{q:01d}{crng.randrange(10000, 100000):05d}"
                accepted = f"{filed.isoformat()}T{crng.randrange(12, 21):02d}:{crng.randrange(60):02d}:{crng.randrange(60):02d}.000Z"
                primary = f"{ticker.lower()}-{report:%Y%m%d}.htm"
                filings.append(SyntheticFiling(cik, accession, form, filed.isoformat(), report.isoformat(), accepted,
                                               primary, quarter, source))
            companies.append(SyntheticCompany(cik, name, ticker, src.sic, src.sic_description, src, tuple(filings)))
        self.companies: list[SyntheticCompany] = companies

    def _real_tickers(self) -> set[str]:
        path = _existing(self.source_dir / "files" / "company_tickers.json")
        if path is None:
            return set()
        return {str(v.get("ticker", "")).upper() for v in json.loads(_read(path)).values()}

    # -- the contract ----------------------------------------------------------------------------
    @property
    def ciks(self) -> list[int]:
        return [c.cik for c in self.companies]

    @property
    def filings(self) -> int:
        return sum(len(c.filings) for c in self.companies)

    def all_filings(self) -> list[SyntheticFiling]:
        return [f for c in self.companies for f in c.filings]

    def resolve(self, path: str) -> bytes | None:
        """The bytes EDGAR would serve at ``path`` (either host), or None (404) when the universe has none."""
        path = path.split("?", 1)[0]
        if path == "/files/company_tickers.json":
            return self.company_tickers_json()
        m = re.fullmatch(r"/submissions/CIK(\d{10})\.json", path)
        if m:
            company = self.by_cik.get(int(m.group(1)))
            return json.dumps(self.submissions(company)).encode() if company else None
        m = re.fullmatch(r"/api/xbrl/companyfacts/CIK(\d{10})\.json", path)
        if m:
            company = self.by_cik.get(int(m.group(1)))
            return self.companyfacts_json(company) if company else None
        m = re.fullmatch(r"/Archives/edgar/data/(\d+)/(\d{18})/([^/]+)", path)
        if m:
            return self.document(int(m.group(1)), m.group(2), m.group(3))
        m = re.fullmatch(r"/Archives/edgar/full-index/(\d{4})/QTR([1-4])/(master|company|form)\.idx", path)
        if m:
            return self.full_index(int(m.group(1)), int(m.group(2)), m.group(3))
        if path in (BULK_SUBMISSIONS_PATH, BULK_COMPANYFACTS_PATH):
            return self.bulk_path(path).read_bytes()
        return None

    def owns(self, path: str) -> bool:
        """Whether ``path`` is one the universe answers (so a 404 from it is final, not a fall-through to files)."""
        path = path.split("?", 1)[0]
        if path in ("/files/company_tickers.json", BULK_SUBMISSIONS_PATH, BULK_COMPANYFACTS_PATH):
            return True
        m = re.match(r"/(?:submissions/CIK|api/xbrl/companyfacts/CIK|Archives/edgar/data/)0*(\d+)", path)
        return bool(m) and int(m.group(1)) in self.by_cik or path.startswith("/Archives/edgar/full-index/")

    def write_universe_file(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"# synthetic EDGAR universe: {len(self.companies)} companies, seed {self.seed}, "
                       f"{self.quarters[0]}:{self.quarters[-1]}\n" + "\n".join(map(str, self.ciks)) + "\n")
        tmp.replace(path)
        return path

    def env(self, replay_url: str, universe_file: str | Path | None = None, max_rps: float | str | None = None) -> dict[str, str]:
        """Environment that points the project at a replay server of this universe (live mode, loopback);
        ``max_rps`` (e.g. 'unlimited') also sets FINSEC_EDGAR_MAX_RPS, which Settings allows above 10 only there."""
        universe_file = Path(universe_file) if universe_file else self._tmpdir() / "universe.txt"
        self.write_universe_file(universe_file)
        url = replay_url.rstrip("/")
        env = {"FINSEC_EDGAR_SOURCE": "live", "FINSEC_EDGAR_WWW_URL": url, "FINSEC_EDGAR_DATA_URL": url,
               "FINSEC_EDGAR_USER_AGENT": "finsec synthetic replay synthetic@example.com",
               "FINSEC_UNIVERSE": str(universe_file),
               "FINSEC_BACKFILL_START": quarter_start(self.quarters[0]).isoformat(),
               "FINSEC_BACKFILL_END": quarter_start(self.quarters[-1]).isoformat(),
               **({"FINSEC_EDGAR_MAX_RPS": str(max_rps)} if max_rps is not None else {})}
        from ..settings import Settings  # the environment must pass the project's own validation

        Settings.from_env(env)
        return env

    def close(self) -> None:
        with self._lock:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None
                self._bulk.clear()

    def __repr__(self) -> str:
        return (f"SyntheticUniverse(companies={len(self.companies)}, quarters={self.quarters[0]}:{self.quarters[-1]}, "
                f"seed={self.seed}, filings={self.filings}, sources={len(self.sources)})")

    # -- JSON resources ---------------------------------------------------------------------------
    def company_tickers_json(self) -> bytes:
        """Synthetic companies first, then the source tree's own list (so real tickers still resolve)."""
        entries = [{"cik_str": c.cik, "ticker": c.ticker, "title": c.name} for c in self.companies]
        path = _existing(self.source_dir / "files" / "company_tickers.json")
        if path is not None:
            entries += list(json.loads(_read(path)).values())
        return json.dumps({str(i): e for i, e in enumerate(entries)}).encode()

    def submissions(self, company: SyntheticCompany) -> dict:
        """data.sec.gov/submissions/CIK##########.json: every filing in filings.recent, newest first."""
        filings = sorted(company.filings, key=lambda f: (f.filing_date, f.accession), reverse=True)
        col = lambda fn: [fn(f) for f in filings]  # noqa: E731
        recent = {
            "accessionNumber": col(lambda f: f.accession), "filingDate": col(lambda f: f.filing_date),
            "reportDate": col(lambda f: f.report_date), "acceptanceDateTime": col(lambda f: f.acceptance_datetime),
            "act": col(lambda f: "34"), "form": col(lambda f: f.form),
            "fileNumber": col(lambda f: f"001-{company.cik % 100000:05d}"),
            "filmNumber": col(lambda f: str(int.from_bytes(_digest(f.accession)[:4], "big") % 10**8)),
            "items": col(lambda f: ""), "core_type": col(lambda f: "XBRL"),
            "size": col(lambda f: f.source.path.stat().st_size),
            "isXBRL": col(lambda f: 1), "isInlineXBRL": col(lambda f: 1),
            "primaryDocument": col(lambda f: f.primary_document), "primaryDocDescription": col(lambda f: f.form),
        }
        return {"cik": cik10(company.cik), "entityType": "operating", "sic": company.sic or "",
                "sicDescription": company.sic_description or "", "name": company.name, "tickers": [company.ticker],
                "exchanges": ["Nasdaq"], "fiscalYearEnd": "1231", "category": "Large accelerated filer",
                "_finsec_note": f"synthetic company modelled on CIK {company.source.cik} (seed {self.seed})",
                "filings": {"recent": recent, "files": []}}

    def _facts_template(self, source: SourceCompany) -> dict:
        """The source's facts reported by the documents the universe reuses, keyed by the source accession."""
        with self._lock:
            if source.cik in self._templates:
                return self._templates[source.cik]
        raw = json.loads(_read(source.facts_path))
        used = {d.accession for d in source.documents}
        by_accession: dict[str, list] = collections.defaultdict(list)  # accn -> [(taxonomy, concept, unit, fact)]
        meta: dict[tuple[str, str], dict] = {}
        for taxonomy, concepts in (raw.get("facts") or {}).items():
            for concept, body in concepts.items():
                for unit, facts in (body.get("units") or {}).items():
                    for fact in facts:
                        if fact.get("accn") in used:
                            by_accession[fact["accn"]].append((taxonomy, concept, unit, fact))
                            meta[(taxonomy, concept)] = {k: v for k, v in body.items() if k != "units"}
        template = {"by_accession": dict(by_accession), "meta": meta}
        with self._lock:
            self._templates[source.cik] = template
        return template

    def companyfacts(self, company: SyntheticCompany) -> dict | None:
        """api/xbrl/companyfacts: the source's facts as each synthetic filing reports them (accn, filed, form)."""
        if company.source.facts_path is None:
            return None
        template = self._facts_template(company.source)
        out: dict[str, dict] = {}
        framed: set = set()
        for filing in company.filings:
            for taxonomy, concept, unit, fact in template["by_accession"].get(filing.source.accession, []):
                body = out.setdefault(taxonomy, {}).setdefault(concept, {**template["meta"][(taxonomy, concept)], "units": {}})
                copy = {**fact, "accn": filing.accession, "filed": filing.filing_date, "form": filing.form}
                key = (taxonomy, concept, unit, fact.get("frame"))
                if "frame" in copy and key in framed:  # EDGAR frames one fact per period
                    del copy["frame"]
                framed.add(key)
                body["units"].setdefault(unit, []).append(copy)
        return {"cik": company.cik, "entityName": company.name, "facts": out}

    def companyfacts_json(self, company: SyntheticCompany) -> bytes | None:
        def make():
            facts = self.companyfacts(company)
            return None if facts is None else json.dumps(facts, separators=(",", ":")).encode()

        return self._facts.get(company.cik, make)

    # -- documents ---------------------------------------------------------------------------------
    def _pieces(self, source: SourceDocument) -> tuple[bytes, ...]:
        """The source document with its CIK, names and trading symbol as placeholders, cut just before each
        sentence end of its visible text (where a filing's marker goes)."""

        def make():
            data = _read(source.path)
            src = next(s for s in self.sources if s.cik == source.cik)
            names = set(_REGISTRANT_RE.findall(data))
            if src.name:
                names |= {v.encode() for v in (src.name, src.name.upper(), src.name.title())}
            data = data.replace(cik10(source.cik).encode(), _CIK)
            for name in sorted((n.strip() for n in names if len(n.strip()) > 3), key=len, reverse=True):
                data = data.replace(name, _NAME)
            if src.ticker:
                data = data.replace(f">{src.ticker}<".encode(), b">" + _TICKER + b"<")
            cuts = [m.start() for m in _SKIP_OR_END.finditer(data) if m.group(1) is None and m.group(3) is None
                    and not _HEADING_END.search(data, max(0, m.start() - 40), m.start())]
            bounds = [0, *cuts, len(data)]
            return tuple(data[a:b] for a, b in zip(bounds, bounds[1:]))

        return self._split.get(source.path, make)

    def document_bytes(self, filing: SyntheticFiling) -> bytes:
        """The filing's primary document: the source's bytes with the filing's marker at every sentence end and the
        synthetic company's CIK, name and trading symbol in place of the source's."""

        def make():
            company = self.by_cik[filing.cik]
            data = (b" " + filing.marker.encode()).join(self._pieces(filing.source))
            return (data.replace(_CIK, cik10(company.cik).encode()).replace(_NAME, _xml_text(company.name))
                    .replace(_TICKER, company.ticker.encode()))

        return self._docs.get(filing.accession, make)

    def document(self, cik: int, folder: str, name: str) -> bytes | None:
        accession = f"{folder[:10]}-{folder[10:12]}-{folder[12:]}"
        filing = self.by_accession.get(accession)
        if filing is None or filing.cik != cik or name != filing.primary_document:
            return None
        return self.document_bytes(filing)

    # -- full-index ------------------------------------------------------------------------------
    def index_entries(self, year: int, quarter: int) -> list[dict]:
        key = dt.date(year, 3 * quarter - 2, 1).isoformat()
        return [{"cik": f.cik, "name": self.by_cik[f.cik].name, "form": f.form, "date": f.filing_date,
                 "filename": f"edgar/data/{f.cik}/{f.accession}.txt"} for f in self.by_quarter.get(key, [])]

    def full_index(self, year: int, quarter: int, kind: str) -> bytes:
        return render_full_index(kind, year, quarter, self.index_entries(year, quarter))

    # -- bulk archives ---------------------------------------------------------------------------
    def _tmpdir(self) -> Path:
        with self._lock:
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix="finsec-synthetic-"))
                atexit.register(shutil.rmtree, self._tmp, True)
            return self._tmp

    def bulk_path(self, path: str) -> Path:
        """submissions.zip / companyfacts.zip of the whole universe, written once (members one at a time)."""
        with self._lock:
            if path in self._bulk:
                return self._bulk[path]
        target = self._tmpdir() / Path(path).name
        tmp = target.with_name(target.name + ".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for company in self.companies:
                if path == BULK_SUBMISSIONS_PATH:
                    body = json.dumps(self.submissions(company)).encode()
                else:
                    facts = self.companyfacts(company)  # not through the LRU: each is read once here
                    if facts is None:
                        continue
                    body = json.dumps(facts, separators=(",", ":")).encode()
                zf.writestr(f"CIK{cik10(company.cik)}.json", body)
        tmp.replace(target)
        with self._lock:
            self._bulk[path] = target
        return target


# ------------------------------------------------------------------------------------------------ index files
_INDEX_HEAD = {
    "master": ("Master Index of EDGAR Dissemination Feed", "CIK|Company Name|Form Type|Date Filed|Filename", 80),
    "company": ("Master Index of EDGAR Dissemination Feed by Company Name",
                f"{'Company Name':<62}{'Form Type':<12}{'CIK':<12}{'Date Filed':<12}File Name", 141),
    "form": ("Master Index of EDGAR Dissemination Feed by Form Type",
             f"{'Form Type':<12}{'Company Name':<62}{'CIK':<12}{'Date Filed':<12}File Name", 141),
}


def render_full_index(kind: str, year: int, quarter: int, entries: list[dict]) -> bytes:
    """A quarterly full-index file in EDGAR's layout: master (pipe-delimited, by CIK), company or form (fixed width).

    ``entries``: dicts with cik, name, form, date (YYYY-MM-DD) and filename (edgar/data/<cik>/<accession>.txt)."""
    if kind not in _INDEX_HEAD:
        raise ValueError(f"full-index kind {kind!r}: master, company or form")
    title, columns, dashes = _INDEX_HEAD[kind]
    last = max((e["date"] for e in entries), default=dt.date(year, 3 * quarter - 2, 1).isoformat())
    received = dt.date.fromisoformat(last).strftime("%B %d, %Y")
    head = (f"Description:           {title}\nLast Data Received:    {received}\nComments:              webmaster@sec.gov\n"
            f"Anonymous FTP:         ftp://ftp.sec.gov/edgar/\nCloud HTTP:            https://www.sec.gov/Archives/\n\n\n\n\n"
            f"{columns}\n{'-' * dashes}\n")
    if kind == "master":
        rows = sorted(entries, key=lambda e: (str(e["cik"]), e["form"], e["date"], e["filename"]))
        lines = [f"{e['cik']}|{e['name']}|{e['form']}|{e['date']}|{e['filename']}" for e in rows]
    elif kind == "company":
        rows = sorted(entries, key=lambda e: (e["name"].upper(), e["form"], e["date"], e["filename"]))
        lines = [f"{e['name']:<62}{e['form']:<12}{e['cik']!s:<12}{e['date']:<12}{e['filename']}" for e in rows]
    else:
        rows = sorted(entries, key=lambda e: (e["form"], e["name"].upper(), e["date"], e["filename"]))
        lines = [f"{e['form']:<12}{e['name']:<62}{e['cik']!s:<12}{e['date']:<12}{e['filename']}" for e in rows]
    return (head + "".join(line + "\n" for line in lines)).encode("latin-1", "replace")


class TreeIndex:
    """Full-index files and bulk archives synthesized from a plain EDGAR-layout tree (the bundled sample,
    ../shared/edgar), so a replay of real files answers the scaled-up requests too."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple, bytes]] = {}

    def _submissions(self) -> list[tuple[Path, dict]]:
        out = []
        for path in sorted((self.root / "submissions").glob("CIK*.json")):
            try:
                out.append((path, json.loads(path.read_text())))
            except ValueError:
                continue  # a malformed file is served as is under its own path; it has no index rows
        return out

    def resolve(self, path: str) -> bytes | None:
        path = path.split("?", 1)[0]
        m = re.fullmatch(r"/Archives/edgar/full-index/(\d{4})/QTR([1-4])/(master|company|form)\.idx", path)
        if not m and path not in (BULK_SUBMISSIONS_PATH, BULK_COMPANYFACTS_PATH):
            return None
        folder = self.root / ("api/xbrl/companyfacts" if path == BULK_COMPANYFACTS_PATH else "submissions")
        signature = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("CIK*")))
        with self._lock:  # rebuilt when a file under root changes (tests add filings to a copied tree)
            if self._cache.get(path, (None,))[0] != signature:
                self._cache[path] = (signature, self._make(path, m))
            return self._cache[path][1]

    def _make(self, path: str, m) -> bytes:
        if m:
            year, quarter, kind = int(m.group(1)), int(m.group(2)), m.group(3)
            lo = dt.date(year, 3 * quarter - 2, 1).isoformat()
            hi = _quarter_end(dt.date(year, 3 * quarter - 2, 1)).isoformat()
            entries = []
            for _, sub in self._submissions():
                if "cik" not in sub:
                    continue
                recent = (sub.get("filings") or {}).get("recent") or {}
                pages = [recent] + [self._page(p.get("name")) for p in (sub.get("filings") or {}).get("files", [])]
                for arrays in pages:
                    for acc, form, day in zip(arrays.get("accessionNumber", []), arrays.get("form", []),
                                              arrays.get("filingDate", [])):
                        if lo <= day <= hi:
                            entries.append({"cik": int(sub["cik"]), "name": sub.get("name") or "", "form": form,
                                            "date": day, "filename": f"edgar/data/{int(sub['cik'])}/{acc}.txt"})
            unique = {e["filename"]: e for e in entries}
            return render_full_index(kind, year, quarter, list(unique.values()))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            if path == BULK_SUBMISSIONS_PATH:
                for p, _ in self._submissions():
                    zf.writestr(p.name, p.read_bytes())
            else:
                for p in sorted((self.root / "api" / "xbrl" / "companyfacts").glob("CIK*.json*")):
                    zf.writestr(p.name.removesuffix(".gz"), _read(p))
        return buf.getvalue()

    def _page(self, name: str | None) -> dict:
        path = self.root / "submissions" / (name or "")
        try:
            return json.loads(path.read_text()) if name and path.is_file() else {}
        except ValueError:
            return {}
