"""One-time import of tables stored in the layout before the lake: ``tables/<asset>/<partition>.parquet``.

Partition ``all`` was an unpartitioned asset. Files are read as they are (vectors keep their FLOAT[dim]) and
written with the same calls the IO manager uses, one transaction per file; rerunning it replaces again. The
old files stay where they are: delete ``tables/`` once the lake holds what you need.
"""

from __future__ import annotations

import io
import re

import pyarrow.parquet as pq

from .lake import Lake
from .object_store import ObjectStore

OLD_PREFIX = "tables"
OLD_UNPARTITIONED = "all"
OLD_KEY = re.compile(rf"^{OLD_PREFIX}/(?P<asset>[A-Za-z_][A-Za-z0-9_]*)/(?P<partition>[^/]+)\.parquet$")


def old_table_files(store: ObjectStore) -> list[tuple[str, str | None, str]]:
    """(asset, partition or None, key) of every complete old-layout file (temporary files are skipped)."""
    found = []
    for key in store.list(OLD_PREFIX):
        m = OLD_KEY.match(key)
        if m and not m["partition"].startswith("."):
            partition = None if m["partition"] == OLD_UNPARTITIONED else m["partition"]
            found.append((m["asset"], partition, key))
    return sorted(found, key=lambda f: (f[0], f[1] or ""))


def import_old_tables(lake: Lake, store: ObjectStore, assets: list[str] | None = None, log=print) -> list[dict]:
    """Copy every old-layout table file into the lake; returns one record per file."""
    done = []
    for asset, partition, key in old_table_files(store):
        if assets and asset not in assets:
            continue
        table = pq.read_table(io.BytesIO(store.get_bytes(key)))
        table = table.replace_schema_metadata(None)
        snapshot = lake.replace_partition(asset, partition, table) if partition else lake.replace_table(asset, table)
        done.append({"asset": asset, "partition": partition, "rows": table.num_rows, "snapshot": snapshot})
        log(f"{asset:32s} {partition or '(unpartitioned)':16s} {table.num_rows:>9d} rows -> snapshot {snapshot}")
    return done
