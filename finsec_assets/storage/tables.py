"""DataFrames as Arrow tables for the lake, and content hashes for data versions.

pandas leaves types open that a table must fix: equal-length float vectors become FLOAT[dim],
all-null columns text, all-empty lists lists of text.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa


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


def _hashable(v):
    """A cell as bytes or text that depend only on its value. A list read back from the lake is an object ndarray,
    whose raw bytes are pointers: it hashes as the list it holds, the same as the list the asset built."""
    if isinstance(v, np.ndarray):
        return repr(v.tolist()) if v.dtype == object else v.tobytes()
    return repr(v) if isinstance(v, (list, dict, tuple)) else v


def _row_hashes(df: pd.DataFrame) -> bytes:
    hashable = df.copy()
    for c in hashable.columns:
        if hashable[c].dtype == object:
            hashable[c] = hashable[c].map(_hashable)
    return pd.util.hash_pandas_object(hashable, index=False).values.tobytes()


def content_hash(df: pd.DataFrame) -> str:
    """Stable hash of a DataFrame's content (for data versions)."""
    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    if len(df):
        h.update(_row_hashes(df))
    return h.hexdigest()[:16]


class ContentHasher:
    """``content_hash`` of a table written in batches, one batch at a time: the same value as ``content_hash`` of the
    batches concatenated when every batch has the same columns and dtypes (rows are hashed one by one), so a
    streamed asset's data version depends on its rows and their order, not on how they were cut into batches."""

    def __init__(self, columns):
        self.columns = [str(c) for c in columns]
        self._h = hashlib.sha256(",".join(self.columns).encode())

    def update(self, df: pd.DataFrame) -> None:
        if [str(c) for c in df.columns] != self.columns:
            raise ValueError(f"ContentHasher: batch columns {list(df.columns)} differ from {self.columns}")
        if len(df):
            self._h.update(_row_hashes(df))

    def hexdigest(self) -> str:
        return self._h.hexdigest()[:16]


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    """A zstd Parquet file in memory (inputs handed to out-of-process training, content-addressed in the object store)."""
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()
