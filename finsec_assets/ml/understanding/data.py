"""The five dataset tables as this package reads them: column contract, company splits, subsets.

The tables are built by the ``*_dataset`` assets (see DATASETS.md's contract): every row has
``split`` (train / validation / test, assigned by company), ``cik``, ``accession`` and a unique
``id``. Training reads ``train``, model selection and the Optuna study read ``validation``, and
every reported figure is on ``test``: companies the model never saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")
COMMON_COLUMNS = ("split", "cik", "accession", "id")
TASK_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "ner": ("section", "text", "tokens", "token_starts", "tags"),
    "qa": ("question", "context", "answer_text", "answer_start", "is_impossible", "concept"),
    "relation": ("text", "head_start", "head_end", "tail_start", "tail_end", "tail_type", "label"),
    "classification": ("task", "text", "embedding", "label"),
    "summarization": ("document", "summary"),
}
DATASET_ASSETS = {task: f"{task}_dataset" for task in TASK_COLUMNS}


class DatasetError(ValueError):
    """A dataset table that does not follow the contract; the message names the table and the problem."""


def check_dataset(task: str, df: pd.DataFrame) -> pd.DataFrame:
    """The table, checked: required columns, known splits, unique ids, and no company in two splits."""
    if task not in TASK_COLUMNS:
        raise DatasetError(f"unknown task {task!r}; known: {sorted(TASK_COLUMNS)}")
    name = DATASET_ASSETS[task]
    if not isinstance(df, pd.DataFrame):
        raise DatasetError(f"{name}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in (*COMMON_COLUMNS, *TASK_COLUMNS[task]) if c not in df.columns]
    if missing:
        raise DatasetError(f"{name}: missing column(s) {missing}; has {sorted(df.columns)}")
    bad = sorted(set(df["split"].astype(str)) - set(SPLITS))
    if bad:
        raise DatasetError(f"{name}: unknown split value(s) {bad}; expected {list(SPLITS)}")
    if df["id"].duplicated().any():
        raise DatasetError(f"{name}: id is not unique ({int(df['id'].duplicated().sum())} duplicates, "
                           f"e.g. {df['id'][df['id'].duplicated()].iloc[0]!r})")
    leaked = company_overlap(df)
    if leaked:
        raise DatasetError(f"{name}: companies in more than one split (cik -> splits): {dict(list(leaked.items())[:5])}")
    return df


def company_overlap(df: pd.DataFrame) -> dict[int, list[str]]:
    """CIKs that appear in more than one split (must be none)."""
    per_cik = df.groupby("cik")["split"].agg(lambda s: sorted(set(s)))
    return {int(cik): splits for cik, splits in per_cik.items() if len(splits) > 1}


def split_frames(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {s: df[df["split"] == s].reset_index(drop=True) for s in SPLITS}


def stable_subset(df: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """At most ``n`` rows (0 = all), chosen by a hash of the row id: the same rows on every run and machine,
    whatever the table's order."""
    if not n or len(df) <= n:
        return df.reset_index(drop=True)
    keys = np.array([int(hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()[:12], 16) for i in df["id"].astype(str)])
    return df.iloc[np.sort(np.argsort(keys, kind="stable")[:n])].reset_index(drop=True)


def frame_sha256(df: pd.DataFrame) -> str:
    """Content hash of a table (row order included), for cache keys and checkpoint versions."""
    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df.map(_hashable), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _hashable(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return repr(list(np.asarray(value).tolist()))
    return value


def read_dataset(task: str, uri: str) -> pd.DataFrame:
    """A dataset table from a Parquet file or object-store URI, checked against the contract."""
    import io

    from ...storage.object_store import ObjectStore

    if "://" in uri and not uri.startswith("file://"):
        base, _, key = uri.rpartition("/")
        data = ObjectStore(base).get_bytes(key)
    else:
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise DatasetError(f"{DATASET_ASSETS.get(task, task)}: cannot read {uri!r}: {exc}") from exc
    return check_dataset(task, pd.read_parquet(io.BytesIO(data)))
