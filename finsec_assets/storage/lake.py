"""Tables in a DuckLake: a SQL catalog (SQLite or Postgres) plus Parquet files in the object store.

Every table asset is one DuckLake table named after the asset. A quarter's write is one
transaction (delete the quarter's rows, insert the new ones) retried with backoff when another
writer commits first, so several processes and hosts can write at once and a writer killed at any
moment leaves the table as it was (its Parquet files are orphans that maintenance removes).
Every commit is a snapshot: ``select * from lake.t AT (VERSION => n)`` reads an old one.

DuckLake has no fixed-size arrays, so vectors (``FLOAT[dim]`` in DuckDB) are stored as ``FLOAT[]``
with the dimension in the column's comment, and every connection of this module sees a view with
the asset's name that casts them back, so ``array_cosine_similarity`` works on them.

The DuckDB extensions come from PyPI packages (``duckdb-extension-ducklake`` ...) and load from
their files: nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import glob
import importlib
import os
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pandas as pd
import pyarrow as pa

from .tables import dataframe_to_arrow

ALIAS = "lake"
PARTITION_COLUMN = "partition_key"
VECTOR_COMMENT = re.compile(r"^FLOAT\[(\d+)\]$")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Errors another writer causes; the transaction is retried from the start.
RETRYABLE = ("conflict", "locked", "busy", "already exists", "primary key", "unique constraint", "duplicate key",
             "could not serialize", "deadlock", "has been altered", "retry", "concurrent")


# A streamed write is spooled to Parquet files of about this many bytes (Arrow, in memory) and inserted one file per
# statement: DuckDB holds about one statement's rows until it writes them out (measured: 2-3 kB a row of xbrl_facts).
SPOOL_FILE_BYTES = 16 * 2**20


class LakeError(RuntimeError):
    """A lake operation failed; the message names the table and what went wrong."""


class StreamedWrite(NamedTuple):
    """What ``Lake.replace_table_batches`` committed: the snapshot id and how many rows the table/partition holds now."""

    snapshot_id: int
    rows: int


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def extension_path(name: str) -> str:
    """The ``.duckdb_extension`` file inside the ``duckdb-extension-<name>`` package, for this duckdb version."""
    module_name = f"duckdb_extension_{name}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LakeError(f"the DuckDB extension {name!r} is not installed: pip install "
                        f"'duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}'") from exc
    root = Path(module.__file__).parent
    wanted = sorted(glob.glob(str(root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension")))
    found = wanted or sorted(glob.glob(str(root / "**" / f"{name}.duckdb_extension"), recursive=True))
    if not found:
        raise LakeError(f"no {name}.duckdb_extension file in {root} (duckdb {duckdb.__version__})")
    return found[0]


def s3_secret_sql(env: dict | None = None) -> str:
    """A DuckDB S3 secret from the standard AWS_* variables (AWS_ENDPOINT_URL for MinIO, moto ...)."""
    env = os.environ if env is None else env
    parts = ["TYPE s3"]
    if env.get("AWS_ACCESS_KEY_ID"):
        parts += [f"KEY_ID {sql_literal(env['AWS_ACCESS_KEY_ID'])}",
                  f"SECRET {sql_literal(env.get('AWS_SECRET_ACCESS_KEY', ''))}"]
    if env.get("AWS_SESSION_TOKEN"):
        parts.append(f"SESSION_TOKEN {sql_literal(env['AWS_SESSION_TOKEN'])}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        parts.append(f"REGION {sql_literal(region)}")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        parts += [f"ENDPOINT {sql_literal(parsed.netloc)}", "URL_STYLE 'path'",
                  f"USE_SSL {'true' if parsed.scheme == 'https' else 'false'}"]
    return f"CREATE OR REPLACE SECRET finsec_s3 ({', '.join(parts)})"


@dataclass(frozen=True)
class LakeLocation:
    """Where a lake lives: its catalog URL (sqlite:///... or postgres://...) and its data path (folder or s3://)."""

    catalog_url: str
    data_path: str

    @property
    def catalog_kind(self) -> str:
        return "postgres" if self.catalog_url.startswith(("postgres://", "postgresql://")) else "sqlite"

    def catalog_sql(self) -> str:
        if self.catalog_kind == "postgres":
            return f"ducklake:postgres:{self.catalog_url}"
        path = self.catalog_url[len("sqlite:///"):] if self.catalog_url.startswith("sqlite:///") else self.catalog_url
        return f"ducklake:sqlite:{path}"

    @property
    def data_is_s3(self) -> bool:
        return self.data_path.startswith("s3://")

    def setup_sql(self, alias: str = ALIAS, env: dict | None = None) -> list[str]:
        """Statements that load the extensions and attach the lake; also what ``make sql`` runs in the CLI."""
        needed = ["ducklake", "postgres_scanner" if self.catalog_kind == "postgres" else "sqlite_scanner"]
        if self.data_is_s3:
            needed.append("httpfs")
        statements = [f"LOAD {sql_literal(extension_path(name))}" for name in needed]
        if self.data_is_s3:
            statements.append(s3_secret_sql(env))
        data_path = self.data_path if self.data_path.endswith("/") else self.data_path + "/"
        statements.append(f"ATTACH IF NOT EXISTS {sql_literal(self.catalog_sql())} AS {quote_ident(alias)} "
                          f"(DATA_PATH {sql_literal(data_path)})")
        return statements


def location_from_settings(settings) -> LakeLocation:
    data_path = settings.lake_data_path
    if not data_path.startswith("s3://"):
        local = data_path[len("file://"):] if data_path.startswith("file://") else data_path
        Path(local).mkdir(parents=True, exist_ok=True)
        data_path = str(Path(local).resolve()) + "/"
    if settings.catalog_url.startswith("sqlite:///"):
        path = Path(settings.catalog_url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        _sqlite_wal(path)
    return LakeLocation(settings.catalog_url, data_path)


def _sqlite_wal(path: Path) -> None:
    """WAL mode (kept in the file): a streaming read must not hold off every writer until it ends."""
    import sqlite3

    con = sqlite3.connect(str(path), timeout=60)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, duckdb.TransactionException):
        return True
    text = str(exc).lower()
    return any(word in text for word in RETRYABLE)


@functools.lru_cache(maxsize=256)
def _ddl_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type a column of this Arrow type is stored as (vectors as FLOAT[], see the module doc)."""
    if pa.types.is_fixed_size_list(arrow_type):
        return f"{_ddl_type(arrow_type.value_type)}[]"
    con = duckdb.connect()
    try:
        con.register("_probe", pa.table({"c": pa.array([], type=arrow_type)}))
        return con.execute("select column_type from (describe _probe)").fetchone()[0]
    finally:
        con.close()


@functools.lru_cache(maxsize=256)
def _common_type(old: str, new: str) -> str | None:
    """The type both fit in without loss (DuckDB's implicit casts: INTEGER+BIGINT=BIGINT, BIGINT+DOUBLE=DOUBLE);
    text stays text; None when there is none (BIGINT stored, text arriving)."""
    con = duckdb.connect()
    try:
        return con.execute(f"select typeof(coalesce(NULL::{old}, NULL::{new}))").fetchone()[0]
    except duckdb.Error:
        return "VARCHAR" if old == "VARCHAR" else None
    finally:
        con.close()


def _vector_dims(table: pa.Table) -> dict[str, int]:
    return {f.name: f.type.list_size for f in table.schema if pa.types.is_fixed_size_list(f.type)}


def _as_lists(table: pa.Table) -> pa.Table:
    """Fixed-size lists become plain lists (what the lake stores)."""
    columns = []
    for f, col in zip(table.schema, table.columns):
        if pa.types.is_fixed_size_list(f.type):
            col = col.cast(pa.list_(f.type.value_type))
        columns.append(col)
    return pa.Table.from_arrays(columns, names=table.column_names)


class Lake:
    """One process's connection to the lake. Thread-safe: every call uses its own DuckDB cursor."""

    def __init__(self, location: LakeLocation, *, max_attempts: int = 30, max_backoff_s: float = 5.0):
        self.location = location
        self.max_attempts = max_attempts
        self.max_backoff_s = max_backoff_s
        self.spool_file_bytes = SPOOL_FILE_BYTES
        self._lock = threading.RLock()
        self._db: duckdb.DuckDBPyConnection | None = None
        self._pid: int | None = None
        self._views: dict[str, dict[str, int]] = {}
        self._views_snapshot: int | None = None
        self._local = threading.local()

    # -- connections --------------------------------------------------------------
    def _root(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._db is None or self._pid != os.getpid():  # a forked child opens its own
                db = duckdb.connect()
                last = None
                for attempt in range(self.max_attempts):
                    try:
                        for statement in self.location.setup_sql():
                            db.execute(statement)
                        break
                    except duckdb.Error as exc:  # a fresh catalog being created by another process
                        last = exc
                        if not _is_retryable(exc) and "no such table" not in str(exc).lower():
                            raise LakeError(f"could not open the lake (catalog {self._safe_catalog()}, data "
                                            f"{self.location.data_path}): {exc}") from exc
                        self._backoff(attempt)
                else:
                    raise LakeError(f"could not open the lake {self._safe_catalog()}: {last}") from last
                db.execute(f"USE {ALIAS}")
                self._db, self._pid, self._views, self._views_snapshot = db, os.getpid(), {}, None
            return self._db

    @property
    def safe_catalog_url(self) -> str:
        """The catalog URL without its password (for logs and metadata)."""
        return self._safe_catalog()

    def _safe_catalog(self) -> str:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.location.catalog_url)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor whose unqualified names find the vector views first, then the lake's tables."""
        root = self._root()
        self._refresh_views(root)
        cur = root.cursor()
        cur.execute(f"USE {ALIAS}")
        cur.execute(f"SET search_path = 'memory.main,{ALIAS}.main'")
        return cur

    def _reader(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor for one-shot reads (set up once: a new cursor costs several catalog reads)."""
        root = self._root()
        local = self._local
        if getattr(local, "cursor", None) is None or local.root is not root:
            local.cursor, local.root = self._cursor(), root
        else:
            self._refresh_views(root)
        return local.cursor

    def _refresh_views(self, root: duckdb.DuckDBPyConnection) -> None:
        """Keep one ``memory.main`` view per table with vectors, casting them back to FLOAT[dim]."""
        with self._lock:
            cur = root.cursor()
            try:
                snapshot = cur.execute(f"select id from {ALIAS}.current_snapshot()").fetchone()[0]
                if snapshot == self._views_snapshot:
                    return  # nothing committed since the views were made
                rows = cur.execute(
                    "select table_name, column_name, comment from duckdb_columns() "
                    "where database_name = ? and schema_name = 'main' and comment like 'FLOAT[%'", [ALIAS]).fetchall()
                wanted: dict[str, dict[str, int]] = {}
                for table, column, comment in rows:
                    if m := VECTOR_COMMENT.match(comment or ""):
                        wanted.setdefault(table, {})[column] = int(m.group(1))
                self._views_snapshot = snapshot
                if wanted == self._views:
                    return
                for table in set(self._views) - set(wanted):
                    cur.execute(f"DROP VIEW IF EXISTS memory.main.{quote_ident(table)}")
                for table, dims in wanted.items():
                    casts = ", ".join(f"CAST({quote_ident(c)} AS FLOAT[{d}]) AS {quote_ident(c)}" for c, d in dims.items())
                    cur.execute(f"CREATE OR REPLACE VIEW memory.main.{quote_ident(table)} AS "
                                f"SELECT * REPLACE ({casts}) FROM {ALIAS}.main.{quote_ident(table)}")
                self._views = wanted
            finally:
                cur.close()

    def shell_statements(self) -> list[str]:
        """SQL that gives a DuckDB shell the same view of the lake as ``sql()`` (for ``make sql``)."""
        root = self._root()
        self._refresh_views(root)
        views = [r[0] for r in root.execute("select sql from duckdb_views() where database_name = 'memory' "
                                             "and schema_name = 'main' and not internal").fetchall()]
        views = [v.replace("CREATE VIEW ", "CREATE OR REPLACE VIEW memory.main.", 1) for v in views]
        return [*self.location.setup_sql(), f"USE {ALIAS}", *views,
                f"SET search_path = 'memory.main,{ALIAS}.main'"]

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None
            self._local = threading.local()

    def _backoff(self, attempt: int) -> None:
        time.sleep(min(self.max_backoff_s, 0.02 * 2 ** min(attempt, 8)) * (0.5 + random.random()))

    # -- reads --------------------------------------------------------------------
    def sql(self, query: str, params=None) -> pd.DataFrame:
        """Run a query; tables are named after their asset. Vectors come back as numpy arrays."""
        return self.arrow(query, params).to_pandas()

    def arrow(self, query: str, params=None) -> pa.Table:
        return self._reader().execute(query, params).to_arrow_table()

    def batches(self, query: str, params=None, batch_size: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Stream a query's result as Arrow record batches (memory stays at about one batch)."""
        cur = self._cursor()
        try:
            reader = cur.execute(query, params).fetch_record_batch(batch_size)
            yield from reader
        finally:
            cur.close()

    def has_table(self, table: str) -> bool:
        return bool(self._reader().execute("select count(*) from duckdb_tables() where database_name = ? "
                                           "and schema_name = 'main' and table_name = ?", [ALIAS, table]).fetchall()[0][0])

    def tables(self) -> list[str]:
        return [r[0] for r in self._reader().execute("select table_name from duckdb_tables() where database_name = ? "
                                                     "and schema_name = 'main' order by 1", [ALIAS]).fetchall()]

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, type) of a table as queries see it (vectors as FLOAT[dim])."""
        rows = self._reader().execute(f"select column_name, column_type from (describe {quote_ident(table)})").fetchall()
        return [(r[0], r[1]) for r in rows]

    def partitions(self, table: str) -> list[str]:
        """The partition keys that hold rows."""
        if not self.has_table(table) or PARTITION_COLUMN not in dict(self.columns(table)):
            return []
        return self.sql(f"select distinct {PARTITION_COLUMN} k from {quote_ident(table)} "
                        f"where {PARTITION_COLUMN} is not null order by 1")["k"].tolist()

    def read_partition(self, table: str, partition_key: str | None, columns: list[str] | None = None) -> pd.DataFrame:
        """What is stored for one partition (the whole table when ``partition_key`` is None); empty if nothing."""
        if not self.has_table(table):
            return pd.DataFrame(columns=columns) if columns else pd.DataFrame()
        have = [c for c, _ in self.columns(table)]
        select = ", ".join(quote_ident(c) for c in (columns or have) if c != PARTITION_COLUMN)
        if partition_key is None:
            return self.sql(f"select {select} from {quote_ident(table)}")
        if PARTITION_COLUMN not in have:
            return self.sql(f"select {select} from {quote_ident(table)} limit 0")
        return self.sql(f"select {select} from {quote_ident(table)} where {PARTITION_COLUMN} = ?", [partition_key])

    def snapshots(self) -> pd.DataFrame:
        """Every snapshot (commit): id, time, what changed, and the message this module wrote."""
        return self.sql(f"select * from {ALIAS}.snapshots() order by snapshot_id")

    def current_snapshot(self) -> int:
        return int(self.sql(f"select id from {ALIAS}.current_snapshot()")["id"][0])

    # -- writes -------------------------------------------------------------------
    def replace_partition(self, table: str, partition_key: str, df: pd.DataFrame | pa.Table) -> int:
        """Replace one partition's rows in one transaction; returns the snapshot id of the commit."""
        if not partition_key:
            raise LakeError(f"table {table!r}: replace_partition needs a partition key (use replace_table)")
        incoming = self._incoming(table, df)
        keys = pa.array([str(partition_key)] * incoming.num_rows, type=pa.string())
        if PARTITION_COLUMN in incoming.column_names:
            incoming = incoming.drop_columns([PARTITION_COLUMN])
        incoming = incoming.append_column(PARTITION_COLUMN, keys)
        return self._write(table, incoming, str(partition_key))

    def replace_table(self, table: str, df: pd.DataFrame | pa.Table) -> int:
        """Replace a whole (unpartitioned) table in one transaction; returns the snapshot id of the commit."""
        return self._write(table, self._incoming(table, df), None)

    def _incoming(self, table: str, df) -> pa.Table:
        if not TABLE_NAME.match(table or ""):
            raise LakeError(f"table name {table!r}: use letters, digits and underscores (an asset name)")
        if isinstance(df, pa.Table):
            return df
        if not isinstance(df, pd.DataFrame):
            raise LakeError(f"table {table!r}: expected a pandas DataFrame, got {type(df).__name__}")
        if len(set(map(str, df.columns))) != len(df.columns):
            raise LakeError(f"table {table!r}: duplicate column names {sorted(map(str, df.columns))}")
        return dataframe_to_arrow(df)

    def replace_table_batches(self, table: str, batches: Iterable, partition_key: str | None = None,
                              schema: pa.Schema | None = None) -> StreamedWrite:
        """Replace a partition (or the whole table when ``partition_key`` is None) with a stream of batches
        (pyarrow RecordBatch/Table or pandas DataFrame), in one transaction, with memory of about one batch.

        The batches are first spooled to local temporary Parquet files (zstd; TMPDIR), then inserted from them in one
        transaction (one INSERT per file of about ``SPOOL_FILE_BYTES``), exactly as ``replace_partition``/``replace_table`` do with a frame: the table is created or
        evolved from the stream's schema (the first batch's, or ``schema``), the old rows go only at COMMIT. A stream
        cannot be replayed, so the spool is what a retry after a conflict reads; an exception raised by the
        iterator (or a batch whose columns do not fit the first one's) happens before the transaction starts, so
        the previous version stays as it was. Every batch is cast to the first non-empty batch's schema (an all-null column
        takes the first batch's type, so pass ``schema`` when a first batch may hold a column of nulls only). No
        batches and no ``schema``: the partition is emptied (the table keeps its
        columns); for a table that does not exist yet that is an error, since there is no schema to create it with.
        """
        if not TABLE_NAME.match(table or ""):
            raise LakeError(f"table name {table!r}: use letters, digits and underscores (an asset name)")
        import pyarrow.parquet as pq

        partition = None if partition_key is None else str(partition_key)
        if partition_key is not None and not partition:
            raise LakeError(f"table {table!r}: replace_table_batches needs a non-empty partition key (or None)")
        with tempfile.TemporaryDirectory(prefix="finsec-spool-") as folder:
            paths: list[str] = []
            writer, target, dims, rows, nulls, in_file, first_empty = None, None, {}, 0, {}, 0, None
            try:
                for n, batch in enumerate(batches):
                    data = self._batch_table(table, batch, partition)
                    if target is None and schema is None and not data.num_rows:
                        first_empty = data if first_empty is None else first_empty  # its types may be guesses
                        continue
                    if target is None:
                        target = self._stream_schema(table, schema, data, partition)
                        dims = {f.name: f.type.list_size for f in target if pa.types.is_fixed_size_list(f.type)}
                        nulls = dict.fromkeys(target.names, 0)
                    data = self._conform(table, data, target, n)
                    for name in target.names:
                        nulls[name] += data.column(name).null_count
                    rows += data.num_rows
                    if not data.num_rows:
                        continue
                    if writer is None or in_file >= self.spool_file_bytes:
                        if writer is not None:
                            writer.close()
                        paths.append(os.path.join(folder, f"{table}-{len(paths):06d}.parquet"))
                        writer, in_file = pq.ParquetWriter(paths[-1], _as_lists(target.empty_table()).schema,
                                                           compression="zstd"), 0
                    writer.write_table(_as_lists(data))
                    in_file += data.nbytes
                if target is None and (schema is not None or first_empty is not None):
                    target = self._stream_schema(table, schema, first_empty, partition)
                    dims = {f.name: f.type.list_size for f in target if pa.types.is_fixed_size_list(f.type)}
                    nulls = dict.fromkeys(target.names, 0)
            finally:
                if writer is not None:
                    writer.close()
            if target is None:
                if not self.has_table(table):
                    raise LakeError(f"table {table!r}: the stream had no batches and no schema was given, so there is "
                                    "nothing to create the table from")
                target = pa.schema([])  # keep the stored columns; only the partition's rows (or all rows) go
            all_null = {name for name, count in nulls.items() if count == rows}
            relations = [f"read_parquet({sql_literal(path)})" for path in paths]
            snapshot = self._write(table, None, partition, source=(relations, _as_lists(target.empty_table()).schema,
                                                                   all_null, rows, dims))
        return StreamedWrite(snapshot, rows)

    def _batch_table(self, table: str, batch, partition: str | None) -> pa.Table:
        if isinstance(batch, pa.RecordBatch):
            data = pa.Table.from_batches([batch])
        else:
            data = self._incoming(table, batch)
        if len(set(data.column_names)) != len(data.column_names):
            raise LakeError(f"table {table!r}: duplicate column names {sorted(data.column_names)}")
        if partition is not None:
            if PARTITION_COLUMN in data.column_names:
                data = data.drop_columns([PARTITION_COLUMN])
            data = data.append_column(PARTITION_COLUMN, pa.array([partition] * data.num_rows, type=pa.string()))
        return data

    @staticmethod
    def _stream_schema(table: str, schema: pa.Schema | None, first: pa.Table | None, partition: str | None) -> pa.Schema:
        if schema is None:
            return first.schema
        if partition is not None and PARTITION_COLUMN not in schema.names:
            schema = schema.append(pa.field(PARTITION_COLUMN, pa.string()))
        return schema

    @staticmethod
    def _conform(table: str, data: pa.Table, target: pa.Schema, n: int) -> pa.Table:
        """A batch with the stream's columns and types (the first batch's, or the schema given)."""
        if set(data.column_names) != set(target.names):
            raise LakeError(f"table {table!r}: batch {n} has columns {sorted(data.column_names)}, the stream "
                            f"{sorted(target.names)}")
        data = data.select(target.names)
        if data.schema.equals(target):
            return data
        columns = []
        for field, column in zip(target, data.columns):
            if not column.type.equals(field.type):
                try:
                    column = column.cast(field.type) if column.null_count < len(column) else pa.nulls(len(column), field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise LakeError(f"table {table!r}: column {field.name!r} of batch {n} is {column.type}, the stream's "
                                    f"is {field.type}: {exc}") from exc
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=target)

    def _write(self, table: str, incoming: pa.Table | None, partition_key: str | None, source=None) -> int:
        """One transaction, retried from the start on conflicts: ``incoming`` (an Arrow table in memory), or
        ``source``: (a SQL relation such as read_parquet(spool), its schema, columns all null, rows, vector dims)."""
        tag = uuid.uuid4().hex
        if source is None:
            dims = _vector_dims(incoming)
            stored = _as_lists(incoming)
            relations, schema, rows = ["_incoming"], stored.schema, stored.num_rows
            all_null = {f.name for f, c in zip(stored.schema, stored.columns) if c.null_count == stored.num_rows}
        else:
            relations, schema, all_null, rows, dims = source
            stored = None
        what = f"partition {partition_key}" if partition_key else "table"
        last: Exception | None = None
        for attempt in range(self.max_attempts):
            cur = self._root().cursor()
            try:
                cur.execute(f"USE {ALIAS}")
                if stored is not None:
                    cur.register("_incoming", stored)
                cur.execute("BEGIN TRANSACTION")
                cur.execute(f"CALL {ALIAS}.set_commit_message('finsec', ?, extra_info => ?)",
                            [f"replace {table} {what}", tag])
                self._write_in_transaction(cur, table, schema, all_null, rows, relations, dims, partition_key)
                cur.execute("COMMIT")
                return self._snapshot_of(cur, tag)
            except (duckdb.Error, LakeError) as exc:
                last = exc
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                if isinstance(exc, LakeError) or not _is_retryable(exc):
                    raise exc if isinstance(exc, LakeError) else LakeError(
                        f"writing {what} of table {table!r} failed: {exc}") from exc
                self._backoff(attempt)
            finally:
                cur.close()
        raise LakeError(f"writing {what} of table {table!r}: still conflicting after {self.max_attempts} attempts: {last}")

    def _write_in_transaction(self, cur, table: str, schema: pa.Schema, all_null: set[str], rows: int, relations: list[str],
                              dims: dict[str, int], partition_key) -> None:
        name = f"{ALIAS}.main.{quote_ident(table)}"
        exists = cur.execute("select count(*) from duckdb_tables() where database_name = ? and schema_name = 'main' "
                             "and table_name = ?", [ALIAS, table]).fetchone()[0]
        if partition_key is None and exists and len(schema):
            # A corpus table is replaced whole; its schema is the new frame's (old versions stay readable).
            cur.execute(f"DROP TABLE {name}")
            exists = False
        if not exists:
            cols = ", ".join(f"{quote_ident(f.name)} {_ddl_type(f.type)}" for f in schema)
            cur.execute(f"CREATE TABLE {name} ({cols})")
            if partition_key is not None:
                cur.execute(f"ALTER TABLE {name} SET PARTITIONED BY ({quote_ident(PARTITION_COLUMN)})")
            existing: dict[str, str] = {}
        else:
            existing = dict(cur.execute(f"select column_name, column_type from (describe {name})").fetchall())
            self._evolve(cur, table, name, schema, all_null, existing, partition_key)
            existing = dict(cur.execute(f"select column_name, column_type from (describe {name})").fetchall())
        comments = dict(cur.execute("select column_name, comment from duckdb_columns() where database_name = ? "
                                    "and schema_name = 'main' and table_name = ?", [ALIAS, table]).fetchall())
        for column, dim in dims.items():
            if comments.get(column) != f"FLOAT[{dim}]":
                cur.execute(f"COMMENT ON COLUMN {name}.{quote_ident(column)} IS {sql_literal(f'FLOAT[{dim}]')}")
        if partition_key is not None and exists:
            cur.execute(f"DELETE FROM {name} WHERE {quote_ident(PARTITION_COLUMN)} = ?", [partition_key])
        elif exists and not len(schema):  # an empty stream into an existing table: it keeps its columns, no rows
            cur.execute(f"DELETE FROM {name}")
        if rows:
            select = ", ".join(
                f"CAST({quote_ident(f.name)} AS {existing[f.name]}) AS {quote_ident(f.name)}" if f.name in existing
                else quote_ident(f.name) for f in schema)
            for relation in relations:  # one INSERT per spool file: DuckDB holds what one statement inserts
                cur.execute(f"INSERT INTO {name} BY NAME SELECT {select} FROM {relation}")

    def _evolve(self, cur, table: str, name: str, schema: pa.Schema, all_null: set[str], existing: dict[str, str],
                partition_key) -> None:
        """New columns are added; a column whose stored values are all null takes the new type; numbers widen
        (INTEGER to BIGINT to DOUBLE, never rounded into the narrower type); other changes fail naming the column."""
        for field in schema:
            new_type = _ddl_type(field.type)
            old_type = existing.get(field.name)
            column = quote_ident(field.name)
            if old_type is None:
                cur.execute(f"ALTER TABLE {name} ADD COLUMN {column} {new_type}")
                continue
            if old_type == new_type or field.name in all_null:
                continue  # same type, or nothing to store: keep the table's
            others = f"WHERE {quote_ident(PARTITION_COLUMN)} IS DISTINCT FROM ?" if partition_key is not None else ""
            stored = cur.execute(f"select count({column}) from {name} {others}",
                                 [partition_key] if others else []).fetchone()[0]
            if stored == 0:  # the old type was a guess from empty or all-null partitions
                cur.execute(f"ALTER TABLE {name} DROP COLUMN {column}")
                cur.execute(f"ALTER TABLE {name} ADD COLUMN {column} {new_type}")
                continue
            wider = _common_type(old_type, new_type)
            problem = None
            if wider is None:
                problem = "the two types have no common type"
            elif wider != old_type:
                try:
                    cur.execute(f"ALTER TABLE {name} ALTER COLUMN {column} SET DATA TYPE {wider}")
                except duckdb.Error as exc:
                    problem = f"the lake cannot widen it to {wider} ({exc})"
            if problem:
                raise LakeError(f"table {table!r}: column {field.name!r} is stored as {old_type} but the new data is "
                                f"{new_type}: {problem}. Convert the column in the asset, rename it, or rebuild the table.")

    def _snapshot_of(self, cur, tag: str) -> int:
        """The snapshot this write committed: the last one this database committed, checked against the write's
        tag (another thread may have committed since), else looked up by tag."""
        last = cur.execute(f"select * from {ALIAS}.last_committed_snapshot()").fetchone()
        if last and last[0] is not None:
            mine = cur.execute(f"select commit_extra_info from __ducklake_metadata_{ALIAS}.ducklake_snapshot_changes "
                               "where snapshot_id = ?", [last[0]]).fetchone()
            if mine and mine[0] == tag:
                return int(last[0])
        row = cur.execute(f"select max(snapshot_id) from {ALIAS}.snapshots() where commit_extra_info = ?", [tag]).fetchone()
        if row is None or row[0] is None:  # nothing changed (an empty partition stays empty): no new snapshot
            return int(cur.execute(f"select id from {ALIAS}.current_snapshot()").fetchone()[0])
        return int(row[0])

    # -- maintenance -------------------------------------------------------------------
    def flush_inlined_data(self) -> None:
        """Small writes are kept in the catalog (DuckLake's data inlining); this moves them to Parquet files."""
        self._call(f"CALL ducklake_flush_inlined_data({sql_literal(ALIAS)})")

    def merge_adjacent_files(self) -> None:
        """Merge small Parquet files (time travel keeps working)."""
        self._call(f"CALL ducklake_merge_adjacent_files({sql_literal(ALIAS)})")

    def expire_snapshots(self, older_than_days: float) -> int:
        """Forget snapshots older than N days; returns how many went. Their files are removed by cleanup_files."""
        before = len(self.snapshots())
        self._call(f"CALL ducklake_expire_snapshots({sql_literal(ALIAS)}, "
                   f"older_than => now() - INTERVAL '{float(older_than_days) * 86400:.0f} seconds')")
        return before - len(self.snapshots())

    def cleanup_files(self, older_than_days: float = 0.0) -> int:
        """Delete files no snapshot needs any more, and orphans of killed writers; returns how many."""
        interval = f"now() - INTERVAL '{float(older_than_days) * 86400:.0f} seconds'"
        n = 0
        for fn in ("ducklake_cleanup_old_files", "ducklake_delete_orphaned_files"):
            out = self._call(f"CALL {fn}({sql_literal(ALIAS)}, older_than => {interval})")
            n += len(out)
        return n

    def live_files(self) -> dict:
        """Data files the current snapshot reads: count and bytes (from DuckLake's own catalog tables)."""
        row = self.sql(f"select count(*) n, coalesce(sum(file_size_bytes), 0) b from __ducklake_metadata_{ALIAS}."
                       "ducklake_data_file where end_snapshot is null").iloc[0]
        return {"files": int(row["n"]), "bytes": int(row["b"])}

    def maintain(self, keep_snapshots_days: float, delete_files_older_than_days: float = 1.0,
                 merge_small_files: bool = True) -> dict:
        """Write inlined rows out, merge small files, expire old snapshots, delete files nothing needs; returns
        what changed. Files younger than ``delete_files_older_than_days`` are kept: a running query or a writer
        that has not committed yet may still need them."""
        if keep_snapshots_days < 0 or delete_files_older_than_days < 0:
            raise LakeError("lake maintenance: keep_snapshots_days and delete_files_older_than_days must be >= 0")
        before = self.live_files()
        snapshots_before = len(self.snapshots())
        if merge_small_files:
            self.flush_inlined_data()
            self.merge_adjacent_files()
        expired = self.expire_snapshots(keep_snapshots_days)
        deleted = self.cleanup_files(delete_files_older_than_days)
        after = self.live_files()
        return {"files_before": before["files"], "files_after": after["files"], "bytes_after": after["bytes"],
                "snapshots_before": snapshots_before, "snapshots_expired": expired, "files_deleted": deleted}

    def _call(self, statement: str) -> pd.DataFrame:
        last = None
        for attempt in range(self.max_attempts):
            cur = self._cursor()
            try:
                result = cur.execute(statement)
                return result.df() if result.description else pd.DataFrame()
            except duckdb.Error as exc:
                last = exc
                if not _is_retryable(exc):
                    raise LakeError(f"{statement}: {exc}") from exc
                self._backoff(attempt)
            finally:
                cur.close()
        raise LakeError(f"{statement}: still conflicting after {self.max_attempts} attempts: {last}")

    def data_files(self, table: str) -> pd.DataFrame:
        """The Parquet files a table's current snapshot reads."""
        return self.sql(f"select * from ducklake_list_files({sql_literal(ALIAS)}, ?)", [table])


_OPEN: dict[LakeLocation, Lake] = {}
_OPEN_LOCK = threading.Lock()


def open_lake(settings=None) -> Lake:
    """This process's Lake for the settings' catalog and object store (``Settings.from_env()`` when None)."""
    if settings is None:
        from ..settings import Settings

        settings = Settings.from_env()
    location = location_from_settings(settings)
    with _OPEN_LOCK:
        lake = _OPEN.get(location)
        if lake is None:
            lake = _OPEN[location] = Lake(location)
        return lake
