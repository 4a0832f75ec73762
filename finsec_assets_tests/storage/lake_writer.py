"""A separate process that writes to the lake of its FINSEC_* environment (the concurrency tests start several).

    python -m finsec_assets_tests.storage.lake_writer replace TABLE ROWS WRITER PARTITION [PARTITION ...]
    python -m finsec_assets_tests.storage.lake_writer big TABLE ROWS BATCH PARTITION     (prints "writing" first)
    python -m finsec_assets_tests.storage.lake_writer count TABLE                          (prints JSON per partition)
"""

import json
import sys
import uuid

import numpy as np
import pandas as pd

from finsec_assets.storage.lake import open_lake


def rows(n: int, partition: str, writer: str, batch: str) -> pd.DataFrame:
    """One write's rows: every row carries the write's batch id, so a mix of two writes is visible."""
    return pd.DataFrame({"accession": [f"{partition}-{i:07d}" for i in range(n)], "writer": writer, "batch": batch,
                         "text": [f"row {i} of {partition} " * 6 for i in range(n)],
                         "embedding": list(np.random.default_rng(n).random((n, 8), dtype=np.float32))})


def main(argv: list[str]) -> None:
    command, table = argv[0], argv[1]
    lake = open_lake()
    if command == "replace":
        n, writer, partitions = int(argv[2]), argv[3], argv[4:]
        for partition in partitions:
            batch = uuid.uuid4().hex
            snapshot = lake.replace_partition(table, partition, rows(n, partition, writer, batch))
            print(json.dumps({"partition": partition, "batch": batch, "snapshot": snapshot}), flush=True)
    elif command == "big":
        n, batch, partition = int(argv[2]), argv[3], argv[4]
        df = rows(n, partition, "big", batch)
        lake.has_table(table)  # connect before announcing, so the kill lands inside the write
        print("writing", flush=True)
        lake.replace_partition(table, partition, df)
        print("committed", flush=True)
    elif command == "count":
        out = lake.sql(f"select partition_key, count(*) n, count(distinct accession) a, count(distinct batch) b "
                       f"from {table} group by 1 order by 1")
        print(json.dumps(out.values.tolist()))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
