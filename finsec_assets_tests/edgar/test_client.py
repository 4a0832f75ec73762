"""The EDGAR client against a real HTTP server on 127.0.0.1 replaying the bundled sample."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from finsec_assets.edgar.client import EdgarClient, EdgarError, EdgarNotFound
from finsec_assets.edgar.parsing import EdgarDataError
from finsec_assets.edgar.ratelimit import RateLimiter
from finsec_assets.storage.object_store import ObjectStore

from .test_ratelimit import max_in_window

UA = "finsec tests tests@example.com"


def live(server, **kw):
    kw.setdefault("backoff_factor", 0.02)
    return EdgarClient(source="live", www_url=server.url, data_url=server.url, user_agent=UA, **kw)


def test_live_mode_requires_contact_user_agent(replay_server):
    with pytest.raises(ValueError, match="contact email"):
        EdgarClient(source="live", www_url=replay_server.url, data_url=replay_server.url, user_agent="anonymous")


def test_resources_through_both_hosts(replay_server):
    c = live(replay_server)
    assert c.company_tickers()["NVDA"] == 1045810
    refs = c.filings(320193)  # recent + the older page in filings.files
    assert {r.accession for r in refs} == {"0000320193-23-000077", "0000912057-00-023442", "0000320193-20-000008"}
    assert next(r for r in refs if r.form == "8-K").items == "2.02,9.01"  # 8-K items from the submissions JSON
    assert replay_server.hits("/submissions/CIK0000320193-submissions-001.json") == 1
    doc, source = c.filing_document(next(r for r in refs if r.primary_document and r.form == "10-Q"))
    assert source == "primary" and b"<html" in doc[:2000].lower()
    old, source = c.filing_document(next(r for r in refs if not r.primary_document))
    assert source == "full_submission" and b"<DOCUMENT>" not in old
    assert "us-gaap" in c.company_facts(320193)["facts"]
    assert all(agent == UA for *_, agent in replay_server.requests)


def test_older_pages_are_skipped_when_the_window_does_not_need_them(replay_server):
    import datetime as dt

    live(replay_server).filings(320193, since=dt.date(2023, 7, 1), until=dt.date(2023, 10, 1))
    assert replay_server.hits("/submissions/CIK0000320193-submissions-001.json") == 0


def test_gzip_encoded_documents_are_decoded(replay_server):
    c = live(replay_server)
    ref = next(r for r in c.filings(1045810) if r.form == "10-K")
    doc, _ = c.filing_document(ref)
    assert doc.lstrip()[:1] == b"<" and len(doc) > 1_000_000


def test_retries_429_with_retry_after_503_and_dropped_connections(replay_server):
    path = "/files/company_tickers.json"
    replay_server.inject(path, "429:1", "503", "drop", "slow:0.2")
    t0 = time.time()
    assert live(replay_server).company_tickers()["AAPL"] == 320193
    statuses = [s for _, p, s, _ in replay_server.requests if p == path]
    assert statuses == [429, 503, 0, 200]
    assert time.time() - t0 >= 1.0  # Retry-After honoured


def test_slow_response_times_out_then_retries(replay_server):
    replay_server.inject("/submissions/CIK0001318605.json", "slow:1.5")
    c = live(replay_server, timeout=(1.0, 0.5))
    assert c.submissions(1318605)["name"] == "Tesla, Inc."


def test_gives_up_with_a_clear_error(replay_server):
    path = "/submissions/CIK0001318605.json"
    replay_server.inject(path, *["503"] * 10)
    with pytest.raises(EdgarError, match=r"CIK0001318605.json.*(503|retries)"):
        live(replay_server, retries=2).submissions(1318605)


def test_not_found_truncated_and_bad_json(replay_server):
    c = live(replay_server, retries=1)
    with pytest.raises(EdgarNotFound, match="404"):
        c.get("www", "/Archives/edgar/data/1/000000000000000000/missing.htm")
    ref = next(r for r in c.filings(1045810) if r.form == "10-Q")
    replay_server.inject(ref.document_path, "truncate", "truncate")
    with pytest.raises(EdgarError, match="truncated"):
        c.filing_document(ref)
    replay_server.inject("/submissions/CIK0001045810.json", "badjson")
    with pytest.raises(EdgarDataError, match="invalid JSON"):
        c.submissions(1045810, refresh=True)


def test_cache_in_object_store_avoids_refetching(replay_server, tmp_path):
    store = ObjectStore(str(tmp_path / "objects"))
    c = live(replay_server, cache=store)
    ref = c.filings(1045810)[0]
    c.filing_document(ref)
    c2 = live(replay_server, cache=store)
    c2.filings(1045810)
    c2.filing_document(ref)
    assert replay_server.hits(ref.document_path) == 1
    assert replay_server.hits("/submissions/CIK0001045810.json") == 1
    c2.submissions(1045810, refresh=True)
    assert replay_server.hits("/submissions/CIK0001045810.json") == 2


def test_ten_per_second_ceiling_under_concurrent_use(replay_server):
    """Request times recorded at the server: never more than 10 in any one-second window."""
    c = live(replay_server, limiter=RateLimiter(10))
    paths = ["/submissions/CIK0001045810.json", "/submissions/CIK0001318605.json", "/files/company_tickers.json"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: c.get("www" if "files" in paths[i % 3] else "data", paths[i % 3]), range(36)))
    stamps = [t for t, *_ in replay_server.requests]
    assert len(stamps) == 36
    assert max_in_window(stamps) <= 10
    assert stamps[-1] - stamps[0] >= 3.0


def test_sample_mode_serves_the_same_interface():
    c = EdgarClient()
    assert c.company_tickers()["AAPL"] == 320193
    with pytest.raises(EdgarNotFound, match="not in the bundled sample"):
        c.submissions(789019)
