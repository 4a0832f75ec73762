"""new_filings_sensor and universe_backfill_sensor: EDGAR-driven runs and backfills."""

import datetime as dt
import hashlib
import json

import dagster as dg

from ...edgar.client import EdgarError
from ...edgar.parsing import EdgarDataError, is_10k_or_10q, quarter_of
from ..common import FinsecResource, quarter_partitions
from ..jobs import QUARTER_REFRESH

MAX_COMPANIES_PER_TICK = 40  # at 10 requests/s this keeps a tick well under the 60 s sensor timeout


def _universe_ciks(finsec: FinsecResource) -> list[int] | None:
    lake = finsec.lake()
    if not lake.has_table("company_universe"):
        return None
    df = lake.sql("select distinct cik from company_universe")
    return None if df.empty else sorted(int(c) for c in df["cik"])


@dg.sensor(job_name=QUARTER_REFRESH, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.STOPPED)
def new_filings_sensor(context: dg.SensorEvaluationContext, finsec: FinsecResource):
    """Requests a quarter_refresh run for each quarter in which a universe company filed a new 10-K/10-Q.

    The cursor keeps, per CIK, the accessions already seen (a company seen for the first time is
    only recorded: its history is the universe backfill's job) and where the last tick stopped, so
    each tick looks at no more than MAX_COMPANIES_PER_TICK companies.
    """
    ciks = _universe_ciks(finsec)
    if not ciks:
        return dg.SkipReason("company_universe has not been materialized yet")
    cursor = json.loads(context.cursor) if context.cursor else {"known": {}, "offset": 0}
    known: dict[str, list[str]] = cursor.get("known", {})
    offset = cursor.get("offset", 0) % len(ciks)
    batch = (ciks[offset:] + ciks[:offset])[:MAX_COMPANIES_PER_TICK]
    since = quarter_of(dt.date.today() - dt.timedelta(days=200))
    client = finsec.edgar(retries=2)
    new_by_quarter: dict[str, list[str]] = {}
    errors = []
    for cik in batch:
        try:
            refs = [r for r in client.filings(cik, since=since, refresh=True)
                    if is_10k_or_10q(r.form) and r.filing_date >= since.isoformat()]
        except (EdgarError, EdgarDataError) as exc:
            errors.append(f"CIK {cik}: {exc}")
            if len(errors) >= 3 and not new_by_quarter and len(errors) == batch.index(cik) + 1:
                break  # EDGAR is down: stop this tick early, keep the cursor
            continue
        seen = set(known.get(str(cik), []))
        if str(cik) in known:
            for r in refs:
                if r.accession not in seen:
                    q = quarter_of(dt.date.fromisoformat(r.filing_date)).isoformat()
                    new_by_quarter.setdefault(q, []).append(r.accession)
        known[str(cik)] = sorted({r.accession for r in refs})  # older ones age out of the window
    for msg in errors:
        context.log.warning(f"new_filings_sensor: {msg}")
    new_cursor = json.dumps({"known": known, "offset": (offset + len(batch)) % len(ciks)}, sort_keys=True)
    valid = set(quarter_partitions.get_partition_keys())
    requests = [
        dg.RunRequest(
            run_key=f"new-filings-{q}-{hashlib.sha1(','.join(sorted(accs)).encode()).hexdigest()[:12]}",
            partition_key=q, tags={"finsec/trigger": "new_filings_sensor", "finsec/new_accessions": ",".join(sorted(accs))[:200]},
        )
        for q, accs in sorted(new_by_quarter.items()) if q in valid
    ]
    if errors and len(errors) == batch.index(cik) + 1:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"EDGAR could not be read: {errors[0]}"
                                                         + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")),
                               cursor=context.cursor)
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no new 10-K/10-Q among {len(batch)} companies"
                                                         + (f"; {len(errors)} failed: {errors[0]}" if errors else "")),
                               cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
           asset_selection=dg.AssetSelection.assets("filing_index").downstream())
def universe_backfill_sensor(context: dg.SensorEvaluationContext, finsec: FinsecResource):
    """When company_universe gains companies, launches a backfill of the per-quarter assets over
    FINSEC_BACKFILL_START..FINSEC_BACKFILL_END (visible on the UI's backfills page)."""
    ciks = _universe_ciks(finsec)
    if not ciks:
        return dg.SkipReason("company_universe has not been materialized yet")
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    added = sorted(set(ciks) - seen)
    if not added:
        return dg.SkipReason(f"no new companies among {len(ciks)}")
    settings = finsec.settings()
    keys = quarter_partitions.get_partition_keys()
    end = settings.backfill_end or keys[-1]
    quarters = [k for k in keys if settings.backfill_start <= k <= end]
    if not quarters:
        return dg.SkipReason(f"no quarter between FINSEC_BACKFILL_START={settings.backfill_start} and {end}")
    from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
    from dagster._core.definitions.events import AssetKeyPartitionKey

    graph = context.repository_def.asset_graph
    job = context.repository_def.get_job(QUARTER_REFRESH)
    targets = [k for k in job.asset_layer.selected_asset_keys if graph.get(k).is_partitioned]
    subset = AssetGraphSubset.from_asset_partition_set({AssetKeyPartitionKey(k, q) for k in targets for q in quarters}, graph)
    context.log.info(f"backfilling {len(quarters)} quarters for new CIKs {added}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest.for_asset_graph_subset(subset, tags={"finsec/trigger": "universe_backfill_sensor",
                                                                         "finsec/new_ciks": ",".join(map(str, added))[:200]})],
        cursor=json.dumps(sorted(set(ciks) | seen)),
    )
