"""company_universe, filing_index and raw_filings materialized for two quarters, locally, on S3 and live."""

import os
import subprocess
import sys
import time

import duckdb
import pytest

from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings

from .helpers import check_results, materialize, output_metadata

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


def test_two_quarters_land_in_duckdb_and_reruns_fetch_nothing(finsec_env):
    results = run_two_quarters()
    con = duckdb.connect(str(finsec_env / "warehouse.duckdb"), read_only=True)
    counts = dict(con.execute("select strftime(date_trunc('quarter', filing_date::date), '%Y-%m-%d') q, count(*) "
                              "from raw_filings group by 1").fetchall())
    assert counts == QUARTERS
    assert con.execute("select count(*) from company_universe where industry_code is not null").fetchone()[0] == 14
    forms = con.execute("select form, count(*) from filing_index group by 1 order by 1").fetchall()
    assert forms == [("10-K", 9), ("10-Q", 8), ("8-K", 1)]
    assert con.execute("select document_type, document from raw_filings where not is_primary").fetchall() == [
        ("EX-99.1", "pressrelease3-8x24.htm")]
    assert con.execute("select count(*) from raw_filings where error is not null or sha256 is null").fetchone()[0] == 0
    con.close()
    assert output_metadata(results["2024-01-01"], "raw_filings")["fetched"] == 11
    again = materialize(ASSETS, selection=[raw_filings], partition_key="2024-01-01")
    assert again.success and output_metadata(again, "raw_filings")["fetched"] == 0
    assert output_metadata(again, "raw_filings")["reused"] == 11


def test_same_on_s3(finsec_env, moto_s3, monkeypatch):
    monkeypatch.setenv("FINSEC_OBJECT_STORE_URL", "s3://finsec-test/assets-run")
    run_two_quarters()
    con = duckdb.connect(str(finsec_env / "warehouse.duckdb"), read_only=True)
    assert con.execute("select count(*) from raw_filings").fetchone()[0] == sum(QUARTERS.values())
    uri = con.execute("select uri from raw_filings limit 1").fetchone()[0]
    con.close()
    assert uri.startswith("s3://finsec-test/assets-run/filings/")


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
    con = duckdb.connect(str(finsec_env / "warehouse.duckdb"), read_only=True)
    assert con.execute("select count(*) from raw_filings where uri is not null").fetchone()[0] == 1
    con.close()
    # the next run fetches only the missing one
    again = materialize(ASSETS, selection=[raw_filings], partition_key="2024-01-01")
    assert output_metadata(again, "raw_filings")["fetched"] == 1
    assert all(check_results(again).values())


def test_parallel_processes_writing_different_partitions(finsec_env):
    """Four runs at once, each on Dagster's multiprocess executor, share one warehouse: no lock errors, no lost rows."""
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
    con = duckdb.connect(str(finsec_env / "warehouse.duckdb"), read_only=True)
    assert con.execute("select count(*) from raw_filings").fetchone()[0] == 21  # 20 filings, one 8-K press release
    assert con.execute("select count(distinct accession) from filing_index").fetchone()[0] == 20
    con.close()
