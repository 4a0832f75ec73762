"""Shared Dagster pieces: quarter partitions, GPU tags, the finsec resource, the lake table IO manager."""


import base64
import io
import os
import warnings
from collections.abc import Iterable

import dagster as dg
import pandas as pd
from pydantic import PrivateAttr

from ..edgar.client import EdgarClient, rate_limiter
from ..edgar.ratelimit import RedisRateLimiter
from ..settings import Settings
from ..storage.lake import PARTITION_COLUMN, Lake, LakeError, open_lake, quote_ident, sql_literal
from ..storage.object_store import ObjectStore
from ..storage.tables import content_hash

# One partition per calendar quarter of the filing date, like EDGAR's full-index; key 2024-01-01 = 2024Q1.
quarter_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *", start="1993-01-01", fmt="%Y-%m-%d", end_offset=1
)

GPU_POOL = "gpu"
GPU_OP_TAGS = {
    "finsec/accelerator": "gpu",
    "dagster-celery/queue": "gpu",
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}},
        "pod_spec_config": {"node_selector": {"nvidia.com/gpu.present": "true"}},
    },
}


class FinsecResource(dg.ConfigurableResource):
    """Where data lives and how EDGAR is reached. Unset fields come from FINSEC_* environment variables."""

    home: str | None = None
    object_store_url: str | None = None
    edgar_source: str | None = None
    edgar_user_agent: str | None = None
    edgar_www_url: str | None = None
    edgar_data_url: str | None = None
    universe: str | None = None
    edgar_max_rps: float | None = None
    catalog_url: str | None = None

    _settings: "Settings | None" = PrivateAttr(default=None)
    _store: ObjectStore | None = PrivateAttr(default=None)
    _edgar: EdgarClient | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env(
                FINSEC_HOME=self.home, FINSEC_OBJECT_STORE_URL=self.object_store_url,
                FINSEC_EDGAR_SOURCE=self.edgar_source, FINSEC_EDGAR_USER_AGENT=self.edgar_user_agent,
                FINSEC_EDGAR_WWW_URL=self.edgar_www_url, FINSEC_EDGAR_DATA_URL=self.edgar_data_url,
                FINSEC_UNIVERSE=self.universe,
                FINSEC_EDGAR_MAX_RPS=None if self.edgar_max_rps is None else str(self.edgar_max_rps),
                FINSEC_CATALOG_URL=self.catalog_url,
            )
        return self._settings

    def setup_for_execution(self, context) -> None:
        self.settings()  # fail fast, before any step does work
        parse_step_workers()

    @property
    def home_path(self):
        return self.settings().home

    def object_store(self) -> ObjectStore:
        if self._store is None:
            self._store = ObjectStore(self.settings().object_store_url)
        return self._store

    def lake(self) -> Lake:
        """This process's connection to the lake (tables named after their assets)."""
        return open_lake(self.settings())

    def edgar(self, retries: int | None = None) -> EdgarClient:
        """The EDGAR client; in live mode every process on this machine shares one 10/s window (every host, through
        Redis, under FINSEC_EXECUTOR=celery/k8s or with FINSEC_EDGAR_RATE_LIMIT_URL).

        Sensors pass few ``retries``: a tick must finish within the daemon's timeout.
        """
        if self._edgar is None or retries is not None:
            s = self.settings()
            if s.edgar_rate_limit_url and s.edgar_source == "live" and 0 < s.edgar_max_rps <= 10:  # sample: no requests
                limiter = RedisRateLimiter(s.edgar_max_rps, s.edgar_rate_limit_url)
                limiter.ping()  # an unreachable Redis fails here, naming the URL, not mid-quarter
            else:  # above 10/s or unlimited only for a loopback replay (Settings and rate_limiter both check)
                limiter = rate_limiter(s.edgar_max_rps, s.home / "edgar-rate-limit.json", s.edgar_www_url, s.edgar_data_url)
            client = EdgarClient(
                source=s.edgar_source, www_url=s.edgar_www_url, data_url=s.edgar_data_url,
                user_agent=s.edgar_user_agent, cache=self.object_store(), limiter=limiter, max_rps=s.edgar_max_rps,
                bulk=s.edgar_bulk(len(s.universe)), **({"retries": retries} if retries is not None else {}),
            )
            if retries is not None:
                return client
            self._edgar = client
        return self._edgar


def column_schema(columns: list[tuple[str, str]]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])


def lake_table_metadata(lake: Lake, asset: str, partition: str | None, snapshot: int, rows: int) -> dict:
    """What a table asset's materialization says about its lake table (the IO manager's, and a streamed asset's)."""
    where = f" where {PARTITION_COLUMN} = '{partition}'" if partition else ""
    return {
        "dagster/row_count": rows,
        "dagster/column_schema": column_schema(lake.columns(asset)),
        "dagster/table_name": f"lake.{asset}",
        "lake/snapshot_id": snapshot,
        "lake/query": dg.MetadataValue.md(
            f"`make sql`, then `select * from {asset}{where} limit 10`; this version: "
            f"`select * from lake.{asset} AT (VERSION => {snapshot}){where}`"),
    }


class LakeIOManager(dg.ConfigurableIOManager):
    """Every table asset is a lake table named after it; a quarter's rows are replaced in one transaction.

    Quarter-partitioned tables get a ``partition_key`` column (the lake partitions on it); inputs are read
    back without it, exactly as the asset returned them."""

    finsec: FinsecResource

    def _partition(self, context) -> str | None:
        if not context.has_asset_partitions:
            return None
        keys = context.asset_partition_keys
        if len(keys) != 1:
            raise dg.Failure(f"{context.asset_key.to_user_string()}: one quarter per run, got {len(keys)} partitions")
        return keys[0]

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        asset = context.asset_key.path[-1]
        if not isinstance(obj, pd.DataFrame):
            raise dg.Failure(f"asset {asset!r}: a table asset must return a pandas DataFrame, got {type(obj).__name__}")
        lake = self.finsec.lake()
        partition = self._partition(context)
        try:
            snapshot = lake.replace_partition(asset, partition, obj) if partition else lake.replace_table(asset, obj)
        except LakeError as exc:
            raise dg.Failure(f"asset {asset!r}: {exc}") from exc
        context.add_output_metadata(lake_table_metadata(lake, asset, partition, snapshot, len(obj)))

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        asset = context.asset_key.path[-1]
        lake = self.finsec.lake()
        if not context.has_asset_partitions:
            return lake.read_partition(asset, None)
        keys = list(context.asset_partition_keys)
        if len(keys) == 1:
            return lake.read_partition(asset, keys[0])
        if not lake.has_table(asset):
            return pd.DataFrame()
        columns = ", ".join(quote_ident(c) for c, _ in lake.columns(asset) if c != PARTITION_COLUMN)
        wanted = ", ".join(sql_literal(k) for k in keys)  # literals, so the lake prunes files by partition
        return lake.sql(f"select {columns} from {quote_ident(asset)} where {PARTITION_COLUMN} in ({wanted}) "
                        f"order by {PARTITION_COLUMN}")


ParquetTableIOManager = LakeIOManager  # the name definitions.py used before the lake


def table_output(df: pd.DataFrame, metadata: dict | None = None) -> dg.Output:
    """A table with a content-derived data version, so unchanged reruns do not mark downstream stale."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.Output(df, metadata=metadata or {}, data_version=dg.DataVersion(content_hash(df)))


def md_list(items, limit: int = 100) -> dg.MetadataValue:
    """A bulleted list for the UI ("none" when empty), capped so metadata stays small."""
    items = list(items)
    more = f"\n- ... and {len(items) - limit} more" if len(items) > limit else ""
    return dg.MetadataValue.md("\n".join(f"- {x}" for x in items[:limit]) + more if items else "none")


def png_metadata(fig, title: str = "figure") -> dg.MetadataValue:
    """A matplotlib figure as an inline image in the Dagster UI."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})")


def figure(width: float = 6, height: float = 4):
    """A headless matplotlib figure and axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def source_version(*modules, data: Iterable[str | os.PathLike[str]] = (), packages: Iterable[str] = ()) -> str:
    """Every asset's code version: a short hash of the modules it uses, the data files it reads and the versions
    of the packages whose data it reads. Rows computed by the same code on the same data are reused; an edited
    module, word list or sample file changes the version, so Dagster marks the asset stale and reuse keys miss.

    ``data`` holds files or directories (every file below, in name order; names are hashed too).
    """
    import hashlib
    import inspect
    from importlib.metadata import version

    h = hashlib.sha256()
    for module in modules:
        h.update(module.__name__.encode())
        h.update(inspect.getsource(module).encode())
    for path in data:
        for name, digest in file_sha256(path).items():
            h.update(f"{name}\0{digest}\n".encode())
    for package in packages:
        h.update(f"{package}=={version(package)}\n".encode())
    return h.hexdigest()[:12]


def file_sha256(path: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of a file, or of every file under a directory (relative names -> digests, in name order)."""
    import hashlib
    from pathlib import Path

    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"data file {str(root)!r} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return {(p.name if p == root else p.relative_to(root).as_posix()): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def previous_partition(finsec: "FinsecResource", asset: str, partition_key: str | None) -> pd.DataFrame:
    """What this asset stored for this partition last time (empty if nothing), for incremental reruns."""
    return finsec.lake().read_partition(asset, partition_key)


def quarter_rows(lake, table: str, columns: list[str], partition_key: str, accessions: list[str],
                  where: str = "", params: list | None = None) -> pd.DataFrame:
    """One quarter's rows of ``table`` for these filings: the quarter as a literal (the lake prunes other quarters'
    files), the accessions as parameters, only ``columns``."""
    if not accessions or not lake.has_table(table):
        return pd.DataFrame(columns=columns)
    select = ", ".join(quote_ident(c) for c in columns)
    return lake.sql(f"select {select} from {quote_ident(table)} where {PARTITION_COLUMN} = {sql_literal(partition_key)} "
                    f"and accession in ({', '.join('?' for _ in accessions)}){where}", [*accessions, *(params or [])])


def kept_documents(lake, table: str, quarter: str, version: str, fresh: set) -> set:
    """(accession, document sha256) pairs of ``fresh`` whose rows ``table`` already holds for ``quarter`` from this
    ``version`` of the extractor: the keys only, not the rows, so an incremental step need not load the quarter."""
    if not lake.has_table(table) or not {"source_sha256", "extractor_version"} <= set(dict(lake.columns(table))):
        return set()
    keys = lake.sql(f"select distinct accession, source_sha256 from {quote_ident(table)} where {PARTITION_COLUMN} = "
                    f"{sql_literal(quarter)} and extractor_version = ?", [version])
    return {(a, s) for a, s in zip(keys["accession"], keys["source_sha256"]) if (a, s) in fresh}


def write_quarter_batches(lake, asset: str, quarter: str, batches, schema, pool=None):
    """A streamed asset's quarter through one lake transaction; a lake error fails the step naming the asset, and
    the step's process pool is shut down either way."""
    try:
        return lake.replace_table_batches(asset, batches, quarter, schema=schema)
    except LakeError as exc:
        raise dg.Failure(f"asset {asset!r}: {exc}") from exc
    finally:
        if pool is not None:
            pool.shutdown()


def text_sha256(texts) -> list[str]:
    import hashlib

    return [hashlib.sha256(str(t).encode()).hexdigest() for t in texts]


def reusable_rows(previous: pd.DataFrame, current: pd.DataFrame, keys: list[str], same: dict) -> tuple[pd.DataFrame, "np.ndarray"]:
    """Incremental reruns: the previous rows whose ``keys`` (including a content hash) match a current row and whose
    columns in ``same`` (code version, model, config hash ...) hold the given values, and a mask of the current
    rows still to compute."""
    import numpy as np

    if previous.empty or not set(keys) | set(same) <= set(previous.columns):
        return previous.iloc[0:0], np.ones(len(current), dtype=bool)
    wanted = set(map(tuple, current[keys].astype(str).to_numpy()))
    ok = np.array([tuple(row) in wanted for row in previous[keys].astype(str).to_numpy()], dtype=bool)
    for col, value in same.items():
        ok &= (previous[col] == value).to_numpy()
    reuse = previous[ok]
    done = set(map(tuple, reuse[keys].astype(str).to_numpy()))
    todo = np.array([tuple(row) not in done for row in current[keys].astype(str).to_numpy()], dtype=bool)
    return reuse, todo


STEP_WORKERS_VAR = "FINSEC_STEP_WORKERS"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_step_workers(env=None) -> int | None:
    """FINSEC_STEP_WORKERS: a positive number of processes, or unset/'auto' (None: chosen from the executor)."""
    env = os.environ if env is None else env
    raw = (env.get(STEP_WORKERS_VAR) or "").strip().lower()
    if raw in ("", "auto"):
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{STEP_WORKERS_VAR}={env.get(STEP_WORKERS_VAR)!r}: expected a positive whole number of "
                         "processes per step (or 'auto': all CPUs in process, CPUs / concurrent steps under the "
                         "multiprocess executor, 1 under celery and k8s)")
    return value


def step_workers(context=None, env=None) -> int:
    """How many processes a step may fork for its own work (filing_sections, xbrl_facts, nlp_scores).

    FINSEC_STEP_WORKERS when set; else every available CPU when the run executes in process (one step at a time),
    ``CPUs // max_concurrent`` under the multiprocess executor (several steps at once share the CPUs: 1 with
    its default max_concurrent, the CPU count), and 1 under Celery or k8s, whose workers and pods already run
    steps side by side (set FINSEC_STEP_WORKERS to a pod's CPU request there)."""
    from dagster._core.executor.in_process import InProcessExecutor
    from dagster._core.executor.multiprocess import MultiprocessExecutor

    explicit = parse_step_workers(env)
    if explicit is not None:
        return explicit
    import multiprocessing

    if multiprocessing.current_process().daemon:
        # A Celery prefork worker (or any daemonic process) cannot have children: a Celery step reports the
        # in-process executor it runs its one step with, so this is what tells it apart.
        return 1
    if ((env if env is not None else os.environ).get("FINSEC_EXECUTOR") or "").strip().lower() in ("celery", "k8s"):
        return 1
    cpus = available_cpus()
    executor = None
    if context is not None:
        step_context = getattr(getattr(context, "op_execution_context", context), "_step_execution_context", None)
        executor = getattr(step_context, "executor", None)
    if executor is None or isinstance(executor, InProcessExecutor):
        return cpus
    if isinstance(executor, MultiprocessExecutor):
        return max(1, cpus // max(1, int(getattr(executor, "_max_concurrent", cpus) or cpus)))
    return 1
