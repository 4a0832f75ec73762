"""EDGAR at scale through the assets and the sensor: above FINSEC_EDGAR_BULK_MIN_COMPANIES, filing_index reads the
full-index and the bulk archive, and new_filings_sensor sees every company's new filings with one request a tick."""

import datetime as dt
import json

import pytest

from finsec_assets.defs.common import FinsecResource
from finsec_assets.defs.edgar.assets import company_universe, filing_index
from finsec_assets.defs.edgar.sensors import MAX_COMPANIES_PER_TICK, new_filings_sensor
from finsec_assets.edgar.parsing import BULK_SUBMISSIONS_PATH, quarter_of
from finsec_assets.edgar.replay import ReplayServer
from finsec_assets.edgar.synthetic import SyntheticUniverse

from .helpers import check_results, lake_rows, materialize, output_metadata
from .test_edgar_automation import add_filing, edgar_copy, tick  # noqa: F401 - edgar_copy is a fixture

UA = "finsec tests tests@example.com"


@pytest.fixture(scope="module")
def universe():
    u = SyntheticUniverse(companies=45, quarters="2023Q3:2024Q1", seed=5)
    yield u
    u.close()


def _index_rows(quarter: str) -> list[tuple]:
    return lake_rows("select accession, cik, form, filing_date, report_date, primary_document, url, acceptance_datetime "
                     f"from filing_index where partition_key = '{quarter}' order by accession")


def test_filing_index_through_full_index_equals_per_company(finsec_env, monkeypatch, universe):
    with ReplayServer(universe=universe) as server:
        for key, value in universe.env(server.url).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("FINSEC_EDGAR_MAX_RPS", "unlimited")
        assets = [company_universe, filing_index]
        found = {}
        for mode, threshold in (("per-company", "0"), ("bulk", "40")):
            monkeypatch.setenv("FINSEC_EDGAR_BULK_MIN_COMPANIES", threshold)
            before = len(server.requests)
            assert materialize(assets, selection=[company_universe]).success
            result = materialize(assets, selection=[filing_index], partition_key="2023-10-01")
            assert result.success and all(check_results(result).values()), check_results(result)
            meta = output_metadata(result, "filing_index")
            found[mode] = (_index_rows("2023-10-01"), meta["read_via"], len(server.requests) - before)
        rows, via, requests = found["per-company"]
        # one submissions request per company (company_universe's; filing_index reads the day's cached copies)
        assert len(rows) == 45 and via == "one submissions request per company" and requests == 45
        bulk_rows, via, requests = found["bulk"]
        assert bulk_rows == rows and via.startswith("full-index")
        assert requests <= 2  # the quarter's master.idx; submissions.zip is cached from company_universe's read
        assert server.hits(BULK_SUBMISSIONS_PATH) == 1


@pytest.fixture
def big_sample(finsec_env, edgar_copy, monkeypatch):  # noqa: F811 - pytest fixture injection
    """The sample's 14 companies counted as a large universe (threshold 10), served live by the replay."""
    monkeypatch.setenv("FINSEC_EDGAR_BULK_MIN_COMPANIES", "10")
    assert materialize([company_universe]).success
    with ReplayServer(edgar_copy) as server:
        yield server, edgar_copy, FinsecResource(edgar_source="live", edgar_user_agent=UA, edgar_www_url=server.url,
                                                 edgar_data_url=server.url)


def test_sensor_reads_one_full_index_per_tick(big_sample):
    server, root, finsec = big_sample
    assert lake_rows("select count(*) from company_universe")[0][0] == 14 > 10
    first, _ = tick(new_filings_sensor, finsec)
    assert not first.run_requests and "full-index" in first.skip_reason.skip_message  # baseline recorded
    quarter = quarter_of(dt.date.today())
    master = f"/Archives/edgar/full-index/{quarter.year}/QTR{(quarter.month - 1) // 3 + 1}/master.idx"
    assert [p for _, p, _, _ in server.requests] == [master]
    today = dt.date.today()
    add_filing(root, 1045810, "0001045810-26-000999", "10-Q", today)
    add_filing(root, 1009672, "0001009672-26-000001", "10-K", today)
    add_filing(root, 104169, "0000104169-26-000998", "8-K", today)  # not a 10-K/10-Q
    result, _ = tick(new_filings_sensor, finsec, first.cursor)
    assert [r.partition_key for r in result.run_requests] == [quarter.isoformat()]
    assert result.run_requests[0].tags["finsec/new_accessions"] == "0001009672-26-000001,0001045810-26-000999"
    assert len(server.requests) == 2  # one request per tick, whatever the universe's size
    quiet, _ = tick(new_filings_sensor, finsec, result.cursor)
    assert not quiet.run_requests and len(server.requests) == 3
    # EDGAR down: a skip naming it, the cursor kept
    server.inject(master, "404")
    down, _ = tick(new_filings_sensor, finsec, quiet.cursor)
    assert not down.run_requests and "EDGAR could not be read" in down.skip_reason.skip_message
    assert down.cursor == quiet.cursor


def test_switching_from_per_company_to_full_index_requests_nothing_twice(big_sample, monkeypatch):
    server, root, finsec = big_sample
    monkeypatch.setenv("FINSEC_EDGAR_BULK_MIN_COMPANIES", "0")  # per company first
    add_filing(root, 1045810, "0001045810-26-000999", "10-Q", dt.date.today())
    per_company, _ = tick(new_filings_sensor, finsec)
    assert "0001045810-26-000999" in json.loads(per_company.cursor)["known"]["1045810"]
    assert len(server.requests) == 14 <= MAX_COMPANIES_PER_TICK
    monkeypatch.setenv("FINSEC_EDGAR_BULK_MIN_COMPANIES", "10")
    finsec = FinsecResource(edgar_source="live", edgar_user_agent=UA, edgar_www_url=server.url, edgar_data_url=server.url)
    switched, _ = tick(new_filings_sensor, finsec, per_company.cursor)
    assert not switched.run_requests  # the per-company cursor's accessions carry over
    add_filing(root, 1045810, "0001045810-26-001000", "10-Q", dt.date.today())
    fresh, _ = tick(new_filings_sensor, finsec, switched.cursor)
    assert fresh.run_requests[0].tags["finsec/new_accessions"] == "0001045810-26-001000"


def test_material_event_sensor_reads_the_full_index_then_only_companies_with_new_8ks(big_sample):
    """A large universe: one master.idx a tick, plus the submissions of just the companies that filed a new 8-K
    (for its items), not MAX_COMPANIES_PER_TICK companies' submissions."""
    import dagster as dg

    from finsec_assets.defs.edgar.sensors import material_event_refresh

    from .test_material_event_sensor import add_8k, tick as material_tick

    server, root, finsec = big_sample
    today = dt.date.today()
    quarter = quarter_of(today)
    master = f"/Archives/edgar/full-index/{quarter.year}/QTR{(quarter.month - 1) // 3 + 1}/master.idx"
    instance = dg.DagsterInstance.get()
    first = material_tick(finsec, instance=instance)
    assert not first.run_requests and "full-index" in first.skip_reason.skip_message  # baseline recorded
    assert [p for _, p, _, _ in server.requests] == [master]
    add_8k(root, 1045810, "0001045810-26-000902", "2.02,9.01", today)  # earnings: material
    add_8k(root, 104169, "0000104169-26-000903", "9.01", today)  # exhibits only: not material
    result = material_tick(finsec, first.cursor, instance)
    assert [(r.job_name, r.partition_key) for r in result.run_requests] == [(material_event_refresh.name, quarter.isoformat())]
    assert result.run_requests[0].tags["finsec/new_accessions"] == "0001045810-26-000902"
    assert result.run_requests[0].tags["finsec/material_items"] == "2.02"
    assert sorted(p for _, p, _, _ in server.requests[1:]) == sorted(
        [master, "/submissions/CIK0001045810.json", "/submissions/CIK0000104169.json"])
    quiet = material_tick(finsec, result.cursor, instance)
    assert not quiet.run_requests and [p for _, p, _, _ in server.requests[4:]] == [master]
    assert not json.loads(quiet.cursor)["index"]["queue"]
    server.inject(master, "404")  # EDGAR down: a skip naming it, the cursor kept
    down = material_tick(finsec, quiet.cursor, instance)
    assert not down.run_requests and "EDGAR could not be read" in down.skip_reason.skip_message
    assert json.loads(down.cursor)["index"] == json.loads(quiet.cursor)["index"]
