"""One client for both EDGAR hosts, live or from the bundled sample, with SEC fair access built in."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ..storage.object_store import ObjectStore
from .parsing import (
    BULK_COMPANYFACTS_PATH,
    BULK_SUBMISSIONS_PATH,
    EdgarDataError,
    FilingRef,
    cik10,
    filings_from_submissions_arrays,
    main_document_from_full_submission,
    normalize_cik,
    quarter_of,
)
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "edgar"
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class EdgarError(RuntimeError):
    """A request to EDGAR failed; the message names the URL."""


class EdgarNotFound(EdgarError):
    pass


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def is_loopback_url(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in LOOPBACK or host.startswith("127.")


class UnlimitedRateLimiter:
    """No limit at all: FINSEC_EDGAR_MAX_RPS=0 or 'unlimited', for a replay server on this machine only."""

    def acquire(self) -> None:
        return None


class LoopbackRateLimiter(RateLimiter):
    """More than SEC's 10 requests per second (same sliding window), for a replay server on this machine only."""

    def __init__(self, max_per_second: float, shared_path: str | Path | None = None):
        super().__init__(10, shared_path=shared_path)
        if not max_per_second > 10:
            raise ValueError(f"max_per_second={max_per_second}: use RateLimiter up to 10")
        self.max_per_window = int(max_per_second)
        self.window_s = self.max_per_window / float(max_per_second)


def rate_limiter(max_rps: float, shared_path: str | Path | None = None, www_url: str = "", data_url: str = ""):
    """SEC's limit (0 < max_rps <= 10) shared through ``shared_path``; above 10 or 0 ('unlimited') only when both
    URLs are loopback (a replay server), else ValueError."""
    if 0 < max_rps <= 10:
        return RateLimiter(max_rps, shared_path=shared_path)
    if not (is_loopback_url(www_url) and is_loopback_url(data_url)):
        raise ValueError(f"max_rps={max_rps}: SEC fair access allows at most 10 requests per second; more (or 0 = "
                         f"unlimited) only against a replay server on 127.0.0.1/localhost, not {www_url} / {data_url}")
    return UnlimitedRateLimiter() if max_rps == 0 else LoopbackRateLimiter(max_rps, shared_path=shared_path)


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
    With ``bulk`` (a large universe), submissions and company facts are members of
    EDGAR's nightly bulk archives, downloaded once a day (see ``bulk_archive``).
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
    bulk: bool = False  # read submissions/companyfacts from EDGAR's nightly bulk archives (large universes)
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
            self.limiter = self.limiter or rate_limiter(self.max_rps, www_url=self.www_url, data_url=self.data_url)
            if isinstance(self.limiter, (LoopbackRateLimiter, UnlimitedRateLimiter)) and not (
                    is_loopback_url(self.www_url) and is_loopback_url(self.data_url)):
                raise ValueError(f"a limiter above SEC's 10 requests per second is only for a replay server on "
                                 f"127.0.0.1/localhost, not {self.www_url} / {self.data_url}")
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
        self._bulk_lock = threading.Lock()
        self._bulk_zips: dict[str, tuple[str, zipfile.ZipFile, object]] = {}

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

        def attempt():
            resp = self.session.get(url, timeout=self.timeout)
            self.requests_made += 1
            return resp, resp.content

        return self._retry_body(url, attempt)

    def _retry_body(self, url: str, attempt, also_retry: tuple = ()):
        """Run ``attempt()`` until a body arrives whole: a cut-off or corrupt body (and ``also_retry``) is retried
        with backoff and jitter; urllib3 already retried statuses and connects, so anything else is final."""
        retryable = (requests.exceptions.ContentDecodingError, requests.exceptions.ChunkedEncodingError, zlib.error,
                     *also_retry)
        for n in range(self.retries + 1):
            try:
                return attempt()
            except requests.exceptions.RetryError as exc:
                raise EdgarError(f"GET {url}: gave up after {self.retries} retries ({exc})") from exc
            except retryable as exc:
                if n == self.retries:
                    raise EdgarError(f"GET {url}: truncated or corrupt response body ({exc})") from exc
                time.sleep(min(60.0, self.backoff_factor * 2**n) * (1 + random.random()))
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
        """The company's submissions JSON: from today's bulk submissions.zip when ``bulk`` (unless ``refresh``, or
        the company is not in it), else one request."""
        name = f"CIK{cik10(normalize_cik(cik))}.json"
        return self._bulk_or_get(BULK_SUBMISSIONS_PATH, name, f"/submissions/{name}", refresh)

    def _bulk_or_get(self, archive: str, member: str, path: str, refresh: bool) -> dict:
        if self.bulk and not refresh:
            data = self.bulk_member(archive, member)
            if data is not None:
                try:
                    return json.loads(data)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise EdgarDataError(f"{archive} member {member}: invalid JSON ({exc})") from exc
        return self.get_json("data", path, refresh=refresh)

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
            arrays = self._bulk_or_get(BULK_SUBMISSIONS_PATH, page["name"], f"/submissions/{page['name']}", refresh)
            refs += filings_from_submissions_arrays(arrays, cik, f"submissions/{page['name']}")
        return refs

    def filing_document(self, ref: FilingRef) -> tuple[bytes, str]:
        """The primary document's bytes and where they came from ('primary' or 'full_submission')."""
        data = self.get("www", ref.document_path, immutable=True)
        if ref.primary_document:
            return data, "primary"
        return main_document_from_full_submission(data, ref.form), "full_submission"

    def company_facts(self, cik: int | str, refresh: bool = False) -> dict:
        """XBRL company facts: from today's bulk companyfacts.zip when ``bulk``, else one request."""
        name = f"CIK{cik10(normalize_cik(cik))}.json"
        return self._bulk_or_get(BULK_COMPANYFACTS_PATH, name, f"/api/xbrl/companyfacts/{name}", refresh)

    def full_index(self, year: int, quarter: int, kind: str = "master", refresh: bool = False) -> bytes:
        """A quarter's full-index file (every company's filings of the quarter, one request). A closed quarter's is
        final and cached for good; the current quarter's grows every night and is cached per day."""
        if kind not in ("master", "company", "form"):
            raise ValueError(f"full-index kind {kind!r}: master, company or form")
        if not (1 <= quarter <= 4):
            raise ValueError(f"quarter {quarter}: 1 to 4")
        path = f"/Archives/edgar/full-index/{year}/QTR{quarter}/{kind}.idx"
        if self.source == "sample":
            from .synthetic import TreeIndex

            data = TreeIndex(self.sample_dir).resolve(path)
            if data is None:  # pragma: no cover - TreeIndex answers every full-index path
                raise EdgarNotFound(f"sample: {path}")
            return data
        closed = dt.date(year, 3 * quarter - 2, 1) < quarter_of(dt.date.today())
        return self.get("www", path, immutable=closed and not refresh, refresh=refresh)

    # -- bulk archives ---------------------------------------------------------------------------
    def bulk_member(self, archive: str, member: str) -> bytes | None:
        """One member of a bulk archive (None when absent), read from today's copy without loading the archive."""
        zf = self.bulk_archive(archive)
        with self._bulk_lock:  # one reader at a time on the shared file handle
            try:
                return zf.read(member)
            except KeyError:
                return None
            except (zipfile.BadZipFile, zlib.error, OSError) as exc:
                raise EdgarError(f"{archive}: member {member} is corrupt ({exc})") from exc

    def bulk_archive(self, archive: str) -> zipfile.ZipFile:
        """EDGAR's nightly ``archive`` (BULK_SUBMISSIONS_PATH or BULK_COMPANYFACTS_PATH), downloaded at most once a
        day into the object-store cache (streamed to disk, never whole in memory) and opened for member reads."""
        today = dt.date.today().isoformat()
        with self._bulk_lock:
            held = self._bulk_zips.get(archive)
            if held and held[0] == today:
                return held[1]
            if held:
                held[1].close()
            zf, handle = self._open_bulk(archive, today)
            self._bulk_zips[archive] = (today, zf, handle)
            return zf

    def _open_bulk(self, archive: str, today: str) -> tuple[zipfile.ZipFile, object]:
        if self.source == "sample":
            from .synthetic import TreeIndex

            return zipfile.ZipFile(io.BytesIO(TreeIndex(self.sample_dir).resolve(archive))), None
        name = archive.rsplit("/", 1)[-1]
        if self.cache is None:
            handle = tempfile.TemporaryFile(prefix=f"finsec-{name}-")
            self.download("www", archive, handle)
            handle.seek(0)
            return self._zip(handle, archive), handle
        key, stamp = f"edgar-cache/bulk/{name}", f"edgar-cache/bulk/{name}.date"
        fresh = self.cache.exists(key) and self.cache.exists(stamp) and self.cache.get_bytes(stamp).decode() == today
        if not fresh:
            if self.cache.is_local:
                target = self.cache.local_path(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=name)
            else:
                fd, tmp = tempfile.mkstemp(prefix="finsec-bulk-", suffix=name)
            try:
                with os.fdopen(fd, "w+b") as fh:
                    self.download("www", archive, fh)
                    fh.seek(0)
                    self._zip(fh, archive).close()  # a readable central directory before it replaces anything
                    fh.flush()
                    os.fsync(fh.fileno())
                if self.cache.is_local:
                    os.replace(tmp, target)
                else:
                    self.cache.fs.put_file(tmp, self.cache._path(key))
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self.cache.put_bytes(stamp, today.encode())
        if self.cache.is_local:
            handle = open(self.cache.local_path(key), "rb")
        else:
            handle = self.cache.fs.open(self.cache._path(key), "rb")
        return self._zip(handle, archive), handle

    @staticmethod
    def _zip(handle, archive: str) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(handle)
        except zipfile.BadZipFile as exc:
            raise EdgarError(f"{archive}: not a readable zip archive ({exc})") from exc

    def download(self, host: str, path: str, fh) -> int:
        """Stream ``path`` into the open binary file ``fh`` (1 MiB at a time); retries a body cut off mid-way.
        Returns the bytes written."""
        if self.source == "sample":
            data = self._get_sample(path)
            fh.write(data)
            return len(data)
        url = self._url(host, path)

        def attempt() -> int:
            fh.seek(0)
            fh.truncate()
            written = 0
            with self.session.get(url, timeout=self.timeout, stream=True) as resp:
                self.requests_made += 1
                if resp.status_code == 404:
                    raise EdgarNotFound(f"GET {url}: 404 not found")
                if resp.status_code >= 400:
                    raise EdgarError(f"GET {url}: HTTP {resp.status_code} after retries")
                for chunk in resp.iter_content(1 << 20):
                    fh.write(chunk)
                    written += len(chunk)
            return written

        # A connection dropped mid-stream surfaces as ConnectionError here: retried like a cut-off body.
        return self._retry_body(url, attempt, also_retry=(requests.exceptions.ConnectionError,))

    def close(self) -> None:
        """Close the bulk archives this client holds open."""
        with self._bulk_lock:
            for _, zf, handle in self._bulk_zips.values():
                zf.close()
                if handle is not None:
                    handle.close()
            self._bulk_zips.clear()


def _gunzip(data: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise EdgarError(f"{name}: truncated or corrupt gzip ({exc})") from exc
