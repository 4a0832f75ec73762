"""The training corpus: ``filing_sections`` rows as one Parquet file, and held-out splits by filing.

The entry points read the corpus from a local path or the object store, so the same command
runs on a laptop or in a pod that cannot see the Dagster process's disk. Splits are by filing,
never by row, so no filing contributes text to both sides.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from .config import TrainingInputError

CORPUS_COLUMNS = ("accession", "cik", "form", "filing_date", "item", "text")
MDNA_ITEMS = ("7", "I-2")  # MD&A: item 7 of a 10-K, Part I item 2 of a 10-Q


def _storage_options(uri: str) -> dict | None:
    if not uri.startswith("s3://"):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"endpoint_url": endpoint} if endpoint else {}


def write_corpus(sections, path: str | os.PathLike) -> Path:
    """Write ``filing_sections`` rows as the Parquet training corpus the entry points read."""
    data = corpus_parquet_bytes(sections)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def corpus_parquet_bytes(sections) -> bytes:
    """The corpus columns of ``filing_sections``, sorted so equal content gives equal bytes."""
    import pandas as pd

    _check_corpus_columns(sections, "filing_sections")
    df = sections.loc[:, list(CORPUS_COLUMNS)].copy()
    df["cik"] = df["cik"].astype("int64")
    df["filing_date"] = pd.to_datetime(df["filing_date"]).dt.strftime("%Y-%m-%d")
    for col in ("accession", "form", "item", "text"):
        df[col] = df[col].fillna("").astype(str)
    df = df.sort_values(["accession", "item"], kind="stable").reset_index(drop=True)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _check_corpus_columns(df, where: str) -> None:
    missing = [c for c in CORPUS_COLUMNS if c not in df.columns]
    if missing:
        raise TrainingInputError(
            f"training corpus {where}: missing column(s) {missing}; expected filing_sections columns {list(CORPUS_COLUMNS)}"
        )


def read_corpus(uri: str | os.PathLike):
    """The training corpus (Parquet, local path, file:// or s3:// URI) minus empty sections."""
    import pandas as pd

    uri = str(uri)
    target = uri[len("file://"):] if uri.startswith("file://") else uri
    if "://" not in target and not Path(target).is_file():
        raise TrainingInputError(f"training corpus {uri!r} does not exist")
    try:
        df = pd.read_parquet(target, storage_options=_storage_options(target))
    except FileNotFoundError as exc:
        raise TrainingInputError(f"training corpus {uri!r} does not exist") from exc
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise TrainingInputError(f"training corpus {uri!r} is not a readable Parquet file: {exc}") from exc
    _check_corpus_columns(df, repr(uri))
    df = df[df["text"].fillna("").str.strip().str.len() > 0]
    return df.reset_index(drop=True)


def corpus_sha256(df) -> str:
    """Content hash of the rows that train: accession, item and text."""
    h = hashlib.sha256()
    for acc, item, text in sorted(zip(df["accession"], df["item"], df["text"])):
        h.update(f"{acc}\x1f{item}\x1f".encode())
        h.update(text.encode())
        h.update(b"\x1e")
    return h.hexdigest()


def split_by_filing(accessions: Iterable[str], eval_fraction: float, seed: int = 0) -> tuple[set[str], set[str]]:
    """Train and held-out filings. A filing is held out when its seeded hash falls below
    ``eval_fraction``, so adding filings never moves an existing one across the split; at
    least one filing lands on each side."""
    unique = sorted(set(accessions))
    if len(unique) < 2:
        raise TrainingInputError(
            f"held-out evaluation needs at least 2 filings, the corpus has {len(unique)} ({unique})"
        )
    if not 0 < eval_fraction < 1:
        raise TrainingInputError(f"eval_fraction={eval_fraction}: expected a share between 0 and 1")
    score = {a: int(hashlib.sha256(f"{seed}:{a}".encode()).hexdigest()[:13], 16) / 16**13 for a in unique}
    held = {a for a in unique if score[a] < eval_fraction}
    ranked = sorted(unique, key=score.get)
    if not held:
        held = {ranked[0]}
    if len(held) == len(unique):
        held.discard(ranked[-1])
    return set(unique) - held, held


def text_sample(texts: Sequence[str], max_chars: int):
    """The corpus's first ``max_chars`` characters, whole texts at a time (tokenizer training input)."""
    used = 0
    for t in texts:
        yield t
        used += len(t)
        if used >= max_chars:
            return
