"""company_universe, filing_index and raw_filings materialized for two quarters, locally, on S3 and live."""

import os
import subprocess
import sys
import time

import pytest

from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings

from finsec_assets.storage.lake import open_lake

from .helpers import check_results, lake_rows, lake_value, materialize, output_metadata

ASSETS = [company_universe, filing_index, raw_filings]
QUARTERS = {"2023-07-01": 8, "2024-01-01": 11}  # documents: 2024Q1 holds 9 10-Ks and 3M's 8-K with its press release


def run_two_quarters(**finsec):
    assert materialize(ASSETS, selection=[company_universe], **finsec).success
    results = {}
    for q in QUARTERS:
        results[q] = materialize(ASSETS, selection=[filing_index, raw_filings], partition_key=q, **finsec)
        assert results[q].success
        assert all(check_results(results[q]).values()), check_results(results[q])
    return results


def test_two_quarters_land_in_the_lake_and_reruns_fetch_nothing(finsec_env):
    results = run_two_quarters()
    counts = dict(lake_rows("select strftime(date_trunc('quarter', filing_date::date), '%Y-%m-%d') q, count(*) "
                            "from raw_filings group by 1"))
    assert counts == QUARTERS
    assert dict(lake_rows("select partition_key, count(*) from raw_filings group by 1")) == QUARTERS
    assert lake_value("select count(*) from company_universe where industry_code is not null") == 14
    forms = lake_rows("select form, count(*) from filing_index group by 1 order by 1")
    assert forms == [("10-K", 9), ("10-Q", 8), ("8-K", 1)]
    assert lake_rows("select document_type, document from raw_filings where not is_primary") == [
        ("EX-99.1", "pressrelease3-8x24.htm")]
    assert lake_value("select count(*) from raw_filings where error is not null or sha256 is null") == 0
    meta = output_metadata(results["2024-01-01"], "raw_filings")
    assert meta["dagster/row_count"] == 11 and meta["dagster/table_name"] == "lake.raw_filings"
    assert "accession" in [c.name for c in meta["dagster/column_schema"].columns]
    first = meta["lake/snapshot_id"]
    assert output_metadata(results["2024-01-01"], "raw_filings")["fetched"] == 11
    again = materialize(ASSETS, selection=[raw_filings], partition_key="2024-01-01")
    assert again.success and output_metadata(again, "raw_filings")["fetched"] == 0
    assert output_metadata(again, "raw_filings")["reused"] == 11
    # the rerun is a new snapshot; the quarter as the first run stored it can still be read
    assert output_metadata(again, "raw_filings")["lake/snapshot_id"] > first
    assert lake_value(f"select count(*) from lake.raw_filings AT (VERSION => {first}) "
                      "where partition_key = '2024-01-01'") == 11


def test_same_on_s3(finsec_env, moto_s3, monkeypatch):
    monkeypatch.setenv("FINSEC_OBJECT_STORE_URL", "s3://finsec-test/assets-run")
    run_two_quarters()
    assert lake_value("select count(*) from raw_filings") == sum(QUARTERS.values())
    uri = lake_value("select uri from raw_filings limit 1")
    assert uri.startswith("s3://finsec-test/assets-run/filings/")
    open_lake().flush_inlined_data()  # small quarters sit in the catalog until maintenance writes them out
    files = lake_rows("select data_file from ducklake_list_files('lake', 'raw_filings')")
    assert files and all(f.startswith("s3://finsec-test/assets-run/lake/") for (f,) in files)


def test_live_mode_against_replay_server_with_a_missing_document(finsec_env, replay_server, monkeypatch):
    monkeypatch.setenv("FINSEC_EDGAR_SOURCE", "live")
    monkeypatch.setenv("FINSEC_EDGAR_USER_AGENT", "finsec tests tests@example.com")
    monkeypatch.setenv("FINSEC_EDGAR_WWW_URL", replay_server.url)
    monkeypatch.setenv("FINSEC_EDGAR_DATA_URL", replay_server.url)
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT,ZZZZQ,1009672")
    universe = materialize(ASSETS, selection=[company_universe])
    assert universe.success and "ZZZZQ" in output_metadata(universe, "company_universe")["problems"]
    missing = "/Archives/edgar/data/104169/000010416924000056/wmt-20240131.htm"
    replay_server.inject(missing, "404")
    result = materialize(ASSETS, selection=[filing_index, raw_filings], partition_key="2024-01-01")
    assert result.success  # the rest of the quarter lands
    checks = check_results(result)
    assert checks["raw_filings:every_index_row_has_a_document"] is False
    assert "0000104169-24-000056" in output_metadata(result, "raw_filings")["problems"]
    assert lake_value("select count(*) from raw_filings where uri is not null") == 1
    # the next run fetches only the missing one
    again = materialize(ASSETS, selection=[raw_filings], partition_key="2024-01-01")
    assert output_metadata(again, "raw_filings")["fetched"] == 1
    assert all(check_results(again).values())


def test_parallel_processes_writing_different_partitions(finsec_env):
    """Four runs at once, each on Dagster's multiprocess executor, share one lake: no lock errors, no lost rows."""
    env = {**os.environ, "FINSEC_EXECUTOR": "multiprocess"}
    cli = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "finsec_assets.definitions"]
    subprocess.run(cli + ["--select", "company_universe"], env=env, check=True, capture_output=True, timeout=300)
    quarters = ["2000-04-01", "2018-01-01", "2023-07-01", "2024-01-01"]
    procs = [subprocess.Popen(cli + ["--select", "filing_index,raw_filings", "--partition", q], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for q in quarters]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for q, p, out in zip(quarters, procs, outputs):
        assert p.returncode == 0, f"{q}:\n{out[-3000:]}"
        assert "lock" not in out.lower() or "Could not set lock" not in out
    assert lake_value("select count(*) from raw_filings") == 21  # 20 filings, one 8-K press release
    assert lake_value("select count(distinct accession) from filing_index") == 20


def test_filing_index_check_names_the_companies_that_failed(finsec_env, replay_server, monkeypatch):
    """One company's submissions fail: the rest of the quarter lands, and a check fails naming that company."""
    monkeypatch.setenv("FINSEC_EDGAR_SOURCE", "live")
    monkeypatch.setenv("FINSEC_EDGAR_USER_AGENT", "finsec tests tests@example.com")
    monkeypatch.setenv("FINSEC_EDGAR_WWW_URL", replay_server.url)
    monkeypatch.setenv("FINSEC_EDGAR_DATA_URL", replay_server.url)
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT")
    assert materialize(ASSETS, selection=[company_universe]).success
    ok = materialize(ASSETS, selection=[filing_index], partition_key="2024-01-01")
    assert check_results(ok)["filing_index:every_company_indexed"] is True
    for cached in (finsec_env / "objects").rglob("CIK0000104169.json"):  # today's cached copy
        cached.unlink()
    replay_server.inject("/submissions/CIK0000104169.json", *["404"] * 10)
    result = materialize(ASSETS, selection=[filing_index], partition_key="2023-07-01")
    assert result.success  # NVDA's filings land
    assert check_results(result)["filing_index:every_company_indexed"] is False
    evaluation = next(e.asset_check_evaluation_data for e in result.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION"
                      and e.asset_check_evaluation_data.check_name == "every_company_indexed")
    assert "WMT (CIK 104169)" in evaluation.description and "NVDA" not in evaluation.description
    assert evaluation.metadata["failed"].value == 1 and "WMT (CIK 104169)" in evaluation.metadata["failed_companies"].value
    assert lake_rows("select distinct cik from filing_index where filing_date >= '2023-07-01' "
                     "and filing_date < '2023-10-01'") == [(1045810,)]
