"""material_event_sensor against the EDGAR replay server (real sockets), with build_sensor_context."""

import datetime as dt
import json
import shutil

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from finsec_assets.defs.common import FinsecResource
from finsec_assets.defs.edgar.assets import company_universe
from finsec_assets.defs.edgar.sensors import material_event_refresh, material_event_sensor, rating_refresh
from finsec_assets.edgar.client import SAMPLE_DIR
from finsec_assets.edgar.parsing import quarter_of
from finsec_assets.edgar.replay import ReplayServer
from finsec_assets.settings import Settings, SettingsError

from .helpers import materialize

UA = "finsec tests tests@example.com"


@pytest.fixture
def watched(finsec_env, tmp_path, monkeypatch):
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT,AAPL")
    assert materialize([company_universe]).success
    root = tmp_path / "edgar"
    shutil.copytree(SAMPLE_DIR, root)
    with ReplayServer(root) as server:
        yield server, root, FinsecResource(edgar_source="live", edgar_user_agent=UA, edgar_www_url=server.url,
                                           edgar_data_url=server.url)


def add_8k(root, cik: int, accession: str, items: str, day: dt.date):
    path = root / "submissions" / f"CIK{cik:010d}.json"
    sub = json.loads(path.read_text())
    recent = sub["filings"]["recent"]
    values = {"accessionNumber": accession, "filingDate": day.isoformat(), "reportDate": day.isoformat(), "form": "8-K",
              "items": items, "primaryDocument": "doc8k.htm", "acceptanceDateTime": f"{day.isoformat()}T16:30:00.000Z"}
    for key in recent:
        recent[key].insert(0, values.get(key, ""))
    path.write_text(json.dumps(sub))


def tick(finsec, cursor=None, instance=None):
    ctx = dg.build_sensor_context(cursor=cursor, resources={"finsec": finsec}, instance=instance)
    return material_event_sensor(ctx)


def test_item_202_refreshes_its_quarter_once_then_the_ratings_and_901_alone_does_nothing(watched):
    server, root, finsec = watched
    instance = dg.DagsterInstance.get()
    first = tick(finsec, instance=instance)
    assert not first.run_requests and "no new 8-K" in first.skip_reason.skip_message  # baseline recorded
    today = dt.date.today()
    quarter = quarter_of(today).isoformat()

    add_8k(root, 1045810, "0001045810-26-000901", "9.01", today)  # exhibits only: not material
    quiet = tick(finsec, first.cursor, instance)
    assert not quiet.run_requests

    add_8k(root, 1045810, "0001045810-26-000902", "2.02,9.01", today)  # earnings
    add_8k(root, 104169, "0000104169-26-000903", "5.02", today)  # another company, same quarter
    result = tick(finsec, quiet.cursor, instance)
    assert len(result.run_requests) == 1  # exactly one run for the quarter
    request = result.run_requests[0]
    assert request.job_name == material_event_refresh.name and request.partition_key == quarter
    assert request.tags["finsec/new_accessions"] == "0000104169-26-000903,0001045810-26-000902"
    assert request.tags["finsec/material_items"] == "2.02,5.02" and request.tags["finsec/ciks"] == "104169,1045810"

    waiting = tick(finsec, result.cursor, instance)  # the quarter run has not happened yet: nothing more
    assert not waiting.run_requests and json.loads(waiting.cursor)["pending"]

    create_run_for_test(instance, job_name=material_event_refresh.name, status=dg.DagsterRunStatus.SUCCESS,
                        tags={"dagster/run_key": request.run_key, "dagster/partition": quarter})
    ratings = tick(finsec, waiting.cursor, instance)
    assert [(r.job_name, r.tags["finsec/ciks"]) for r in ratings.run_requests] == [(rating_refresh.name, "104169,1045810")]
    assert not json.loads(ratings.cursor)["pending"]
    assert not tick(finsec, ratings.cursor, instance).run_requests  # nothing twice


def test_trigger_items_are_configurable(watched, monkeypatch):
    server, root, finsec = watched
    monkeypatch.setenv("FINSEC_MATERIAL_EVENT_ITEMS", "9.01")
    finsec = FinsecResource(edgar_source="live", edgar_user_agent=UA, edgar_www_url=server.url, edgar_data_url=server.url)
    first = tick(finsec, instance=dg.DagsterInstance.get())
    add_8k(root, 320193, "0000320193-26-000904", "9.01", dt.date.today())
    result = tick(finsec, first.cursor, dg.DagsterInstance.get())
    assert len(result.run_requests) == 1 and result.run_requests[0].tags["finsec/material_items"] == "9.01"
    with pytest.raises(SettingsError, match="FINSEC_MATERIAL_EVENT_ITEMS.*2.2"):
        Settings.from_env({"FINSEC_MATERIAL_EVENT_ITEMS": "2.02,2.2"})


def test_edgar_down_or_malformed_skips_with_a_reason(watched):
    server, root, finsec = watched
    instance = dg.DagsterInstance.get()
    first = tick(finsec, instance=instance)
    for cik in (1045810, 104169, 320193):
        server.inject(f"/submissions/CIK{cik:010d}.json", "badjson")
    bad = tick(finsec, first.cursor, instance)
    assert not bad.run_requests and "invalid JSON" in bad.skip_reason.skip_message
    assert json.loads(bad.cursor)["known"] == json.loads(first.cursor)["known"]  # nothing learned, nothing lost
    down = tick(FinsecResource(edgar_source="live", edgar_user_agent=UA, edgar_www_url="http://127.0.0.1:9",
                               edgar_data_url="http://127.0.0.1:9"), first.cursor, instance)
    assert not down.run_requests and "EDGAR could not be read" in down.skip_reason.skip_message
    garbled = tick(finsec, "{not json", instance)  # a damaged cursor starts over instead of failing every tick
    assert not garbled.run_requests and "no new 8-K" in garbled.skip_reason.skip_message


def test_without_8k_forms_or_universe_the_sensor_skips(finsec_env, monkeypatch):
    assert "company_universe has not been materialized" in tick(FinsecResource()).skip_message
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA")
    assert materialize([company_universe]).success
    monkeypatch.setenv("FINSEC_FORMS", "10-K,10-Q")
    assert "leaves out 8-K" in tick(FinsecResource()).skip_message
