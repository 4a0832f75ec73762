"""Training and held-out token blocks from a corpus file of any size, in memory bounded by the blocks a run uses.

Reading the corpus whole (pandas), tokenising every section and packing all of it made the trainer's peak
grow with the corpus (1.5 GB at 100 filings, 2.4 GB at 1,000, while a demo run trains on 320 blocks). Here
the file is read in record batches, never whole: first an index (one small row per section: accession, cik,
item, length, a hash of the text), then only the texts of the sections chosen. Sections are chosen in the
order of a seeded hash of (accession, item), not in file order (which is quarter order), until their
characters cover the blocks a run asks for; so the choice is a stable sample of the whole corpus and a
bigger corpus changes which sections rank first, not how many are held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .config import TrainingInputError
from .corpus import CORPUS_COLUMNS, _check_corpus_columns, _storage_options
from .packing import pack_token_blocks, tokenize_documents

INDEX_BATCH_ROWS = 256
# a generous bound on characters per token (English WordPiece ~4.5, small byte-level BPE ~3.5): a budget of
# 6 characters per wanted token almost always covers the blocks in one read; a short read doubles the budget
CHARS_PER_TOKEN_BUDGET = 6.0


def _parquet_file(uri: str):
    import pyarrow.parquet as pq

    uri = str(uri)
    target = uri[len("file://"):] if uri.startswith("file://") else uri
    if "://" not in target:
        if not Path(target).is_file():
            raise TrainingInputError(f"training corpus {uri!r} does not exist")
        source = target
    else:
        import fsspec

        source = fsspec.open(target, "rb", **(_storage_options(target) or {})).open()
    try:  # a buffered stream reads a column chunk page by page, not a whole row group's text at once
        return pq.ParquetFile(source, buffer_size=1 << 20, pre_buffer=False)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise TrainingInputError(f"training corpus {uri!r} is not a readable Parquet file: {exc}") from exc


def _batches(uri: str, columns: Sequence[str], batch_rows: int) -> Iterator:
    pf = _parquet_file(uri)
    _check_corpus_columns(pf.schema_arrow, repr(str(uri)))
    yield from pf.iter_batches(batch_size=batch_rows, columns=list(columns))


def corpus_index(uri: str, batch_rows: int = INDEX_BATCH_ROWS):
    """One row per non-empty section of the corpus file at ``uri``, without its text: ``row`` (position in the
    file), the corpus columns but text, ``chars`` and ``text_sha256``. Read batch by batch; the index is about
    150 bytes a section, whatever the sections' lengths."""
    import pandas as pd
    import pyarrow.compute as pc

    parts, offset = [], 0
    for batch in _batches(uri, CORPUS_COLUMNS, batch_rows):
        text = pc.fill_null(batch.column("text"), "")
        keep = np.asarray(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0).to_numpy(zero_copy_only=False))
        rows = np.flatnonzero(keep)
        if rows.size:
            texts = text.take(rows).to_pylist()
            part = {c: batch.column(c).take(rows).to_pylist() for c in CORPUS_COLUMNS if c != "text"}
            part["row"] = (rows + offset).tolist()
            part["chars"] = [len(t) for t in texts]
            part["text_sha256"] = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
            parts.append(pd.DataFrame(part))
        offset += batch.num_rows
    columns = [*(c for c in CORPUS_COLUMNS if c != "text"), "row", "chars", "text_sha256"]
    if not parts:
        return pd.DataFrame({c: [] for c in columns})
    index = pd.concat(parts, ignore_index=True)[columns]
    index["cik"] = index["cik"].astype("int64")
    for col in ("accession", "form", "filing_date", "item"):
        index[col] = index[col].fillna("").astype(str)
    return index


def corpus_texts(uri: str, rows: Iterable[int], batch_rows: int = INDEX_BATCH_ROWS) -> Iterator[tuple[int, str]]:
    """(row, text) of the given rows of the corpus file, in file order, one record batch in memory at a time."""
    wanted = np.asarray(sorted(set(int(r) for r in rows)), dtype=np.int64)
    offset = 0
    for batch in _batches(uri, ["text"], batch_rows):
        lo, hi = np.searchsorted(wanted, [offset, offset + batch.num_rows])
        if hi > lo:
            local = wanted[lo:hi] - offset
            for row, text in zip(wanted[lo:hi].tolist(), batch.column("text").take(local).to_pylist()):
                yield row, text or ""
        offset += batch.num_rows
        if hi == wanted.size:
            return


def ranked(index, seed: int = 0):
    """``index`` in the order of a seeded hash of (accession, item): a stable sample order that does not
    depend on the file's (quarter) order or on which other sections are present."""
    if index.empty:
        return index
    keys = [hashlib.sha256(f"{seed}:{a}\x1f{i}".encode()).hexdigest()
            for a, i in zip(index["accession"], index["item"])]
    return index.assign(_rank=keys).sort_values(["_rank", "row"], kind="stable").drop(columns="_rank")


def sampled_token_blocks(uri: str, index, tokenizer, block_len: int, max_blocks: int | None, *, seed: int = 0,
                         prefix: Sequence[int] = (), suffix: Sequence[int] = (), separator: Sequence[int] = ()):
    """Up to ``max_blocks`` packed blocks of ``block_len`` tokens from the sections in ``index`` (rows of
    :func:`corpus_index` of ``uri``), taken in :func:`ranked` order; returns (blocks, the index rows used).

    Only as many sections are read and tokenised as cover ``max_blocks`` (a character budget, doubled when it
    falls short), so memory is about the blocks asked for plus one section. ``max_blocks`` None or 0 takes
    every section (memory then grows with the corpus)."""
    order = ranked(index, seed)
    if order.empty:
        return np.zeros((0, block_len), dtype=np.int32), order
    capped = bool(max_blocks) and max_blocks > 0
    budget = max_blocks * block_len * CHARS_PER_TOKEN_BUDGET if capped else float("inf")
    while True:
        before = order["chars"].cumsum() - order["chars"]
        chosen = order[before < budget]
        texts = dict(corpus_texts(uri, chosen["row"]))
        docs = tokenize_documents(tokenizer, [texts.pop(r) for r in chosen["row"]])
        del texts
        blocks = pack_token_blocks(docs, block_len, prefix=prefix, suffix=suffix, separator=separator,
                                   max_blocks=max_blocks if capped else None)
        del docs
        if not capped or len(blocks) >= max_blocks or len(chosen) == len(order):
            return blocks, chosen
        budget *= 2
