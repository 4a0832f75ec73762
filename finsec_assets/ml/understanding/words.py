"""Words with character offsets, and FiNER's number-shape pseudo-tokens."""

from __future__ import annotations

import re

NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
FALLBACK_SHAPE = "[num]"


def split_words(text: str) -> tuple[list[str], list[int]]:
    """The words of ``text`` and the character offset where each starts: the ner_dataset's own tokenizer
    (whole numbers, words, single symbols), so raw text reaches the model cut as the training sentences were."""
    from ...xbrl.datasets import tokenize

    return tokenize(text)


def number_shape(word: str) -> str | None:
    """``[x,xxx.x]`` for ``1,234.5``: a number's shape as one pseudo-token (FiNER's fix for numbers that a
    WordPiece vocabulary splits into arbitrary fragments); None for a word that is not a number."""
    if not NUMBER_RE.fullmatch(word):
        return None
    return "[" + re.sub(r"\d", "x", word) + "]"


def shaped_words(words: list[str], known_shapes: set[str] | frozenset[str]) -> list[str]:
    """Numbers replaced by their shape token (or ``[num]`` for a shape not in the vocabulary)."""
    out = []
    for w in words:
        shape = number_shape(w)
        out.append(w if shape is None else (shape if shape in known_shapes else FALLBACK_SHAPE))
    return out
