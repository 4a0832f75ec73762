"""Extractive summaries: JumpStart's Jaccard and k-medoids summarizers, done carefully.

Both pick whole sentences of the document and return them in document order,
joined by single spaces. Candidates are the document's real sentences
(:func:`finsec_assets.text.scoring.real_sentences`: headings, page numbers and
table rows are not summary material); a text without any falls back to its
split units that contain letters; a text without those gives ``""``. A sentence
repeated verbatim (boilerplate) is selected at most once.

* :func:`jaccard_summary`: each sentence becomes the set of its Porter stems
  without English stop words; its score is the row sum of the pairwise Jaccard
  similarity matrix (self excluded): sentences that share most vocabulary with
  the rest of the document are the most central. Size by sentence count,
  percentage of sentences, a token budget, or a cutoff on the score relative to
  the best one.
* :func:`kmedoids_summary`: sentences are embedded by the caller's ``embed``
  (the project passes all-MiniLM-L6-v2), clustered into ``size`` groups with
  k-medoids (PAM: greedy BUILD then best-improvement SWAP, deterministic), and
  the medoid sentences form the summary: one representative per theme.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from finsec_assets.text.scoring import real_sentences, stem_word
from finsec_assets.text.sentences import split_sentences

__all__ = [
    "summary_candidates",
    "jaccard_scores",
    "jaccard_summary",
    "kmedoids",
    "kmedoids_summary",
    "METRICS",
]

METRICS = ("euclidean", "cosine", "dot")
_ROW_BLOCK = 512
_FLOAT32_ABOVE = 2000
_WORD = re.compile(r"[a-z]+")


def summary_candidates(text: str) -> list[str]:
    """Sentences a summary may use (see the module docstring)."""
    sentences = real_sentences(text)
    if not sentences:
        sentences = [s for s in split_sentences(text) if any(c.isalpha() for c in s)]
    return sentences


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def _stem_sets(sentences: Sequence[str]) -> list[frozenset[str]]:
    stop = _stop_words()
    return [frozenset(stem_word(w) for w in _WORD.findall(s.lower()) if w not in stop) for s in sentences]


def jaccard_scores(sentences: Sequence[str]) -> np.ndarray:
    """Row sums of the pairwise Jaccard similarity of the sentences' stem sets (self excluded)."""
    from scipy import sparse

    sets = _stem_sets(sentences)
    n = len(sets)
    if n == 0:
        return np.zeros(0)
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for i, stems in enumerate(sets):
        for s in stems:
            rows.append(i)
            cols.append(vocabulary.setdefault(s, len(vocabulary)))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n, max(1, len(vocabulary)))
    )
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    scores = np.zeros(n)
    for start in range(0, n, _ROW_BLOCK):
        block = slice(start, min(n, start + _ROW_BLOCK))
        intersection = (matrix[block] @ matrix.T).toarray()
        union = sizes[block, None] + sizes[None, :] - intersection
        with np.errstate(divide="ignore", invalid="ignore"):
            similarity = np.where(union > 0, intersection / union, 0.0)
        rows_in_block = np.arange(block.start, block.stop)
        similarity[rows_in_block - block.start, rows_in_block] = 0.0
        scores[block] = similarity.sum(axis=1)
    return scores


def _in_document_order(sentences: Sequence[str], ranked: Sequence[int], keep: Callable[[int, int], bool]) -> str:
    """Walk ``ranked`` indices best first, keep distinct sentences ``keep`` accepts."""
    chosen: list[int] = []
    seen: set[str] = set()
    for index in ranked:
        if sentences[index] in seen:
            continue
        if keep(index, len(chosen)):
            chosen.append(index)
            seen.add(sentences[index])
    return " ".join(sentences[i] for i in sorted(chosen))


def jaccard_summary(
    text: str,
    size: int | None = None,
    percentage: float | None = None,
    max_tokens: int | None = None,
    cutoff: float | None = None,
) -> str:
    """The most central sentences of ``text`` by Jaccard similarity, in document order.

    Give exactly one of: ``size`` (number of sentences), ``percentage`` (of the
    candidate sentences, 0 < p <= 100, at least one sentence), ``max_tokens``
    (whitespace tokens: sentences are taken best first while they fit, a sentence
    that does not fit is skipped for a shorter one; may be ``""`` when no
    sentence fits) or ``cutoff`` (0 <= c <= 1: sentences whose score is at least
    ``c`` times the best score).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    given = {k: v for k, v in {"size": size, "percentage": percentage, "max_tokens": max_tokens, "cutoff": cutoff}.items() if v is not None}
    if len(given) != 1:
        raise ValueError(
            "jaccard_summary needs exactly one of size, percentage, max_tokens or cutoff; "
            f"got {sorted(given) or 'none'}"
        )
    if size is not None:
        _check_positive_int("size", size)
    if max_tokens is not None:
        _check_positive_int("max_tokens", max_tokens)
    if percentage is not None and not (isinstance(percentage, (int, float)) and 0 < percentage <= 100):
        raise ValueError(f"percentage must be in (0, 100], got {percentage!r}")
    if cutoff is not None and not (isinstance(cutoff, (int, float)) and 0 <= cutoff <= 1):
        raise ValueError(f"cutoff must be in [0, 1], got {cutoff!r}")

    sentences = summary_candidates(text)
    if not sentences:
        return ""
    scores = jaccard_scores(sentences)
    ranked = np.argsort(-scores, kind="stable").tolist()  # ties: earlier sentence first
    if size is not None or percentage is not None:
        count = size if size is not None else max(1, math.ceil(len(sentences) * percentage / 100))
        return _in_document_order(sentences, ranked, lambda i, n: n < count)
    if cutoff is not None:
        threshold = cutoff * float(scores.max())
        return _in_document_order(sentences, ranked, lambda i, n: scores[i] >= threshold)
    budget = [max_tokens]

    def fits(i: int, n: int) -> bool:
        tokens = len(sentences[i].split())
        if tokens <= budget[0]:
            budget[0] -= tokens
            return True
        return False

    return _in_document_order(sentences, ranked, fits)


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _distances(points: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        squared = np.einsum("ij,ij->i", points, points)
        d2 = squared[:, None] + squared[None, :] - 2.0 * points @ points.T
        np.maximum(d2, 0.0, out=d2)
        distances = np.sqrt(d2)
        np.fill_diagonal(distances, 0.0)
        return distances
    if metric == "cosine":
        norms = np.linalg.norm(points, axis=1)
        unit = points / np.where(norms > 0, norms, 1.0)[:, None]
        distances = 1.0 - unit @ unit.T
        np.fill_diagonal(distances, 0.0)
        return distances
    if metric == "dot":
        return -(points @ points.T)
    raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")


def kmedoids(points: np.ndarray, k: int, metric: str = "euclidean", max_iter: int = 100) -> np.ndarray:
    """Indices of ``k`` medoids of ``points`` (PAM: greedy BUILD, then SWAP until no swap helps).

    ``metric``: ``euclidean``, ``cosine`` (1 - cosine similarity) or ``dot``
    (dissimilarity -a.b; the same ranking as cosine for unit-length vectors).
    Deterministic: ties go to the lowest index. Returned sorted ascending.
    """
    points = np.asarray(points)
    if points.ndim == 2:
        # Beyond a few thousand sentences the n x n matrix dominates memory: halve it.
        points = points.astype(np.float32 if points.shape[0] > _FLOAT32_ABOVE else np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n, dim), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or infinite values")
    n = points.shape[0]
    _check_positive_int("k", k)
    if k >= n:
        return np.arange(n)
    distances = _distances(points, metric)

    # BUILD: start from the point with the smallest total distance, then add the
    # point that lowers the total cost most.
    medoids = [int(np.argmin(distances.sum(axis=0)))]
    nearest = distances[:, medoids[0]].copy()
    for _ in range(1, k):
        gains = np.maximum(nearest[:, None] - distances, 0.0).sum(axis=0)
        gains[medoids] = -np.inf
        chosen = int(np.argmax(gains))
        medoids.append(chosen)
        np.minimum(nearest, distances[:, chosen], out=nearest)

    # SWAP: replace the (medoid, candidate) pair that lowers the cost most.
    for _ in range(max_iter):
        current = distances[:, medoids]
        cost = current.min(axis=1).sum()
        best = (0.0, -1, -1)
        for slot in range(k):
            others = np.delete(current, slot, axis=1)
            without = others.min(axis=1) if others.shape[1] else np.full(n, np.inf)
            totals = np.empty(n)
            for start in range(0, n, _ROW_BLOCK):
                block = slice(start, min(n, start + _ROW_BLOCK))
                totals[block] = np.minimum(distances[:, block], without[:, None]).sum(axis=0)
            totals[medoids] = np.inf
            candidate = int(np.argmin(totals))
            improvement = cost - totals[candidate]
            if improvement > best[0] + 1e-12 * max(1.0, abs(cost)):
                best = (improvement, slot, candidate)
        if best[1] < 0:
            break
        medoids[best[1]] = best[2]
    return np.array(sorted(medoids))


def kmedoids_summary(
    text: str,
    size: int,
    embed: Callable[[list[str]], np.ndarray],
    metric: str = "euclidean",
) -> str:
    """One representative sentence per theme: the medoids of ``size`` clusters, in document order.

    ``embed`` maps a list of sentences to an array of shape (len(sentences), dim)
    (e.g. a sentence-transformers model's ``encode``). Texts with at most
    ``size`` distinct candidate sentences are returned whole.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    _check_positive_int("size", size)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not callable(embed):
        raise TypeError(f"embed must be a callable list[str] -> array, got {type(embed).__name__}")
    sentences = summary_candidates(text)
    distinct = list(dict.fromkeys(sentences))  # first occurrence of each, in order
    if len(distinct) <= size:
        return " ".join(distinct)
    vectors = embed(distinct)
    vectors = np.asarray(vectors.toarray() if hasattr(vectors, "toarray") else vectors)  # scipy.sparse too
    if vectors.ndim != 2 or vectors.shape[0] != len(distinct):
        raise ValueError(
            f"embed returned shape {vectors.shape} for {len(distinct)} sentences; expected ({len(distinct)}, dim)"
        )
    medoids = kmedoids(vectors, size, metric=metric)
    return " ".join(distinct[i] for i in medoids)
