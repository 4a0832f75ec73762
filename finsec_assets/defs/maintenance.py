"""lake_maintenance: merge the lake's small files and expire old snapshots, nightly."""

import datetime as dt

import dagster as dg
from pydantic import Field

from ..storage.lake import LakeError
from .common import FinsecResource

LAKE_MAINTENANCE = "lake_maintenance"


class LakeMaintenanceConfig(dg.Config):
    keep_snapshots_days: float = Field(default=7.0, description="Snapshots (time travel) younger than this are kept.")
    delete_files_older_than_days: float = Field(
        default=1.0, description="Unreferenced files are deleted once this old (running queries and writers may "
                                 "still need younger ones).")
    merge_small_files: bool = Field(default=True, description="Write inlined rows out and merge small Parquet files.")


@dg.op(description="Merge small files, expire old snapshots, delete files no snapshot needs.")
def maintain_lake(context: dg.OpExecutionContext, config: LakeMaintenanceConfig, finsec: FinsecResource) -> dg.Output:
    try:
        report = finsec.lake().maintain(config.keep_snapshots_days, config.delete_files_older_than_days,
                                        config.merge_small_files)
    except LakeError as exc:
        raise dg.Failure(str(exc)) from exc
    context.log.info(f"lake maintenance: {report}")
    return dg.Output(None, metadata={**report, "catalog": finsec.lake().safe_catalog_url})


@dg.job(name=LAKE_MAINTENANCE, description="Lake housekeeping: merge small files, expire old snapshots.")
def lake_maintenance():
    maintain_lake()


@dg.schedule(cron_schedule="30 4 * * *", job=lake_maintenance, execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def lake_maintenance_schedule(context: dg.ScheduleEvaluationContext):
    """Nightly, before the daily EDGAR refresh; settings from the job's config (Launchpad) or the defaults."""
    day = (context.scheduled_execution_time or dt.datetime.now(dt.UTC)).date()
    return dg.RunRequest(run_key=f"lake-maintenance-{day.isoformat()}", tags={"finsec/trigger": "lake_maintenance"})
