"""One client for both EDGAR hosts, live or from the bundled sample, with SEC fair access built in."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import random
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..storage.object_store import ObjectStore
from .parsing import (
    EdgarDataError,
    FilingRef,
    cik10,
    filings_from_submissions_arrays,
    main_document_from_full_submission,
    normalize_cik,
)
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "edgar"
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class EdgarError(RuntimeError):
    """A request to EDGAR failed; the message names the URL."""


class EdgarNotFound(EdgarError):
    pass


class _RateLimitedRetry(Retry):
    """urllib3's retry policy (backoff with jitter, Retry-After) whose every retry also waits for a rate-limit slot."""

    limiter: RateLimiter | None = None

    def new(self, **kw):
        new = super().new(**kw)
        new.limiter = self.limiter
        return new

    def sleep(self, response=None):
        super().sleep(response)
        if self.limiter is not None:
            self.limiter.acquire()


class _RateLimitedAdapter(HTTPAdapter):
    def __init__(self, limiter: RateLimiter, **kw):
        self.limiter = limiter
        super().__init__(**kw)

    def send(self, request, **kw):
        self.limiter.acquire()
        return super().send(request, **kw)


@dataclass
class EdgarClient:
    """EDGAR's two hosts behind one interface.

    ``source="sample"`` reads the bundled files (no network); ``"live"`` calls
    ``www_url``/``data_url`` with a declared User-Agent, at most ``max_rps``
    requests per second, retries with exponential backoff and jitter on 429, 5xx
    and dropped connections (honouring Retry-After), and caches responses in the
    object store: immutable documents forever, submissions and tickers per day.
    """

    source: str = "sample"
    www_url: str = "https://www.sec.gov"
    data_url: str = "https://data.sec.gov"
    user_agent: str | None = None
    cache: ObjectStore | None = None
    limiter: RateLimiter | None = None
    max_rps: float = 10
    timeout: tuple[float, float] = (10.0, 60.0)
    retries: int = 6
    backoff_factor: float = 0.5
    sample_dir: Path = SAMPLE_DIR
    requests_made: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.source not in ("sample", "live"):
            raise ValueError(f"EDGAR source {self.source!r}: use 'sample' (bundled files, offline) or 'live'")
        if self.source == "live":
            if not self.user_agent or not EMAIL_RE.search(self.user_agent):
                raise ValueError(
                    f"FINSEC_EDGAR_USER_AGENT={self.user_agent!r}: SEC requires a User-Agent naming you with a "
                    "contact email in live mode, e.g. 'Jane Analyst jane@example.com'"
                )
            self.limiter = self.limiter or RateLimiter(self.max_rps)
            retry = _RateLimitedRetry(
                total=self.retries, connect=self.retries, read=self.retries, status=self.retries,
                backoff_factor=self.backoff_factor, backoff_jitter=self.backoff_factor, backoff_max=60,
                status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",),
                respect_retry_after_header=True, raise_on_status=False,
            )
            retry.limiter = self.limiter
            self.session = requests.Session()
            self.session.headers.update({"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"})
            adapter = _RateLimitedAdapter(self.limiter, max_retries=retry, pool_maxsize=16)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)

    # -- transport --------------------------------------------------------------
    def _url(self, host: str, path: str) -> str:
        return (self.www_url if host == "www" else self.data_url).rstrip("/") + path

    def get(self, host: str, path: str, *, immutable: bool = False, refresh: bool = False) -> bytes:
        """Bytes at ``path`` on host 'www' or 'data'."""
        if self.source == "sample":
            return self._get_sample(path)
        cache_key = None
        if self.cache is not None:
            stamp = "" if immutable else dt.date.today().isoformat() + "/"
            cache_key = f"edgar-cache/{host}/{stamp}{path.lstrip('/')}"
            if not refresh and self.cache.exists(cache_key):
                return self.cache.get_bytes(cache_key)
        url = self._url(host, path)
        resp, body = self._fetch(url)
        if resp.status_code == 404:
            raise EdgarNotFound(f"GET {url}: 404 not found")
        if resp.status_code >= 400:
            raise EdgarError(f"GET {url}: HTTP {resp.status_code} after retries")
        if path.endswith(".gz") or body[:2] == b"\x1f\x8b":
            body = _gunzip(body, url)
        if cache_key:
            self.cache.put_bytes(cache_key, body)
        return body

    def _fetch(self, url: str):
        """GET with urllib3's retries for statuses and connects, plus retries of bodies cut off mid-read."""
        for attempt in range(self.retries + 1):
            try:
                resp = self.session.get(url, timeout=self.timeout)
                self.requests_made += 1
                return resp, resp.content
            except requests.exceptions.RetryError as exc:
                raise EdgarError(f"GET {url}: gave up after {self.retries} retries ({exc})") from exc
            except (requests.exceptions.ContentDecodingError, requests.exceptions.ChunkedEncodingError, zlib.error) as exc:
                if attempt == self.retries:
                    raise EdgarError(f"GET {url}: truncated or corrupt response body ({exc})") from exc
                time.sleep(min(60.0, self.backoff_factor * 2**attempt) * (1 + random.random()))
            except requests.exceptions.RequestException as exc:
                raise EdgarError(f"GET {url}: {exc}") from exc
        raise AssertionError("unreachable")

    def _get_sample(self, path: str) -> bytes:
        rel = path.lstrip("/")
        plain, gz = self.sample_dir / rel, self.sample_dir / (rel + ".gz")
        if ".." in Path(rel).parts:
            raise EdgarNotFound(f"sample: {path} is outside the sample")
        if plain.is_file():
            return plain.read_bytes()
        if gz.is_file():
            return _gunzip(gz.read_bytes(), str(gz))
        raise EdgarNotFound(f"sample: {path} is not in the bundled sample ({self.sample_dir}); use FINSEC_EDGAR_SOURCE=live")

    def get_json(self, host: str, path: str, **kw) -> dict:
        data = self.get(host, path, **kw)
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EdgarDataError(f"{self._url(host, path)}: invalid JSON ({exc})") from exc

    # -- EDGAR resources -----------------------------------------------------------
    def company_tickers(self, refresh: bool = False) -> dict[str, int]:
        """Ticker (upper case) -> CIK."""
        raw = self.get_json("www", "/files/company_tickers.json", refresh=refresh)
        try:
            return {str(v["ticker"]).upper(): int(v["cik_str"]) for v in raw.values()}
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EdgarDataError(f"company_tickers.json: unexpected layout ({exc!r})") from exc

    def submissions(self, cik: int | str, refresh: bool = False) -> dict:
        return self.get_json("data", f"/submissions/CIK{cik10(normalize_cik(cik))}.json", refresh=refresh)

    def filings(self, cik: int | str, since: dt.date | None = None, until: dt.date | None = None,
                refresh: bool = False) -> list[FilingRef]:
        """Every filing of a company, reading older submission pages only when the window needs them."""
        cik = normalize_cik(cik)
        sub = self.submissions(cik, refresh=refresh)
        source = f"submissions/CIK{cik10(cik)}.json"
        try:
            recent, pages = sub["filings"]["recent"], sub["filings"].get("files", [])
        except (KeyError, TypeError) as exc:
            raise EdgarDataError(f"{source}: no filings.recent ({exc!r})") from exc
        refs = filings_from_submissions_arrays(recent, cik, source)
        for page in pages:
            if since and page.get("filingTo") and page["filingTo"] < since.isoformat():
                continue
            if until and page.get("filingFrom") and page["filingFrom"] >= until.isoformat():
                continue
            arrays = self.get_json("data", f"/submissions/{page['name']}", refresh=refresh)
            refs += filings_from_submissions_arrays(arrays, cik, f"submissions/{page['name']}")
        return refs

    def filing_document(self, ref: FilingRef) -> tuple[bytes, str]:
        """The primary document's bytes and where they came from ('primary' or 'full_submission')."""
        data = self.get("www", ref.document_path, immutable=True)
        if ref.primary_document:
            return data, "primary"
        return main_document_from_full_submission(data, ref.form), "full_submission"

    def company_facts(self, cik: int | str, refresh: bool = False) -> dict:
        return self.get_json("data", f"/api/xbrl/companyfacts/CIK{cik10(normalize_cik(cik))}.json", refresh=refresh)

    def full_index(self, year: int, quarter: int, kind: str = "form") -> bytes:
        return self.get("www", f"/Archives/edgar/full-index/{year}/QTR{quarter}/{kind}.idx")


def _gunzip(data: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise EdgarError(f"{name}: truncated or corrupt gzip ({exc})") from exc
