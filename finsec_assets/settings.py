"""Project settings from the environment, validated up front with messages a user can act on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# The bundled sample's companies: tickers, plus CARBO Ceramics by CIK (it has no ticker any more).
SAMPLE_UNIVERSE = ("AAPL", "NVDA", "TSLA", "WMT", "MCD", "JNJ", "KHC", "HD", "TXN", "DIS", "GE", "PEP", "1009672", "MMM")
TICKER_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
# Form families filing_index can take (FINSEC_FORMS); each takes its variants and amendments.
KNOWN_FORMS = ("10-K", "10-Q", "8-K")
# 8-K items that make material_event_sensor refresh a quarter and its company's ratings (FINSEC_MATERIAL_EVENT_ITEMS):
# results (2.02), material agreements (1.01), bankruptcy (1.03), impairments (2.06), non-reliance (4.02), officers (5.02).
DEFAULT_MATERIAL_EVENT_ITEMS = ("2.02", "1.01", "1.03", "2.06", "4.02", "5.02")
# From this many universe companies on, EDGAR is read through the quarterly full-index and the nightly bulk archives
# (submissions.zip, companyfacts.zip) instead of one submissions/companyfacts request per company
# (FINSEC_EDGAR_BULK_MIN_COMPANIES; 0 = never). 500 requests take 50 s at 10/s, about what the ~1.5 GB
# submissions.zip takes to download once a day.
DEFAULT_BULK_MIN_COMPANIES = 500


class SettingsError(ValueError):
    """A setting is invalid; the message names the variable and how to fix it."""


@dataclass(frozen=True)
class Settings:
    home: Path
    object_store_url: str
    edgar_source: str
    edgar_user_agent: str | None
    edgar_www_url: str
    edgar_data_url: str
    universe: tuple[str, ...]
    edgar_max_rps: float
    backfill_start: str = "2023-07-01"
    backfill_end: str | None = None
    catalog_url: str = ""  # the lake's catalog: sqlite:///<FINSEC_HOME>/lake.sqlite unless FINSEC_CATALOG_URL says otherwise
    edgar_rate_limit_url: str | None = None  # redis://... shares one EDGAR limit between hosts; None: this host's file lock
    forms: tuple[str, ...] = KNOWN_FORMS
    material_event_items: tuple[str, ...] = DEFAULT_MATERIAL_EVENT_ITEMS
    edgar_bulk_min_companies: int = DEFAULT_BULK_MIN_COMPANIES  # 0: never use the bulk archives

    def edgar_bulk(self, companies: int) -> bool:
        """Whether a universe of ``companies`` reads EDGAR through the full-index and the bulk archives."""
        return self.edgar_bulk_min_companies > 0 and companies >= self.edgar_bulk_min_companies

    @property
    def lake_data_path(self) -> str:
        """Where the lake's Parquet files go: ``lake/`` inside the object store (a folder or s3://...)."""
        return self.object_store_url.rstrip("/") + "/lake/"

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> Settings:
        env = dict(os.environ if env is None else env)
        get = lambda name, default=None: overrides.get(name) if overrides.get(name) is not None else (env.get(name) or default)  # noqa: E731
        home = Path(get("FINSEC_HOME", "./.finsec")).expanduser().resolve()
        store = get("FINSEC_OBJECT_STORE_URL") or str(home / "objects")
        scheme = urlparse(store).scheme
        if scheme not in ("", "file", "s3"):
            raise SettingsError(f"FINSEC_OBJECT_STORE_URL={store!r}: use a local path or s3://bucket/prefix")
        if scheme == "s3" and not urlparse(store).netloc:
            raise SettingsError(f"FINSEC_OBJECT_STORE_URL={store!r}: missing bucket (s3://bucket/prefix)")
        source = get("FINSEC_EDGAR_SOURCE", "sample").lower()
        if source not in ("sample", "live"):
            raise SettingsError(f"FINSEC_EDGAR_SOURCE={source!r}: use 'sample' (bundled, offline) or 'live'")
        agent = get("FINSEC_EDGAR_USER_AGENT")
        if source == "live" and (not agent or "@" not in agent):
            raise SettingsError(
                "FINSEC_EDGAR_USER_AGENT must name you with a contact email in live mode "
                "(SEC fair access), e.g. FINSEC_EDGAR_USER_AGENT='Jane Analyst jane@example.com'"
            )
        urls = {}
        for name, default in (("FINSEC_EDGAR_WWW_URL", "https://www.sec.gov"), ("FINSEC_EDGAR_DATA_URL", "https://data.sec.gov")):
            url = get(name, default).rstrip("/")
            if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
                raise SettingsError(f"{name}={url!r}: expected an http(s) base URL such as {default}")
            urls[name] = url
        rps = parse_max_rps(get("FINSEC_EDGAR_MAX_RPS"), urls)
        rate_limit_url = _rate_limit_url(get)
        start = get("FINSEC_BACKFILL_START", "2023-07-01" if source == "sample" else "2019-01-01")
        end = get("FINSEC_BACKFILL_END")
        for name, value in (("FINSEC_BACKFILL_START", start), ("FINSEC_BACKFILL_END", end)):
            if value is not None and not re.match(r"^\d{4}-(01|04|07|10)-01$", value):
                raise SettingsError(f"{name}={value!r}: expected a quarter's first day such as 2019-01-01")
        catalog = parse_catalog_url(get("FINSEC_CATALOG_URL"), home)
        return cls(home, store, source, agent, urls["FINSEC_EDGAR_WWW_URL"], urls["FINSEC_EDGAR_DATA_URL"],
                   parse_universe(get("FINSEC_UNIVERSE")), rps, start, end, catalog,
                   edgar_rate_limit_url=rate_limit_url, forms=parse_forms(get("FINSEC_FORMS")),
                   material_event_items=parse_material_event_items(get("FINSEC_MATERIAL_EVENT_ITEMS")),
                   edgar_bulk_min_companies=parse_bulk_min_companies(get("FINSEC_EDGAR_BULK_MIN_COMPANIES")))


def parse_max_rps(value: str | None, urls: dict[str, str]) -> float:
    """FINSEC_EDGAR_MAX_RPS: at most 10 (SEC fair access). Above 10, or 0/'unlimited' (no limit, returned as 0.0),
    only when both EDGAR URLs point at this machine: a replay server, never SEC."""
    raw = "10" if value is None or not str(value).strip() else str(value).strip()
    if raw.lower() == "unlimited":
        rps = 0.0
    else:
        try:
            rps = float(raw)
        except ValueError as exc:
            raise SettingsError(f"FINSEC_EDGAR_MAX_RPS={raw!r}: expected a number of requests per second (at most 10)") from exc
        if rps != rps or rps < 0:
            raise SettingsError(f"FINSEC_EDGAR_MAX_RPS={raw!r}: expected a positive number of requests per second")
    if 0 < rps <= 10:
        return rps
    remote = {name: url for name, url in urls.items() if not is_loopback(urlparse(url).hostname or "")}
    if remote:
        raise SettingsError(
            f"FINSEC_EDGAR_MAX_RPS={raw}: SEC fair access allows at most 10 requests per second; a higher rate "
            f"(or 0/'unlimited') is only for a replay server on this machine, but "
            + ", ".join(f"{name}={url}" for name, url in remote.items())
            + " is not loopback (use http://127.0.0.1:PORT or http://localhost:PORT, or a rate of 10 or less)")
    return rps


def parse_bulk_min_companies(value: str | None) -> int:
    """FINSEC_EDGAR_BULK_MIN_COMPANIES: a whole number >= 0 (0 = never read the bulk archives)."""
    if value is None or not str(value).strip():
        return DEFAULT_BULK_MIN_COMPANIES
    text = str(value).strip()
    if not text.isdigit():
        raise SettingsError(f"FINSEC_EDGAR_BULK_MIN_COMPANIES={value!r}: expected a whole number of companies "
                            f"(default {DEFAULT_BULK_MIN_COMPANIES}; 0 = never use the full-index and bulk archives)")
    return int(text)


def parse_catalog_url(value: str | None, home: Path) -> str:
    """The lake's catalog: ``sqlite:///path`` (one host, several processes) or ``postgres://...`` (several hosts).

    Returned normalised: ``sqlite:///<absolute path>`` or the postgres URL as given."""
    if not value:
        return f"sqlite:///{home / 'lake.sqlite'}"
    parsed = urlparse(value)
    if parsed.scheme == "sqlite":
        path = value[len("sqlite:"):]
        path = path[2:] if path.startswith("//") else path  # sqlite:///abs/path or sqlite:relative/path
        if not path or path.endswith("/"):
            raise SettingsError(f"FINSEC_CATALOG_URL={value!r}: name the SQLite file, e.g. sqlite:///srv/finsec/lake.sqlite")
        return f"sqlite:///{Path(path).expanduser().resolve()}"
    if parsed.scheme in ("postgres", "postgresql"):
        if not parsed.hostname or not parsed.path.strip("/"):
            raise SettingsError(f"FINSEC_CATALOG_URL={value!r}: name the host and database, "
                                "e.g. postgres://finsec:secret@db:5432/finsec_lake")
        return value
    raise SettingsError(f"FINSEC_CATALOG_URL={value!r}: use sqlite:///path/lake.sqlite (one host) or "
                        "postgres://user:password@host:5432/database (several hosts)")


def _rate_limit_url(get) -> str | None:
    """FINSEC_EDGAR_RATE_LIMIT_URL, else the Celery broker's Redis under FINSEC_EXECUTOR=celery or k8s.

    Pods and Celery hosts each have their own FINSEC_HOME, so a file lock there would let N hosts make 10N
    requests a second; one Redis key holds them all to FINSEC_EDGAR_MAX_RPS. 'local' keeps the file lock.
    """
    url = get("FINSEC_EDGAR_RATE_LIMIT_URL")
    if url is None and (get("FINSEC_EXECUTOR") or "").strip().lower() in ("celery", "k8s"):
        url = get("FINSEC_CELERY_BROKER") or "redis://127.0.0.1:6379/0"
        if urlparse(url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError(f"FINSEC_EXECUTOR={get('FINSEC_EXECUTOR')} shares the EDGAR rate limit through Redis, "
                                f"but FINSEC_CELERY_BROKER={url!r} is not one: set FINSEC_EDGAR_RATE_LIMIT_URL=redis://host:6379/0")
    if url is None or url.strip().lower() == "local":
        return None
    if urlparse(url).scheme not in ("redis", "rediss", "unix") or (urlparse(url).scheme != "unix" and not urlparse(url).hostname):
        raise SettingsError(f"FINSEC_EDGAR_RATE_LIMIT_URL={url!r}: expected redis://host:6379/0 (or 'local' for one host)")
    return url


def parse_universe(value: str | None) -> tuple[str, ...]:
    """Tickers or CIKs, comma-separated, or a file of them (one per line, # comments)."""
    if not value:
        return SAMPLE_UNIVERSE
    text = value
    if "," not in value and (os.sep in value or value.endswith((".txt", ".csv"))):
        path = Path(value).expanduser()
        if not path.is_file():
            raise SettingsError(f"FINSEC_UNIVERSE={value!r}: no such file (give tickers/CIKs comma-separated or a file path)")
        text = ",".join(line.split("#")[0] for line in path.read_text().splitlines())
    items = [t.strip().upper() for t in re.split(r"[,\s]+", text) if t.strip()]
    bad = [t for t in items if not (t.isdigit() and len(t) <= 10) and not TICKER_RE.match(t)]
    if bad:
        raise SettingsError(f"FINSEC_UNIVERSE: {bad} are neither tickers (AAPL) nor CIKs (320193)")
    if not items:
        raise SettingsError(f"FINSEC_UNIVERSE={value!r} names no company")
    return tuple(dict.fromkeys(items))


def parse_forms(value: str | None) -> tuple[str, ...]:
    """FINSEC_FORMS: comma-separated form families (default 10-K,10-Q,8-K); amendments come with their family."""
    if value is None or not value.strip():
        return KNOWN_FORMS
    forms = [f.strip().upper() for f in value.split(",") if f.strip()]
    unknown = [f for f in forms if f not in KNOWN_FORMS]
    if unknown:
        hint = " (amendments such as 10-K/A come with their family)" if any(f.endswith("/A") for f in unknown) else ""
        raise SettingsError(f"FINSEC_FORMS={value!r}: {unknown} unknown; use a comma-separated subset of "
                            f"{','.join(KNOWN_FORMS)}{hint}")
    return tuple(dict.fromkeys(forms))


def parse_material_event_items(value: str | None) -> tuple[str, ...]:
    """FINSEC_MATERIAL_EVENT_ITEMS: comma-separated 8-K item numbers such as 2.02,5.02 (default: see above)."""
    from .edgar.parsing import EIGHT_K_ITEMS

    if value is None or not value.strip():
        return DEFAULT_MATERIAL_EVENT_ITEMS
    items = [i.strip() for i in value.split(",") if i.strip()]
    unknown = [i for i in items if i not in EIGHT_K_ITEMS]
    if unknown:
        raise SettingsError(f"FINSEC_MATERIAL_EVENT_ITEMS={value!r}: {unknown} are not 8-K items; use numbers as the form "
                            f"prints them, e.g. 2.02,1.01,5.02 (known: {', '.join(EIGHT_K_ITEMS)})")
    return tuple(dict.fromkeys(items))


# ------------------------------------------------------------------------------------------------ serving

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServeSettings:
    """``python -m finsec_assets.serve``: limits, batching, reload and auth (FINSEC_SERVE_*)."""

    token: str | None = None
    max_texts: int = 64
    max_chars: int = 1_000_000
    max_document_bytes: int = 50_000_000
    timeout_seconds: float = 120.0
    poll_seconds: float = 10.0
    batch_max_texts: int = 64
    batch_wait_ms: float = 5.0
    max_new_tokens: int = 512
    embedding_model: str | None = None
    device: str | None = None

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: a filing document (base64 is 4/3 of it) or max_texts texts of max_chars (UTF-8)."""
        return max(self.max_document_bytes * 4 // 3, self.max_texts * self.max_chars * 4) + 64_000

    @classmethod
    def from_env(cls, env: dict | None = None) -> ServeSettings:
        env = dict(os.environ if env is None else env)

        def number(name: str, default, kind=int, low=None, high=None):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                value = kind(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r}: expected {'a whole' if kind is int else 'a'} number") from exc
            if (low is not None and value < low) or (high is not None and value > high):
                raise SettingsError(f"{name}={raw!r}: expected a value between {low} and {high}")
            return value

        token = env.get("FINSEC_SERVE_TOKEN") or None
        if token is not None and (len(token) < 16 or any(c.isspace() for c in token)):
            raise SettingsError("FINSEC_SERVE_TOKEN must be at least 16 characters without spaces "
                                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        device = env.get("FINSEC_SERVE_DEVICE") or None
        if device is not None and not re.match(r"^(cpu|cuda(:\d+)?)$", device):
            raise SettingsError(f"FINSEC_SERVE_DEVICE={device!r}: use cpu, cuda or cuda:N")
        return cls(
            token=token,
            max_texts=number("FINSEC_SERVE_MAX_TEXTS", cls.max_texts, low=1, high=100_000),
            max_chars=number("FINSEC_SERVE_MAX_CHARS", cls.max_chars, low=1, high=100_000_000),
            max_document_bytes=number("FINSEC_SERVE_MAX_DOCUMENT_BYTES", cls.max_document_bytes, low=1, high=1_000_000_000),
            timeout_seconds=number("FINSEC_SERVE_TIMEOUT_SECONDS", cls.timeout_seconds, float, 0.001, 86_400),
            poll_seconds=number("FINSEC_SERVE_POLL_SECONDS", cls.poll_seconds, float, 0.1, 86_400),
            batch_max_texts=number("FINSEC_SERVE_BATCH_MAX_TEXTS", cls.batch_max_texts, low=1, high=100_000),
            batch_wait_ms=number("FINSEC_SERVE_BATCH_WAIT_MS", cls.batch_wait_ms, float, 0, 10_000),
            max_new_tokens=number("FINSEC_SERVE_MAX_NEW_TOKENS", cls.max_new_tokens, low=1, high=100_000),
            embedding_model=env.get("FINSEC_SERVE_EMBEDDING_MODEL") or None,
            device=device,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name uvicorn would bind) only accepts connections from this machine."""
    import ipaddress

    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
