"""edgar_daily_refresh: the current quarter, every morning after EDGAR's overnight index."""

import datetime as dt

import dagster as dg

from ...edgar.parsing import quarter_of
from ..jobs import CORPUS_REFRESH, QUARTER_REFRESH


@dg.schedule(cron_schedule="0 6 * * *", job_name=QUARTER_REFRESH, execution_timezone="America/New_York",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def edgar_daily_refresh(context: dg.ScheduleEvaluationContext):
    """Refresh the current quarter's filing index and everything downstream of it (reruns reuse stored work)."""
    day = (context.scheduled_execution_time or dt.datetime.now(dt.UTC)).date()
    quarter = quarter_of(day).isoformat()
    return dg.RunRequest(run_key=f"daily-{day.isoformat()}", partition_key=quarter,
                         tags={"finsec/trigger": "edgar_daily_refresh"})


@dg.schedule(cron_schedule="0 3 * * 0", job_name=CORPUS_REFRESH, execution_timezone="America/New_York",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def weekly_model_refresh(context: dg.ScheduleEvaluationContext):
    """Corpus-level checkpoints, credit datasets and rating models, once a week on all stored quarters."""
    day = (context.scheduled_execution_time or dt.datetime.now(dt.UTC)).date()
    return dg.RunRequest(run_key=f"weekly-{day.isoformat()}", tags={"finsec/trigger": "weekly_model_refresh"})
