"""lake_maintenance: the job merges small files, expires old snapshots and deletes unneeded files."""

import datetime as dt

import dagster as dg
import pandas as pd

from finsec_assets.definitions import defs
from finsec_assets.defs.maintenance import lake_maintenance_schedule
from finsec_assets.storage.lake import open_lake


def test_lake_maintenance_job(finsec_env):
    lake = open_lake()
    for run in range(4):  # four reruns of one quarter, each big enough for its own Parquet file
        lake.replace_partition("t", "2024-01-01", pd.DataFrame({"accession": [f"a{i}" for i in range(5000)], "run": run}))
    for q in ("2024-04-01", "2024-07-01"):  # small quarters: inlined in the catalog
        lake.replace_partition("t", q, pd.DataFrame({"accession": ["x"], "run": 9}))
    first = int(lake.snapshots()["snapshot_id"].max())
    job = defs.get_job_def("lake_maintenance")
    config = {"ops": {"maintain_lake": {"config": {"keep_snapshots_days": 0, "delete_files_older_than_days": 0}}}}
    result = job.execute_in_process(run_config=config, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    out = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    report = {k: v.value for k, v in out.event_specific_data.metadata.items()}
    assert report["snapshots_expired"] >= 4 and report["files_deleted"] >= 3
    assert lake.sql("select partition_key, count(*) n, max(run) r from t group by 1 order by 1").values.tolist() == [
        ["2024-01-01", 5000, 3], ["2024-04-01", 1, 9], ["2024-07-01", 1, 9]]
    assert lake.live_files()["files"] == report["files_after"] and report["files_after"] >= 1
    parquet = list((finsec_env / "objects" / "lake").rglob("*.parquet"))
    assert len(parquet) == report["files_after"]  # replaced quarters' files are gone from disk
    assert lake.snapshots()["snapshot_id"].max() >= first


def test_schedule_requests_one_run_per_day():
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 1, 2, 4, 30, tzinfo=dt.UTC))
    request = lake_maintenance_schedule(context)
    assert request.run_key == "lake-maintenance-2026-01-02"
    assert defs.get_schedule_def("lake_maintenance_schedule").job_name == "lake_maintenance"
