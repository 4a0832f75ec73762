"""Tables as Parquet files, one per (asset, partition), in the object store.

One file per partition means parallel writers never share a file (no locks), a
rewrite of a quarter replaces exactly that quarter, and DuckDB can read the whole
asset as one glob.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .object_store import ObjectStore

UNPARTITIONED = "all"
TABLES_PREFIX = "tables"


def table_key(asset: str, partition: str | None) -> str:
    return f"{TABLES_PREFIX}/{asset}/{partition or UNPARTITIONED}.parquet"


def _fixed_size_arrays(series: pd.Series) -> pa.Array | None:
    """Equal-length float vectors become FLOAT[dim] so DuckDB's array functions work."""
    values = series.dropna()
    if values.empty or not all(isinstance(v, np.ndarray) and v.ndim == 1 for v in values.head(50)):
        return None
    lengths = {len(v) for v in values}
    if len(lengths) != 1 or not all(np.issubdtype(v.dtype, np.floating) for v in values.head(50)):
        return None
    dim = lengths.pop()
    flat = np.concatenate([np.asarray(v, dtype=np.float32) for v in series]) if series.notna().all() else None
    if flat is None:
        return None
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), dim)


def dataframe_to_arrow(df: pd.DataFrame) -> pa.Table:
    df = df.reset_index(drop=True)
    columns, names = [], []
    for name in df.columns:
        arr = _fixed_size_arrays(df[name]) if df[name].dtype == object else None
        if arr is None:
            arr = pa.Array.from_pandas(df[name])
            if pa.types.is_null(arr.type):  # all-null: store as text, not as an untyped column
                arr = arr.cast(pa.string())
            elif pa.types.is_list(arr.type) and pa.types.is_null(arr.type.value_type):  # lists that are all empty
                arr = arr.cast(pa.list_(pa.string()))
        columns.append(arr)
        names.append(str(name))
    return pa.Table.from_arrays(columns, names=names)


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def write_table(store: ObjectStore, asset: str, partition: str | None, df: pd.DataFrame) -> tuple[str, pa.Table, str]:
    """Write atomically; returns (uri, arrow table, sha256 of the file)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"asset {asset!r}: a table asset must return a pandas DataFrame, got {type(df).__name__}")
    table = dataframe_to_arrow(df)
    data = table_to_parquet_bytes(table)
    uri = store.put_bytes(table_key(asset, partition), data)
    return uri, table, hashlib.sha256(data).hexdigest()


def stored_partitions(store: ObjectStore, asset: str) -> list[str]:
    return [k.rsplit("/", 1)[1][: -len(".parquet")] for k in store.list(f"{TABLES_PREFIX}/{asset}") if k.endswith(".parquet")]


def read_table(store: ObjectStore, asset: str, partitions: Iterable[str] | None = None) -> pd.DataFrame:
    """Read the given partitions (all stored ones when None); missing partitions are skipped."""
    table = read_arrow_table(store, asset, partitions)
    return pd.DataFrame() if table is None else table.to_pandas()


def read_arrow_table(store: ObjectStore, asset: str, partitions: Iterable[str] | None = None) -> pa.Table | None:
    partitions = None if partitions is None else list(partitions)
    have = stored_partitions(store, asset)
    wanted = have if partitions is None else [p for p in partitions if p in set(have)]
    if partitions is not None and list(partitions) == [None]:
        wanted = [UNPARTITIONED] if UNPARTITIONED in have else []
    tables = [pq.read_table(io.BytesIO(store.get_bytes(table_key(asset, p)))) for p in sorted(wanted)]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def content_hash(df: pd.DataFrame) -> str:
    """Stable hash of a DataFrame's content (for data versions)."""
    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    if len(df):
        hashable = df.copy()
        for c in hashable.columns:
            if hashable[c].dtype == object:
                hashable[c] = hashable[c].map(lambda v: v.tobytes() if isinstance(v, np.ndarray) else repr(v) if isinstance(v, (list, dict, tuple)) else v)
        h.update(pd.util.hash_pandas_object(hashable, index=False).values.tobytes())
    return h.hexdigest()[:16]
