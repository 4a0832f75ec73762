"""The DuckDB catalog: ``warehouse.duckdb`` with one view (local) or table (S3) per asset.

DuckDB allows one writing process per file, so writers never touch it while
computing: the IO manager writes Parquet, then refreshes the catalog entry in a
short, retried transaction.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from .object_store import ObjectStore
from .tables import TABLES_PREFIX, read_arrow_table


def _connect(path: Path, timeout_s: float = 120.0) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:  # another process holds the write lock
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise RuntimeError(f"could not open the DuckDB catalog {path}: {exc}") from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _array_casts(schema: pa.Schema | None) -> str:
    """Parquet has no fixed-size list: restore FLOAT[dim] so array_cosine_similarity works."""
    casts = [
        f"CAST({quote_ident(f.name)} AS FLOAT[{f.type.list_size}]) AS {quote_ident(f.name)}"
        for f in (schema or [])
        if pa.types.is_fixed_size_list(f.type)
    ]
    return f" REPLACE ({', '.join(casts)})" if casts else ""


def _stored_schema_fields(store: ObjectStore, asset: str) -> list[pa.Field]:
    """Fixed-size list fields of every stored partition (an empty quarter must not drop a FLOAT[dim] cast)."""
    import pyarrow.parquet as pq

    fields = {}
    for path in sorted(store.local_path(f"{TABLES_PREFIX}/{asset}").glob("*.parquet")):
        for f in pq.read_schema(path):
            if pa.types.is_fixed_size_list(f.type):
                fields.setdefault(f.name, f)
    return list(fields.values())


def refresh_catalog_entry(warehouse: Path, store: ObjectStore, asset: str, schema: pa.Schema | None = None) -> str:
    """Make ``select * from <asset>`` show every stored partition; returns the SQL kind."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    if store.is_local:
        schema = pa.schema(_stored_schema_fields(store, asset))
        glob = (store.local_path(f"{TABLES_PREFIX}/{asset}") / "*.parquet").as_posix().replace("'", "''")
        sql = (
            f"CREATE OR REPLACE VIEW {quote_ident(asset)} AS SELECT *{_array_casts(schema)} "
            f"FROM read_parquet('{glob}', union_by_name = true)"
        )
        con = _connect(warehouse)
        try:
            con.execute(sql)
        finally:
            con.close()
        return "view"
    incoming = read_arrow_table(store, asset)  # S3: copy into a table so the file needs no credentials to query
    con = _connect(warehouse)
    try:
        con.register("_incoming", incoming)
        con.execute(f"CREATE OR REPLACE TABLE {quote_ident(asset)} AS SELECT * FROM _incoming")
    finally:
        con.close()
    return "table"


def query(warehouse: Path, sql: str):
    """Run a read query against the catalog (retrying while a writer holds the lock)."""
    con = _connect(warehouse)
    try:
        return con.execute(sql).df()
    finally:
        con.close()
