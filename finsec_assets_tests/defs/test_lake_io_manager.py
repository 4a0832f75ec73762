"""The lake IO manager: a quarter per write, inputs read back as the asset returned them, metadata per write."""

import dagster as dg
import numpy as np
import pandas as pd

from finsec_assets.defs.common import previous_partition, quarter_partitions
from finsec_assets.storage.lake import open_lake

from .helpers import materialize, output_metadata


@dg.asset(partitions_def=quarter_partitions)
def quarterly(context: dg.AssetExecutionContext) -> pd.DataFrame:
    q = context.partition_key
    return pd.DataFrame({"accession": [f"{q}-a", f"{q}-b"], "vec": [np.ones(2, np.float32), np.zeros(2, np.float32)]})


@dg.asset(ins={"quarterly": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def corpus(quarterly: pd.DataFrame) -> pd.DataFrame:
    assert "partition_key" not in quarterly.columns
    return pd.DataFrame({"n": [len(quarterly)], "dims": [int(np.stack(quarterly["vec"]).shape[1])]})


@dg.asset(partitions_def=quarter_partitions)
def not_a_table() -> list:
    return [1, 2]


def test_quarters_then_a_corpus_asset(finsec_env):
    first = materialize([quarterly, corpus], selection=[quarterly], partition_key="2024-01-01")
    assert materialize([quarterly, corpus], selection=[quarterly], partition_key="2024-04-01").success
    meta = output_metadata(first, "quarterly")
    assert meta["dagster/row_count"] == 2 and meta["dagster/table_name"] == "lake.quarterly"
    schema = {c.name: c.type for c in meta["dagster/column_schema"].columns}
    assert schema == {"accession": "VARCHAR", "vec": "FLOAT[2]", "partition_key": "VARCHAR"}
    assert f"AT (VERSION => {meta['lake/snapshot_id']})" in meta["lake/query"]
    result = materialize([quarterly, corpus], selection=[corpus])
    assert result.success
    lake = open_lake()
    assert lake.sql("select n, dims from corpus").values.tolist() == [[4, 2]]
    assert lake.partitions("quarterly") == ["2024-01-01", "2024-04-01"]
    again = materialize([quarterly, corpus], selection=[quarterly], partition_key="2024-01-01")
    assert output_metadata(again, "quarterly")["lake/snapshot_id"] > meta["lake/snapshot_id"]
    assert lake.sql("select count(*) n from quarterly")["n"][0] == 4  # a rerun replaces its quarter


def test_previous_partition_and_bad_outputs(finsec_env):
    from finsec_assets.defs.common import FinsecResource

    assert materialize([quarterly], partition_key="2024-01-01").success
    previous = previous_partition(FinsecResource(), "quarterly", "2024-01-01")
    assert previous["accession"].tolist() == ["2024-01-01-a", "2024-01-01-b"] and "partition_key" not in previous
    assert previous_partition(FinsecResource(), "quarterly", "2023-01-01").empty
    bad = materialize([not_a_table], partition_key="2024-01-01")
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
    assert "not_a_table" in str(failure.event_specific_data.error) and "DataFrame" in str(failure.event_specific_data.error)
