"""new_filings_sensor, material_event_sensor and universe_backfill_sensor: EDGAR-driven runs and backfills."""

import datetime as dt
import hashlib
import json

import dagster as dg

from ...edgar.client import EdgarError
from ...edgar.parsing import EdgarDataError, is_8k, is_10k_or_10q, parse_full_index, parse_items, quarter_of
from ..common import FinsecResource, quarter_partitions
from ..jobs import QUARTER_REFRESH

MAX_COMPANIES_PER_TICK = 40  # at 10 requests/s this keeps a tick well under the 60 s sensor timeout
INDEX_QUARTERS_KEPT = 2  # full-index mode: the accessions seen in the current and the previous quarter


def _universe_ciks(finsec: FinsecResource) -> list[int] | None:
    lake = finsec.lake()
    if not lake.has_table("company_universe"):
        return None
    df = lake.sql("select distinct cik from company_universe")
    return None if df.empty else sorted(int(c) for c in df["cik"])


@dg.sensor(job_name=QUARTER_REFRESH, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.STOPPED)
def new_filings_sensor(context: dg.SensorEvaluationContext, finsec: FinsecResource):
    """Requests a quarter_refresh run for each quarter in which a universe company filed a new 10-K/10-Q.

    A universe of FINSEC_EDGAR_BULK_MIN_COMPANIES or more is watched through the current quarter's full-index:
    one request per tick sees every company's new filings. A smaller one is read company by company: the cursor
    keeps, per CIK, the accessions already seen (a company seen for the first time is only recorded: its history
    is the universe backfill's job) and where the last tick stopped, so each tick looks at no more than
    MAX_COMPANIES_PER_TICK companies.
    """
    ciks = _universe_ciks(finsec)
    if not ciks:
        return dg.SkipReason("company_universe has not been materialized yet")
    if finsec.settings().edgar_bulk(len(ciks)):
        return _new_filings_via_full_index(context, finsec, ciks)
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


def _new_filings_run_requests(new_by_quarter: dict[str, list[str]]) -> list[dg.RunRequest]:
    valid = set(quarter_partitions.get_partition_keys())
    return [
        dg.RunRequest(
            run_key=f"new-filings-{q}-{hashlib.sha1(','.join(sorted(accs)).encode()).hexdigest()[:12]}",
            partition_key=q, tags={"finsec/trigger": "new_filings_sensor", "finsec/new_accessions": ",".join(sorted(accs))[:200]},
        )
        for q, accs in sorted(new_by_quarter.items()) if q in valid
    ]


def _new_in_full_index(client, cursor: dict, ciks: list[int], wanted) -> tuple[list, dict, list[str]]:
    """The universe's full-index entries whose form passes ``wanted`` and that no earlier tick saw, of companies
    already known: the current quarter's master.idx (plus, once, the quarter the last tick read, when a new quarter has
    begun). Returns them, the cursor's new "index" state (accessions seen per quarter, known CIKs) and the quarters
    read. On the first index tick the per-company cursor's "known" accessions carry over (empty on a fresh sensor:
    baseline only), so switching modes requests nothing twice. Raises EdgarError/EdgarDataError."""
    state = cursor.get("index") or {}
    if state:
        known_ciks = set(state.get("ciks", []))
        seen = {q: set(accs) for q, accs in state.get("seen", {}).items()}
        carried: set[str] = set()
    else:
        known_ciks = {int(c) for c in cursor.get("known", {})}
        carried = {a for accs in cursor.get("known", {}).values() for a in accs}
        seen = {}
    current = quarter_of(dt.date.today()).isoformat()
    to_read = [current] + [q for q in [state.get("quarter")] if q and q < current]
    universe = set(ciks)
    new = []
    for q in to_read:
        day = dt.date.fromisoformat(q)
        n = (day.month - 1) // 3 + 1
        entries = parse_full_index(client.full_index(day.year, n, "master", refresh=True), "master",
                                   f"full-index/{day.year}/QTR{n}/master.idx")
        ours = [e for e in entries if e.cik in universe and wanted(e.form)]
        before = seen.get(q, set()) | carried
        new += [e for e in ours if e.accession not in before and e.cik in known_ciks]
        seen[q] = {e.accession for e in ours} | seen.get(q, set())
    kept = sorted(seen)[-INDEX_QUARTERS_KEPT:]
    return new, {"quarter": current, "ciks": sorted(universe), "seen": {q: sorted(seen[q]) for q in kept}}, to_read


def _new_filings_via_full_index(context: dg.SensorEvaluationContext, finsec: FinsecResource, ciks: list[int]):
    """One request per tick (see ``_new_in_full_index``): the universe's new 10-K/10-Qs, a run per quarter filed."""
    try:
        cursor = json.loads(context.cursor) if context.cursor else {}
    except json.JSONDecodeError:
        cursor = {}
    cursor = cursor if isinstance(cursor, dict) else {}
    try:
        new, state, to_read = _new_in_full_index(finsec.edgar(retries=2), cursor, ciks, is_10k_or_10q)
    except (EdgarError, EdgarDataError) as exc:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"EDGAR could not be read: {exc}"), cursor=context.cursor)
    new_by_quarter: dict[str, list[str]] = {}
    for e in new:
        new_by_quarter.setdefault(quarter_of(dt.date.fromisoformat(e.date_filed)).isoformat(), []).append(e.accession)
    new_cursor = json.dumps({**cursor, "index": state}, sort_keys=True)
    requests = _new_filings_run_requests(new_by_quarter)
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(
            f"no new 10-K/10-Q among {len(ciks)} companies (full-index of {', '.join(to_read)})"), cursor=new_cursor)
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


# The 8-K path of one quarter, and the ratings that follow it.
EIGHT_K_PATH = ["filing_index", "raw_filings", "filing_sections", "nlp_scores", "filing_summaries", "filing_events"]
material_event_refresh = dg.define_asset_job(
    "material_event_refresh", selection=dg.AssetSelection.assets(*EIGHT_K_PATH), partitions_def=quarter_partitions,
    description="One quarter's 8-K path after a material 8-K: index, documents and press releases, sections, scores, "
                "summaries, filing_events.")
rating_refresh = dg.define_asset_job("rating_refresh", selection=dg.AssetSelection.assets("rating_predictions"),
                                     description="rating_predictions again, after a material 8-K's quarter is refreshed.")


def _cursor(raw: str | None) -> dict:
    try:
        cursor = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        cursor = {}
    if not isinstance(cursor, dict):
        cursor = {}
    out = {"known": cursor.get("known", {}), "offset": int(cursor.get("offset", 0)), "pending": cursor.get("pending", {})}
    if isinstance(cursor.get("index"), dict):
        out["index"] = cursor["index"]
    return out


def _material_hits(refs, accessions, triggers: set, cik: int, material: dict) -> None:
    """Adds the 8-Ks among ``refs`` whose accession is in ``accessions`` and whose items include a trigger."""
    for r in refs:
        hit = sorted(set(parse_items(r.items)) & triggers)
        if r.accession not in accessions or not hit:
            continue
        q = quarter_of(dt.date.fromisoformat(r.filing_date)).isoformat()
        entry = material.setdefault(q, {"accessions": [], "ciks": [], "items": []})
        entry["accessions"].append(r.accession)
        entry["ciks"] = sorted(set(entry["ciks"]) | {cik})
        entry["items"] = sorted(set(entry["items"]) | set(hit))


def _material_8ks_per_company(finsec: FinsecResource, ciks: list[int], cursor: dict, triggers: set):
    """The next MAX_COMPANIES_PER_TICK companies' submissions: their 8-Ks not seen before."""
    known: dict[str, list[str]] = cursor["known"]
    offset = cursor["offset"] % len(ciks)
    batch = (ciks[offset:] + ciks[:offset])[:MAX_COMPANIES_PER_TICK]
    since = quarter_of(dt.date.today() - dt.timedelta(days=200))
    client = finsec.edgar(retries=2)
    material: dict[str, dict[str, list]] = {}  # quarter -> {"accessions": [...], "ciks": [...], "items": [...]}
    errors: list[str] = []
    read = 0
    for cik in batch:
        try:
            refs = [r for r in client.filings(cik, since=since, refresh=True)
                    if is_8k(r.form) and r.filing_date >= since.isoformat()]
        except (EdgarError, EdgarDataError) as exc:
            errors.append(f"CIK {cik}: {exc}")
            if len(errors) >= 3 and read == 0:
                break  # EDGAR is down: stop this tick early, keep the cursor
            continue
        read += 1
        if str(cik) in known:
            _material_hits(refs, {r.accession for r in refs} - set(known[str(cik)]), triggers, cik, material)
        known[str(cik)] = sorted({r.accession for r in refs})  # older ones age out of the window
    updates = {"known": known, "offset": (offset + len(batch)) % len(ciks)}
    return material, errors, read, updates, f"{len(batch)} companies"


def _material_8ks_via_full_index(finsec: FinsecResource, ciks: list[int], cursor: dict, triggers: set):
    """A large universe: the current quarter's master.idx (one request) names the companies with an 8-K not seen
    before; only those companies' submissions are read for the 8-Ks' items, at most MAX_COMPANIES_PER_TICK a tick
    (the rest wait in the cursor's queue). The first index tick records what is there (the per-company cursor's
    accessions carry over), so requests per tick follow the new 8-Ks, not the universe's size."""
    client = finsec.edgar(retries=2)
    queue: dict[str, list[str]] = {k: list(v) for k, v in (cursor.get("index") or {}).get("queue", {}).items()}
    try:
        new, state, to_read = _new_in_full_index(client, cursor, ciks, is_8k)
    except (EdgarError, EdgarDataError) as exc:
        return {}, [str(exc)], 0, {}, "the full-index"
    for e in new:
        queue.setdefault(str(e.cik), []).append(e.accession)
    since = quarter_of(dt.date.today() - dt.timedelta(days=200))
    material: dict[str, dict[str, list]] = {}
    errors: list[str] = []
    looked = sorted(queue, key=int)[:MAX_COMPANIES_PER_TICK]
    for cik in looked:
        try:
            refs = [r for r in client.filings(int(cik), since=since, refresh=True) if is_8k(r.form)]
        except (EdgarError, EdgarDataError) as exc:
            errors.append(f"CIK {cik}: {exc}")  # stays queued for the next tick
            continue
        _material_hits(refs, set(queue.pop(cik)), triggers, int(cik), material)
    updates = {"index": {**state, "queue": queue}}
    looked_at = f"{len(ciks)} companies (full-index of {', '.join(to_read)}; {len(looked)} with new 8-Ks read)"
    return material, errors, 1, updates, looked_at


@dg.sensor(jobs=[material_event_refresh, rating_refresh], minimum_interval_seconds=600,
           default_status=dg.DefaultSensorStatus.STOPPED)
def material_event_sensor(context: dg.SensorEvaluationContext, finsec: FinsecResource):
    """Watches the universe's new 8-Ks. One whose items include a trigger (FINSEC_MATERIAL_EVENT_ITEMS, default 2.02,
    1.01, 1.03, 2.06, 4.02, 5.02) requests a material_event_refresh run of its quarter (one run per quarter per tick);
    once that run has succeeded, a later tick requests rating_refresh tagged with the company's CIK.

    The cursor keeps, per CIK, the 8-K accessions already seen (a company seen for the first time is only
    recorded), where the last tick stopped, and the quarter runs whose ratings are still to refresh.
    """
    ciks = _universe_ciks(finsec)
    if not ciks:
        return dg.SkipReason("company_universe has not been materialized yet")
    settings = finsec.settings()
    if "8-K" not in settings.forms:
        return dg.SkipReason(f"FINSEC_FORMS={','.join(settings.forms)} leaves out 8-K: no 8-K path to refresh")
    triggers = set(settings.material_event_items)
    cursor = _cursor(context.cursor)
    pending: dict[str, dict] = cursor["pending"]
    requests: list[dg.RunRequest] = []

    # 1. quarter runs launched by earlier ticks: once one succeeded, its companies' ratings follow
    for run_key, info in sorted(pending.items()):
        runs = context.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
        if not runs:
            continue
        status = runs[0].status
        if status == dg.DagsterRunStatus.SUCCESS:
            requests.append(dg.RunRequest(
                job_name=rating_refresh.name, run_key=f"ratings-after-{run_key}",
                tags={"finsec/trigger": "material_event_sensor", "finsec/ciks": ",".join(map(str, info["ciks"]))[:200],
                      "finsec/after_run": runs[0].run_id}))
            del pending[run_key]
        elif status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            context.log.warning(f"material_event_sensor: {run_key} ended {status.value}; ratings not refreshed for it")
            del pending[run_key]

    # 2. new 8-Ks: the next batch of companies, or (a large universe) the full-index's new 8-Ks
    if settings.edgar_bulk(len(ciks)):
        material, errors, read, updates, looked_at = _material_8ks_via_full_index(finsec, ciks, cursor, triggers)
    else:
        material, errors, read, updates, looked_at = _material_8ks_per_company(finsec, ciks, cursor, triggers)
    for msg in errors:
        context.log.warning(f"material_event_sensor: {msg}")
    if errors and read == 0:
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=None if requests else dg.SkipReason(
                f"EDGAR could not be read: {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")),
            cursor=json.dumps({**_cursor(context.cursor), "pending": pending}, sort_keys=True))
    valid = set(quarter_partitions.get_partition_keys())
    for q, entry in sorted(material.items()):
        if q not in valid:
            continue
        run_key = f"material-event-{q}-{hashlib.sha1(','.join(sorted(entry['accessions'])).encode()).hexdigest()[:12]}"
        requests.append(dg.RunRequest(
            job_name=material_event_refresh.name, partition_key=q, run_key=run_key,
            tags={"finsec/trigger": "material_event_sensor", "finsec/new_accessions": ",".join(sorted(entry["accessions"]))[:200],
                  "finsec/material_items": ",".join(entry["items"]), "finsec/ciks": ",".join(map(str, entry["ciks"]))[:200]}))
        pending[run_key] = {"quarter": q, "ciks": entry["ciks"]}
    new_cursor = json.dumps({**cursor, **updates, "pending": pending}, sort_keys=True)
    if not requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"no new 8-K with items {','.join(sorted(triggers))} among {looked_at}"
                                      + (f"; {len(errors)} failed: {errors[0]}" if errors else "")),
            cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)
