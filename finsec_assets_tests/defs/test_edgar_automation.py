"""Sensors and schedules against the EDGAR replay server (real sockets), with build_sensor_context."""

import datetime as dt
import json
import shutil

import dagster as dg
import pytest

from finsec_assets.defs.common import FinsecResource
from finsec_assets.defs.edgar.assets import company_universe
from finsec_assets.defs.edgar.schedules import edgar_daily_refresh, weekly_model_refresh
from finsec_assets.defs.edgar.sensors import new_filings_sensor, universe_backfill_sensor
from finsec_assets.edgar.client import SAMPLE_DIR
from finsec_assets.edgar.parsing import quarter_of
from finsec_assets.edgar.replay import ReplayServer

from .helpers import materialize

UA = "finsec tests tests@example.com"


@pytest.fixture
def edgar_copy(tmp_path):
    root = tmp_path / "edgar"
    shutil.copytree(SAMPLE_DIR, root)
    return root


@pytest.fixture
def live_finsec(finsec_env, edgar_copy, monkeypatch):
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT,AAPL")
    assert materialize([company_universe]).success  # from the sample
    with ReplayServer(edgar_copy) as server:
        yield server, edgar_copy, FinsecResource(edgar_source="live", edgar_user_agent=UA, edgar_www_url=server.url,
                                                 edgar_data_url=server.url)


def add_filing(root, cik: int, accession: str, form: str, day: dt.date):
    path = root / "submissions" / f"CIK{cik:010d}.json"
    sub = json.loads(path.read_text())
    recent = sub["filings"]["recent"]
    for key in recent:
        recent[key].insert(0, {"accessionNumber": accession, "filingDate": day.isoformat(), "reportDate": day.isoformat(),
                               "form": form, "primaryDocument": "doc.htm"}.get(key, ""))
    path.write_text(json.dumps(sub))


def tick(sensor, finsec, cursor=None):
    ctx = dg.build_sensor_context(cursor=cursor, resources={"finsec": finsec})
    return sensor(ctx), ctx


def test_new_filing_requests_exactly_its_quarter(live_finsec):
    server, root, finsec = live_finsec
    first, _ = tick(new_filings_sensor, finsec)
    assert not first.run_requests and "no new" in first.skip_reason.skip_message  # baseline recorded
    again, _ = tick(new_filings_sensor, finsec, first.cursor)
    assert not again.run_requests
    today = dt.date.today()
    add_filing(root, 1045810, "0001045810-26-000999", "10-Q", today)
    add_filing(root, 1045810, "0001045810-26-000998", "8-K", today)  # not a 10-K/10-Q
    result, _ = tick(new_filings_sensor, finsec, again.cursor)
    assert [r.partition_key for r in result.run_requests] == [quarter_of(today).isoformat()]
    assert "0001045810-26-000999" in result.run_requests[0].tags["finsec/new_accessions"]
    assert "000998" not in result.run_requests[0].tags["finsec/new_accessions"]
    quiet, _ = tick(new_filings_sensor, finsec, result.cursor)
    assert not quiet.run_requests


def test_edgar_down_or_malformed_skips_with_a_reason(live_finsec):
    server, root, finsec = live_finsec
    first, _ = tick(new_filings_sensor, finsec)
    for cik in (1045810, 104169, 320193):
        server.inject(f"/submissions/CIK{cik:010d}.json", "badjson")
    bad, _ = tick(new_filings_sensor, finsec, first.cursor)
    assert not bad.run_requests and "invalid JSON" in bad.skip_reason.skip_message
    assert bad.cursor == first.cursor  # nothing learned, nothing lost
    server.stop()
    down, _ = tick(new_filings_sensor, FinsecResource(edgar_source="live", edgar_user_agent=UA,
                                                       edgar_www_url="http://127.0.0.1:9", edgar_data_url="http://127.0.0.1:9"),
                   first.cursor)
    assert not down.run_requests and "EDGAR could not be read" in down.skip_reason.skip_message


def test_sensor_without_universe_skips(finsec_env):
    result, _ = tick(new_filings_sensor, FinsecResource())
    assert "company_universe has not been materialized" in result.skip_message


def test_grown_universe_requests_a_backfill(finsec_env, monkeypatch):
    from finsec_assets.definitions import defs

    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT")
    assert materialize([company_universe]).success
    repo = defs.get_repository_def()
    ctx = dg.build_sensor_context(resources={"finsec": FinsecResource()}, repository_def=repo)
    first = universe_backfill_sensor(ctx)
    subset = first.run_requests[0].asset_graph_subset
    quarters = {pk for key, sub in subset.partitions_subsets_by_asset_key.items() for pk in sub.get_partition_keys()}
    assert min(quarters) == "2023-07-01" and max(quarters) == quarter_of(dt.date.today()).isoformat()
    assert {k.path[-1] for k in subset.partitions_subsets_by_asset_key} >= {"filing_index", "raw_filings"}
    ctx2 = dg.build_sensor_context(cursor=first.cursor, resources={"finsec": FinsecResource()}, repository_def=repo)
    assert "no new companies" in universe_backfill_sensor(ctx2).skip_message
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT,TSLA")
    assert materialize([company_universe]).success
    ctx3 = dg.build_sensor_context(cursor=first.cursor, resources={"finsec": FinsecResource()}, repository_def=repo)
    grown = universe_backfill_sensor(ctx3)
    assert grown.run_requests[0].tags["finsec/new_ciks"] == "1318605"


def test_schedules_target_the_current_quarter():
    when = dt.datetime(2025, 8, 14, 6, 0, tzinfo=dt.UTC)
    req = edgar_daily_refresh(dg.build_schedule_context(scheduled_execution_time=when))
    assert req.partition_key == "2025-07-01"
    weekly = weekly_model_refresh(dg.build_schedule_context(scheduled_execution_time=when))
    assert weekly.partition_key is None and weekly.run_key == "weekly-2025-08-14"


def test_rating_predictions_follow_new_filings_declaratively(finsec_env):
    from finsec_assets.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0
    for key in ("rating_models", "altman_inputs", "company_universe"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))
    for key in ("nlp_scores", "pooled_embeddings"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition="2024-01-01"))
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert after.get_num_requested(dg.AssetKey("rating_predictions")) == 1
    assert after.total_requested == 1  # nothing else is automated this way
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor)
    assert quiet.total_requested == 0
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="nlp_scores", partition="2024-04-01"))
    new_quarter = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=quiet.cursor)
    assert new_quarter.get_num_requested(dg.AssetKey("rating_predictions")) == 1
