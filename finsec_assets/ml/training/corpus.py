"""The training corpus: ``filing_sections`` rows as one Parquet file, and held-out splits by filing.

The corpus is written from the lake in streamed record batches (:func:`corpus_query` selects
only the columns and sections a run needs, :func:`corpus_batches` runs it one quarter at a time,
:func:`write_corpus_batches` writes them batch by batch), so building it never holds every quarter
in memory. The entry points read it from a
local path or the object store, so the same command runs on a laptop or in a pod that cannot see
the Dagster process's disk. Splits are by filing, never by row, so no filing contributes text to
both sides.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .config import TrainingInputError

CORPUS_COLUMNS = ("accession", "cik", "form", "filing_date", "item", "text")
MDNA_ITEMS = ("7", "I-2")  # MD&A: item 7 of a 10-K, Part I item 2 of a 10-Q


def _storage_options(uri: str) -> dict | None:
    if not uri.startswith("s3://"):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return {"endpoint_url": endpoint} if endpoint else {}


@dataclasses.dataclass(frozen=True)
class CorpusFile:
    """A corpus Parquet file written from streamed batches."""

    path: Path
    rows: int
    sha256: str  # of the file's bytes (the object-store key is derived from it)
    quarter_versions: dict  # filing quarter (2024Q1) -> content hash of its rows


def corpus_query(table: str = "filing_sections", *, items: Sequence[str] = (), ciks: Sequence[int] = (),
                 partition_key: str | None = None) -> tuple[str, list]:
    """SQL (and parameters) selecting the corpus columns of non-empty sections, only ``items`` and
    ``ciks`` when given, only one quarter when ``partition_key`` is given (a literal, so the lake prunes
    the other quarters' files). The filters and the projection are pushed down to the Parquet files of
    the lake; there is no ``order by``, so the result streams without a sort holding it all (the
    versions computed from it do not depend on row order)."""
    where, params = ["coalesce(trim(text), '') <> ''"], []
    if partition_key is not None:
        where.append(f"partition_key = '{str(partition_key).replace(chr(39), chr(39) * 2)}'")
    if items:
        where.append(f"cast(item as varchar) in ({', '.join('?' for _ in items)})")
        params += [str(i) for i in items]
    if ciks:
        where.append(f"cast(cik as bigint) in ({', '.join('?' for _ in ciks)})")
        params += [int(c) for c in ciks]
    query = (
        "select cast(accession as varchar) as accession, cast(cik as bigint) as cik, cast(form as varchar) as form, "
        "strftime(cast(filing_date as date), '%Y-%m-%d') as filing_date, cast(item as varchar) as item, "
        "cast(text as varchar) as text, md5(concat_ws(chr(31), accession, item, coalesce(text, ''))) as row_md5 "
        f"from {table} where {' and '.join(where)}"
    )
    return query, params


def corpus_batches(lake, table: str = "filing_sections", *, items: Sequence[str] = (), ciks: Sequence[int] = (),
                   batch_size: int = 64) -> Iterator:
    """The corpus rows of every quarter of ``table`` in ``lake`` (a :class:`finsec_assets.storage.lake.Lake`) as
    Arrow record batches, one quarter's query at a time.

    One query over every quarter held all their text at once: with DuckDB 1.5.5 the whole result of such a
    query was in memory before its first batch arrived (measured: +200 MB for 150 MB of text at 10x rows,
    with DuckDB's buffer manager reporting ~0 MB, so likely its read-ahead budget not counting long strings;
    neither threads=1, memory_limit nor streaming_buffer_size changed it). Peak memory went 1.7x for 10x the
    rows. Per quarter the peak is the largest quarter's rows, whatever the number of quarters (1.09x).
    """
    keys = lake.partitions(table)
    for key in keys or [None]:
        query, params = corpus_query(table, items=items, ciks=ciks, partition_key=key)
        yield from lake.batches(query, params, batch_size=batch_size)


def _quarter(filing_date: str) -> str:
    year, month = filing_date[:4], int(filing_date[5:7])
    return f"{year}Q{(month - 1) // 3 + 1}"


def write_corpus_batches(batches: Iterable, path: str | os.PathLike) -> CorpusFile:
    """Write Arrow record batches of corpus rows (as :func:`corpus_query` selects them) to one Parquet
    file, a row group per batch, hashing each filing quarter's rows on the way (a sum of row hashes,
    so the version does not depend on the order rows arrive in); memory stays at about one batch.
    Written to a temporary name and renamed, so ``path`` is whole or absent."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pa.schema([("accession", pa.string()), ("cik", pa.int64()), ("form", pa.string()),
                        ("filing_date", pa.string()), ("item", pa.string()), ("text", pa.string())])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    quarters: dict = {}
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for batch in batches:
                raw = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
                _check_corpus_columns(raw.schema, "query result")
                columns = []
                for field in schema:
                    col = raw.column(field.name).cast(field.type)
                    columns.append(pc.fill_null(col, "") if pa.types.is_string(field.type) else col)
                table = pa.Table.from_arrays(columns, schema=schema)
                if "row_md5" in raw.column_names:  # hashed by the query: no Python copy of the text
                    hashes = raw.column("row_md5").to_pylist()
                else:
                    hashes = [hashlib.md5(f"{a}\x1f{i}\x1f{t}".encode()).hexdigest() for a, i, t in
                              zip(*(table.column(c).to_pylist() for c in ("accession", "item", "text")))]
                for row, date in zip(hashes, table.column("filing_date").to_pylist()):
                    quarter = _quarter(date)
                    quarters[quarter] = (quarters.get(quarter, 0) + int(row, 16)) % (1 << 128)
                writer.write_table(table)
                rows += table.num_rows
        digest = hashlib.sha256()
        with open(tmp, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return CorpusFile(path, rows, digest.hexdigest(), {q: f"{v:032x}"[:16] for q, v in sorted(quarters.items())})


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
    names = df.names if hasattr(df, "names") else df.columns  # an Arrow schema or a DataFrame
    missing = [c for c in CORPUS_COLUMNS if c not in names]
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
    """Content hash of the rows that train: accession, item and the SHA-256 of the text. A
    :func:`~.selection.corpus_index` carries ``text_sha256``, so it is hashed without any text in memory;
    a DataFrame with ``text`` gives the same hash."""
    digests = (df["text_sha256"] if "text_sha256" in df.columns
               else [hashlib.sha256(str(t).encode()).hexdigest() for t in df["text"]])
    h = hashlib.sha256()
    for acc, item, digest in sorted(zip(df["accession"], df["item"], digests)):
        h.update(f"{acc}\x1f{item}\x1f{digest}\x1e".encode())
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
