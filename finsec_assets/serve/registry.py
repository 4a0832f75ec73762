"""Where the graph publishes the models this service serves, and how to tell a new version landed.

Every read of the graph's storage goes through this module, so a change of layout is one edit here:

* checkpoints (``finetuned_checkpoint``): a checkpoint root ``checkpoints/<asset>/`` with
  ``versions/<v>/`` (complete marker last, ``manifest.json``) and a pointer naming the published version
  (``CheckpointStore`` of the training library);
* tables (``rating_models``, ``pooled_embeddings``): read through :func:`read_table_columns`, the one
  function that knows where tables live.

Each ``*_published`` function returns a :class:`Published` (or None when nothing is published) and is
cheap enough to call on every poll.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..ml.training import MANIFEST, CheckpointStore  # the training library's checkpoint layout
from ..settings import Settings
from ..storage.object_store import ObjectStore, ObjectStoreError
from ..storage.lake import PARTITION_COLUMN, open_lake


@dataclass(frozen=True)
class Published:
    """One published version of a model: what /v1/models lists and what a loader needs."""

    asset: str
    version: str
    published_at: str | None
    uri: str
    materialization: dict = field(default_factory=dict)  # how to find the Dagster materialization that made it
    detail: dict = field(default_factory=dict)


def object_store(settings: Settings) -> ObjectStore:
    return ObjectStore(settings.object_store_url)


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _modified(store: ObjectStore, key: str) -> str | None:
    try:
        info = store.fs.info(store._path(key))
    except (OSError, ValueError):
        return None
    return _iso(info.get("mtime") or info.get("LastModified") or info.get("last_modified"))


# -- checkpoints -----------------------------------------------------------------------------------


def checkpoint_published(settings: Settings, asset: str) -> Published | None:
    """The version the checkpoint root's pointer names, if it is complete."""
    store = object_store(settings)
    checkpoints = CheckpointStore(store.uri(f"checkpoints/{asset}"))
    version = checkpoints.latest()
    if not version or not checkpoints.is_published(version):
        return None
    try:
        manifest = checkpoints.read_manifest(version)
    except (ObjectStoreError, ValueError):
        manifest = {}
    materialization = {"data_version": version}
    if manifest.get("dagster_run_id"):
        materialization["run_id"] = manifest["dagster_run_id"]
    detail = {k: manifest[k] for k in ("kind", "company", "metrics", "code_version") if k in manifest}
    if "base" in manifest:
        detail["base"] = {k: manifest["base"].get(k) for k in ("name", "model_type", "parameters")}
    return Published(asset=asset, version=version, published_at=manifest.get("created_at"),
                     uri=checkpoints.version_uri(version), materialization=materialization, detail=detail)


def fetch_checkpoint(settings: Settings, published: Published) -> Path:
    """A local directory holding the published checkpoint (downloaded once into FINSEC_HOME/cache/serve)."""
    store = object_store(settings)
    if store.is_local:
        return store.local_path(published.uri)
    target = settings.home / "cache" / "serve" / published.asset / published.version
    if not (target / ".complete").is_file():
        store.get_dir(published.uri, target)
        (target / ".complete").write_text(published.uri)
    return target


# -- tables ----------------------------------------------------------------------------------------


def _last_write(settings: Settings, table: str):
    """(snapshot id, time) of the lake commit that last replaced any part of ``table``, or (None, None)."""
    lake = open_lake(settings)
    if not lake.has_table(table):
        return None, None
    row = lake.sql("select snapshot_id, snapshot_time from lake.snapshots() where commit_message like ? "
                   "order by snapshot_id desc limit 1", [f"replace {table} %"])
    if row.empty:
        return None, None
    return int(row["snapshot_id"][0]), str(row["snapshot_time"][0])


def read_table_columns(settings: Settings, table: str, columns: list[str] | None = None,
                       latest_partition_only: bool = False):
    """Rows of a table asset (``columns`` only): ``(DataFrame, signature)`` or ``(None, None)`` when none stored.

    The signature is the lake snapshot that last wrote the table, so a poll compares one catalog row instead of
    the rows. With ``latest_partition_only`` only the newest quarter is read.
    """
    snapshot, _ = _last_write(settings, table)
    if snapshot is None:
        return None, None
    lake = open_lake(settings)
    if latest_partition_only and PARTITION_COLUMN in [c for c, _ in lake.columns(table)]:
        partitions = lake.partitions(table)
        df = lake.read_partition(table, partitions[-1] if partitions else None, columns)
    else:
        df = lake.read_partition(table, None, columns)
    return df, f"snapshot-{snapshot}"


def table_modified(settings: Settings, table: str) -> str | None:
    return _last_write(settings, table)[1]


def rating_models_published(settings: Settings) -> Published | None:
    """The ``rating_models`` rows (one per variant x task, each pointing at a bundle in the object store)."""
    df, signature = read_table_columns(settings, "rating_models")
    if df is None or df.empty:
        return None
    from ..storage.tables import content_hash

    rows = df.to_dict("records")
    versions = sorted(f"{r['model_variant']}-{r['task']}-{r['model_version']}" for r in rows)
    return Published(
        asset="rating_models", version=hashlib.sha256(",".join(versions).encode()).hexdigest()[:12],
        published_at=table_modified(settings, "rating_models"), uri=f"lake:rating_models@{signature}",
        materialization={"data_version": content_hash(df)},
        detail={"models": versions, "rows": rows, "signature": signature},
    )


def read_bundle(settings: Settings, uri: str) -> dict:
    """A rating model bundle (JSON) that a ``rating_models`` row points at."""
    return json.loads(object_store(settings).get_bytes(uri))


# -- the embedding model ---------------------------------------------------------------------------


def embedder_version() -> str:
    """The embedding code's version, computed as the ``pooled_embeddings`` asset does (source of both modules)."""
    from ..ml import embeddings as embeddings_module
    from ..text import sentences as sentences_module

    h = hashlib.sha256()
    for module in (embeddings_module, sentences_module):
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:12]


_NEWEST_EMBEDDINGS: dict = {}


def _newest_embedding_rows(settings: Settings):
    """``model`` and ``embedder_version`` of the newest stored quarter, re-read only when the table changed."""
    snapshot, _ = _last_write(settings, "pooled_embeddings")
    if snapshot is None:
        return None
    if snapshot in _NEWEST_EMBEDDINGS:
        return _NEWEST_EMBEDDINGS[snapshot]
    df, _ = read_table_columns(settings, "pooled_embeddings", ["model", "embedder_version"], latest_partition_only=True)
    _NEWEST_EMBEDDINGS.clear()
    _NEWEST_EMBEDDINGS[snapshot] = df
    return df


def embedding_model_published(settings: Settings, override: str | None = None) -> Published:
    """The encoder ``pooled_embeddings`` uses: the model named by its newest stored quarter, else its default
    (the bundled all-MiniLM-L6-v2); ``override`` (FINSEC_SERVE_EMBEDDING_MODEL) wins."""
    from ..ml.embeddings import DEFAULT_MODEL_NAME

    model, source, stored_version = override, "FINSEC_SERVE_EMBEDDING_MODEL", None
    if model is None:
        df = _newest_embedding_rows(settings)
        if df is not None and len(df):
            counts = df["model"].value_counts()
            model = str(counts.index[0])
            stored_version = str(df.loc[df["model"] == model, "embedder_version"].iloc[0])
            source = "pooled_embeddings (newest stored quarter)"
        else:
            model, source = DEFAULT_MODEL_NAME, "pooled_embeddings default (nothing stored yet)"
    identity = model
    if model != DEFAULT_MODEL_NAME and Path(model).expanduser().is_dir():
        manifest = Path(model).expanduser() / MANIFEST
        if manifest.is_file():
            identity = json.loads(manifest.read_text()).get("version") or model
        else:
            config = Path(model).expanduser() / "config.json"
            if config.is_file():
                identity = hashlib.sha256(config.read_bytes()).hexdigest()[:12]
    code = embedder_version()
    version = f"{identity if identity != model else os.path.basename(model.rstrip('/'))}@{code}"
    return Published(asset="pooled_embeddings", version=version, published_at=table_modified(settings, "pooled_embeddings"),
                     uri=model, materialization={"embedder_version_stored": stored_version},
                     detail={"model": model, "chosen_by": source, "embedder_version": code})
