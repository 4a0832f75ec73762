"""Materialize assets the way the UI does, with fresh resources bound to the test's environment."""

import dagster as dg

from finsec_assets.defs.common import FinsecResource, LakeIOManager
from finsec_assets.storage.lake import open_lake


def resources(**finsec_fields):
    finsec = FinsecResource(**finsec_fields)
    return {"finsec": finsec, "io_manager": LakeIOManager(finsec=finsec),
            "pipes_subprocess_client": dg.PipesSubprocessClient()}


def materialize(assets, selection=None, partition_key=None, instance=None, run_config=None,
                **finsec_fields) -> dg.ExecuteInProcessResult:
    return dg.materialize(assets, selection=selection, partition_key=partition_key, resources=resources(**finsec_fields),
                          instance=instance, raise_on_error=False, run_config=run_config)


def check_results(result) -> dict[str, bool]:
    return {f"{e.asset_check_evaluation_data.asset_key.path[-1]}:{e.asset_check_evaluation_data.check_name}":
            e.asset_check_evaluation_data.passed
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def output_metadata(result, asset: str) -> dict:
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == asset:
            return {k: v.value for k, v in e.materialization.metadata.items()}
    raise KeyError(asset)


def data_version(result, asset: str) -> str:
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.path[-1] == asset:
            return e.materialization.tags["dagster/data_version"]
    raise KeyError(asset)


def lake_rows(query: str, params=None) -> list[tuple]:
    """Rows of a query on the lake of the test's FINSEC_* environment."""
    return list(open_lake().sql(query, params).itertuples(index=False, name=None))


def lake_value(query: str, params=None):
    return lake_rows(query, params)[0][0]
