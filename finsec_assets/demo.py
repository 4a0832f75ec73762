"""`make demo`: materialize every asset on the bundled sample, offline, in graph order, and say where results are."""

from __future__ import annotations

import os
import sys
import time

import dagster as dg

from .definitions import defs
from .edgar.sample import sample_quarters
from .settings import Settings
from .storage.lake import open_lake, quote_ident


def _plan():
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    partitioned = [k for k in keys if graph.get(k).is_partitioned]
    before, after = [], []
    for k in keys:
        if k not in partitioned:
            (after if graph.get_ancestor_asset_keys(k) & set(partitioned) else before).append(k)
    return before, partitioned, after


def main() -> int:
    os.environ.setdefault("FINSEC_EDGAR_SOURCE", "sample")
    settings = Settings.from_env()
    if settings.edgar_source != "sample":
        print("note: FINSEC_EDGAR_SOURCE=live; the demo still uses only the sample's quarters", file=sys.stderr)
    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    before, partitioned, after = _plan()
    quarters = sample_quarters()
    steps = [("corpus inputs", before, None)] + [(f"quarter {q}", partitioned, q) for q in quarters] + [("corpus models", after, None)]
    t0 = time.time()
    for label, keys, partition in steps:
        if not keys:
            continue
        t = time.time()
        print(f"==> {label}: {', '.join(k.to_user_string() for k in keys)}", flush=True)
        result = job.execute_in_process(
            asset_selection=keys, partition_key=partition, instance=instance, raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        failed_checks = [
            f"{e.asset_check_evaluation_data.asset_key.to_user_string()}:{e.asset_check_evaluation_data.check_name}"
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.asset_check_evaluation_data.passed
        ]
        if not result.success:
            print(f"FAILED: {label}", file=sys.stderr)
            return 1
        print(f"    ok in {time.time() - t:.1f}s" + (f"; failed checks: {failed_checks}" if failed_checks else ""), flush=True)
    print(f"\nAll assets materialized in {time.time() - t0:.0f}s.")
    lake = open_lake(settings)
    print(f"  tables:    the lake (catalog {settings.catalog_url}, Parquet in {settings.lake_data_path}), "
          f"snapshot {lake.current_snapshot()}")
    for name in lake.tables():
        n = lake.sql(f"select count(*) n from {quote_ident(name)}")["n"][0]
        print(f"    {name:32s} {n:>8d} rows")
    for key in before + partitioned + after:
        event = instance.get_latest_materialization_event(key)
        meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
        if "checkpoint_uri" in meta:
            ppl = ", ".join(f"{k} {meta[k].value:.2f}" for k in ("perplexity_before", "perplexity_after") if k in meta)
            print(f"    {key.to_user_string():32s} {meta['checkpoint_uri'].value}  ({ppl})")
    print('  try:       make sql Q="select * from raw_filings limit 5"   (or `make sql` for the DuckDB shell on the lake)')
    print(f"  dagster:   DAGSTER_HOME={os.environ.get('DAGSTER_HOME')}; open the UI with `make dev` -> http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
