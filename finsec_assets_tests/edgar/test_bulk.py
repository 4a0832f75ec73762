"""EDGAR requests that scale: the quarterly full-index and the nightly bulk archives, against the replay server,
and the rate limit lifted for a loopback replay only."""

import datetime as dt
import json
import shutil

import pytest

from finsec_assets.edgar.client import (
    SAMPLE_DIR,
    EdgarClient,
    LoopbackRateLimiter,
    UnlimitedRateLimiter,
    rate_limiter,
)
from finsec_assets.edgar.ingest import filing_index, quarters_between, resolve_universe
from finsec_assets.edgar.parsing import BULK_COMPANYFACTS_PATH, BULK_SUBMISSIONS_PATH, EdgarDataError, parse_full_index
from finsec_assets.edgar.replay import ReplayServer
from finsec_assets.edgar.synthetic import SyntheticUniverse
from finsec_assets.settings import Settings, SettingsError
from finsec_assets.storage.object_store import ObjectStore

from .test_ratelimit import max_in_window

UA = "finsec tests tests@example.com"
SAMPLE_CIKS = sorted(int(p.name[3:13]) for p in (SAMPLE_DIR / "submissions").glob("CIK??????????.json"))


def live(server, **kw):
    kw.setdefault("backoff_factor", 0.02)
    kw.setdefault("max_rps", 0)  # unlimited: the replay is on 127.0.0.1
    return EdgarClient(source="live", www_url=server.url, data_url=server.url, user_agent=UA, **kw)


@pytest.fixture(scope="module")
def universe():
    u = SyntheticUniverse(companies=60, quarters="2022Q3:2023Q4", seed=11)
    yield u
    u.close()


def test_full_index_path_equals_the_per_company_path_on_a_synthetic_universe(universe, tmp_path):
    with ReplayServer(universe=universe) as server:
        per_company = live(server)
        bulk = live(server, bulk=True, cache=ObjectStore(str(tmp_path / "store")))
        for quarter in ("2022-07-01", "2023-01-01", "2023-10-01"):
            start = dt.date.fromisoformat(quarter)
            end = dt.date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
            a, pa = filing_index(per_company, universe.ciks, start, end)
            b, pb = filing_index(bulk, universe.ciks, start, end)
            assert not pa.items and not pb.items
            assert len(a) == 60 and a.equals(b)
            assert set(a["primary_document"]) == {universe.by_accession[x].primary_document for x in a["accession"]}
        # per company: 60 submissions requests a quarter; full-index: one index a quarter + one archive in all
        assert per_company.requests_made == 3 * 60
        assert bulk.requests_made == 3 + 1
        assert server.hits(BULK_SUBMISSIONS_PATH) == 1
        # company_universe through the archive too, and company facts
        ua, _ = resolve_universe(bulk, [str(c) for c in universe.ciks])
        ub, _ = resolve_universe(per_company, [str(c) for c in universe.ciks])
        assert ua.equals(ub) and bulk.requests_made == 4
        company = next(c for c in universe.companies if c.source.facts_path is not None)
        assert bulk.company_facts(company.cik) == per_company.company_facts(company.cik)
        assert server.hits(BULK_COMPANYFACTS_PATH) == 1 and bulk.requests_made == 5
        bulk.close()


def test_full_index_path_equals_the_per_company_path_on_the_real_sample(replay_server, tmp_path):
    """The plain sample tree: the replay synthesizes master.idx and submissions.zip from its files (8-Ks too)."""
    per_company = live(replay_server)
    bulk = live(replay_server, bulk=True, cache=ObjectStore(str(tmp_path / "store")))
    for quarter in ("2023-07-01", "2024-01-01", "2020-01-01"):
        start = dt.date.fromisoformat(quarter)
        end = dt.date(start.year + (start.month == 10), (start.month + 2) % 12 + 1, 1)
        a, _ = filing_index(per_company, SAMPLE_CIKS, start, end)
        b, _ = filing_index(bulk, SAMPLE_CIKS, start, end)
        assert len(a) and a.equals(b), (quarter, a, b)
    assert set(b["form"]) >= {"8-K"}  # 2020Q1: Apple's 8-K with its items
    assert b.loc[b["form"] == "8-K", "items"].tolist() == ["2.02,9.01"]


def test_bulk_archive_is_downloaded_once_a_day_into_the_object_store(universe, tmp_path):
    store = ObjectStore(str(tmp_path / "store"))
    with ReplayServer(universe=universe) as server:
        first = live(server, bulk=True, cache=store)
        cik = universe.ciks[3]
        assert first.submissions(cik)["name"] == universe.by_cik[cik].name
        assert store.exists("edgar-cache/bulk/submissions.zip")
        assert store.get_bytes("edgar-cache/bulk/submissions.zip.date").decode() == dt.date.today().isoformat()
        second = live(server, bulk=True, cache=store)  # another step, same day: no download
        assert second.submissions(universe.ciks[4])["cik"] == f"{universe.ciks[4]:010d}"
        assert second.requests_made == 0 and server.hits(BULK_SUBMISSIONS_PATH) == 1
        store.put_bytes("edgar-cache/bulk/submissions.zip.date", b"2001-01-01")  # yesterday's copy: fetched again
        third = live(server, bulk=True, cache=store)
        third.submissions(cik)
        assert server.hits(BULK_SUBMISSIONS_PATH) == 2
        # a cut-off or failed download is retried, and never replaces the good copy with a broken one
        store.put_bytes("edgar-cache/bulk/submissions.zip.date", b"2001-01-01")
        server.inject(BULK_SUBMISSIONS_PATH, "truncate", "503", "drop")
        fourth = live(server, bulk=True, cache=store)
        assert fourth.submissions(cik)["cik"] == f"{cik:010d}"
        assert [s for _, p, s, _ in server.requests if p == BULK_SUBMISSIONS_PATH][-4:] == [200, 503, 0, 200]
        # a company the archive does not hold (a real sample one here) is asked for directly
        assert fourth.submissions(320193)["name"] == "Apple Inc."
        assert server.hits("/submissions/CIK0000320193.json") == 1
        for c in (first, second, third, fourth):
            c.close()


def test_bulk_archive_without_a_cache_uses_a_temporary_file(universe):
    with ReplayServer(universe=universe) as server:
        client = live(server, bulk=True)
        assert client.submissions(universe.ciks[0])["name"] == universe.companies[0].name
        zf = client.bulk_archive(BULK_SUBMISSIONS_PATH)
        assert zf.fp is not None and len(zf.namelist()) == 60
        client.close()


def test_a_filing_newer_than_the_nightly_archive_is_looked_up_directly(tmp_path):
    root = tmp_path / "edgar"
    shutil.copytree(SAMPLE_DIR, root)
    store = ObjectStore(str(tmp_path / "store"))
    with ReplayServer(root) as server:
        bulk = live(server, bulk=True, cache=store)
        bulk.submissions(1045810)  # today's archive is now cached
        path = root / "submissions" / "CIK0001045810.json"
        sub = json.loads(path.read_text())
        recent = sub["filings"]["recent"]
        for key in recent:
            recent[key].insert(0, {"accessionNumber": "0001045810-23-000999", "form": "10-Q", "filingDate": "2023-09-01",
                                   "reportDate": "2023-07-30", "primaryDocument": "nvda-20230730.htm"}.get(key, ""))
        path.write_text(json.dumps(sub))
        rows, problems = filing_index(bulk, SAMPLE_CIKS, dt.date(2023, 7, 1), dt.date(2023, 10, 1))
        assert not problems.items
        new = rows[rows["accession"] == "0001045810-23-000999"]
        assert new["primary_document"].tolist() == ["nvda-20230730.htm"]  # from the fresh submissions request
        assert server.hits("/submissions/CIK0001045810.json") == 1  # only that company was asked
        assert server.hits(BULK_SUBMISSIONS_PATH) == 1
        bulk.close()


def test_full_index_failure_falls_back_to_one_request_per_company(replay_server):
    bulk = live(replay_server, bulk=True)
    replay_server.inject("/Archives/edgar/full-index/2023/QTR3/master.idx", "404")
    rows, problems = filing_index(bulk, SAMPLE_CIKS, dt.date(2023, 7, 1), dt.date(2023, 10, 1))
    assert len(rows) == 8 and any("master.idx" in p and "instead" in p for p in problems.items)
    assert not problems.failed  # no company is missing
    bulk.close()


def test_full_index_parser_reads_real_edgar_files_and_rejects_others():
    sample = (SAMPLE_DIR.parent.parent.parent.parent / "shared" / "edgar" / "Archives" / "edgar" / "full-index"
              / "1993" / "QTR4" / "master.idx")
    if sample.is_file():  # a real 1993 master.idx from ../shared
        rows = parse_full_index(sample.read_bytes(), "master")
        assert len(rows) == 20 and rows[0].cik == 1095785 and rows[0].accession == "9999999997-02-056978"
    daily = sample.parents[3] / "daily-index" / "2020" / "QTR1" / "form.20200318.idx"
    if daily.is_file():  # a real daily form.idx: fixed width, dates as YYYYMMDD
        rows = parse_full_index(daily.read_bytes(), "form")
        assert rows[0].form == "1-A" and rows[0].date_filed == "2020-03-18" and rows[0].cik == 1806014
    with pytest.raises(EdgarDataError, match="-----"):
        parse_full_index(b"<html>not an index</html>", "master")
    with pytest.raises(EdgarDataError, match="line 3"):
        parse_full_index(b"CIK|Company Name|Form Type|Date Filed|Filename\n-----\nnot|a|row\n", "master")
    assert quarters_between(dt.date(2023, 7, 1), dt.date(2023, 10, 1)) == [(2023, 3)]
    assert quarters_between(dt.date(2023, 8, 1), dt.date(2024, 2, 1)) == [(2023, 3), (2023, 4), (2024, 1)]


def test_sample_mode_answers_full_index_and_bulk_reads_too():
    client = EdgarClient(bulk=True)
    rows = parse_full_index(client.full_index(2024, 1), "master")
    assert any(r.cik == 1318605 and r.form == "10-K" for r in rows)
    assert client.submissions(320193)["name"] == "Apple Inc."
    assert client.company_facts(320193)["entityName"] == "Apple Inc."


# ------------------------------------------------------------------------------------------------ settings and limits
LOOP = {"FINSEC_EDGAR_WWW_URL": "http://127.0.0.1:8765", "FINSEC_EDGAR_DATA_URL": "http://localhost:8765"}


def test_rate_limit_lifted_only_for_a_loopback_replay():
    assert Settings.from_env({**LOOP, "FINSEC_EDGAR_MAX_RPS": "50"}).edgar_max_rps == 50
    assert Settings.from_env({**LOOP, "FINSEC_EDGAR_MAX_RPS": "unlimited"}).edgar_max_rps == 0
    assert Settings.from_env({**LOOP, "FINSEC_EDGAR_MAX_RPS": "0"}).edgar_max_rps == 0
    assert Settings.from_env({"FINSEC_EDGAR_MAX_RPS": "7.5"}).edgar_max_rps == 7.5
    for env in ({"FINSEC_EDGAR_MAX_RPS": "50"}, {"FINSEC_EDGAR_MAX_RPS": "unlimited"},
                {**LOOP, "FINSEC_EDGAR_DATA_URL": "https://data.sec.gov", "FINSEC_EDGAR_MAX_RPS": "11"},
                {"FINSEC_EDGAR_WWW_URL": "http://10.0.0.5:8765", "FINSEC_EDGAR_DATA_URL": "http://10.0.0.5:8765",
                 "FINSEC_EDGAR_MAX_RPS": "0"}):
        with pytest.raises(SettingsError, match="FINSEC_EDGAR_MAX_RPS.*not loopback"):
            Settings.from_env(env)
    for bad in ("fast", "-1", "nan"):
        with pytest.raises(SettingsError, match="FINSEC_EDGAR_MAX_RPS"):
            Settings.from_env({**LOOP, "FINSEC_EDGAR_MAX_RPS": bad})
    # the client refuses it too, whoever builds it
    with pytest.raises(ValueError, match="at most 10"):
        EdgarClient(source="live", user_agent=UA, max_rps=0)
    with pytest.raises(ValueError, match="at most 10"):
        rate_limiter(20, www_url="https://www.sec.gov", data_url="http://127.0.0.1:1")
    assert isinstance(rate_limiter(0, www_url=LOOP["FINSEC_EDGAR_WWW_URL"], data_url=LOOP["FINSEC_EDGAR_DATA_URL"]),
                      UnlimitedRateLimiter)
    with pytest.raises(ValueError, match="only for a replay server"):
        EdgarClient(source="live", user_agent=UA, limiter=LoopbackRateLimiter(50))


def test_bulk_threshold_setting():
    assert Settings.from_env({}).edgar_bulk_min_companies == 500
    assert Settings.from_env({}).edgar_bulk(500) and not Settings.from_env({}).edgar_bulk(499)
    never = Settings.from_env({"FINSEC_EDGAR_BULK_MIN_COMPANIES": "0"})
    assert not never.edgar_bulk(10**6)
    assert Settings.from_env({"FINSEC_EDGAR_BULK_MIN_COMPANIES": "1"}).edgar_bulk(1)
    for bad in ("many", "-5", "2.5"):
        with pytest.raises(SettingsError, match="FINSEC_EDGAR_BULK_MIN_COMPANIES"):
            Settings.from_env({"FINSEC_EDGAR_BULK_MIN_COMPANIES": bad})


def test_loopback_limiter_holds_a_rate_above_ten(replay_server):
    limiter = LoopbackRateLimiter(40)
    client = live(replay_server, limiter=limiter)
    for _ in range(80):
        client.get("www", "/files/company_tickers.json")
    times = [t for t, p, _, _ in replay_server.requests if p == "/files/company_tickers.json"]
    assert len(times) == 80 and max_in_window(times) <= 40
