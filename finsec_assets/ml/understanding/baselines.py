"""Non-neural baselines, one per task: what a model must beat to be worth its GPU.

- NER: a linear-chain CRF (sklearn-crfsuite) on word, shape and context features.
- QA: a lexical sliding window: each number in the context is scored by the IDF-weighted question words
  around it; below a threshold learnt on the training split the question is called unanswerable.
- Relations: the nearest time expression / member mention of the right type is the related one; and a
  majority-class control.
- Classification: TF-IDF + logistic regression (paragraphs); logistic regression on pooled embeddings
  (filings), plus a majority control.
- Summarization: the lead sentence, and the project's Jaccard summarizer (one sentence).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .words import NUMBER_RE, number_shape, split_words

# ------------------------------------------------------------------------------------------ NER


def _word_features(words: Sequence[str], i: int) -> dict:
    w = words[i]
    f = {"bias": 1.0, "lower": w.lower(), "suffix3": w[-3:].lower(), "is_title": w.istitle(), "is_upper": w.isupper(),
         "is_number": bool(NUMBER_RE.fullmatch(w)), "shape": number_shape(w) or ("Xx" if w[:1].isupper() else "x")}
    for off in (-3, -2, -1, 1, 2, 3):
        j = i + off
        f[f"{off}:lower"] = words[j].lower() if 0 <= j < len(words) else ("<s>" if j < 0 else "</s>")
    return f


def crf_features(words: Sequence[str]) -> list[dict]:
    return [_word_features(words, i) for i in range(len(words))]


def train_crf(sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], max_iterations: int = 100):
    import sklearn_crfsuite

    crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=max_iterations,
                               all_possible_transitions=True)
    crf.fit([crf_features(s) for s in sentences], [list(t) for t in tags])
    return crf


def predict_crf(crf, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    return [list(p) for p in crf.predict([crf_features(s) for s in sentences])]


# ------------------------------------------------------------------------------------------ QA

_STOP = frozenset("a an the of for to in on at by and or what was were is are how much many did does during ended "
                  "year years quarter as from with which".split())


def _terms(text: str) -> list[str]:
    return [w.lower() for w in split_words(text)[0] if w[:1].isalpha() and w.lower() not in _STOP]


class LexicalQA:
    """Sliding-window matcher: answer = the number whose ±``window`` words best match the question."""

    def __init__(self, window: int = 12):
        self.window, self.idf, self.threshold = window, {}, 0.0

    def fit(self, questions: Sequence[str], contexts: Sequence[str], answers: Sequence[str]) -> "LexicalQA":
        docs = [set(_terms(c)) for c in contexts]
        df = collections.Counter(t for d in docs for t in d)
        n = max(1, len(docs))
        self.idf = {t: math.log((n + 1) / (c + 1)) + 1 for t, c in df.items()}
        self._default_idf = math.log(n + 1) + 1
        # the no-answer threshold that maximises training-split F1 (answered questions score their best window)
        scores = np.array([self._best(q, c)[1] for q, c in zip(questions, contexts)])
        has = np.array([bool(a) for a in answers])
        best_t, best_acc = 0.0, -1.0
        for t in np.unique(np.concatenate([[0.0], scores])):
            acc = float(np.mean((scores > t) == has))
            if acc > best_acc:
                best_t, best_acc = float(t), acc
        self.threshold = best_t
        return self

    def _best(self, question: str, context: str) -> tuple[tuple[int, int] | None, float]:
        q = set(_terms(question))
        words, starts = split_words(context)
        tokens = [(w, s, s + len(w)) for w, s in zip(words, starts)]
        best, best_score = None, 0.0
        for i, (w, s, e) in enumerate(tokens):
            if not NUMBER_RE.fullmatch(w):
                continue
            score = 0.0
            for j in range(max(0, i - self.window), min(len(tokens), i + self.window + 1)):
                t = tokens[j][0].lower()
                if t in q:
                    score += self.idf.get(t, self._default_idf) / (1 + abs(i - j))
            if score > best_score:
                best, best_score = (s, e), score
        return best, best_score

    def predict(self, questions: Sequence[str], contexts: Sequence[str]) -> list[str]:
        out = []
        for q, c in zip(questions, contexts):
            span, score = self._best(q, c)
            out.append(c[span[0]:span[1]] if span is not None and score > self.threshold else "")
        return out


# ------------------------------------------------------------------------------------------ relations


def nearest_tail_rule(df: pd.DataFrame) -> list[str]:
    """For each numeric fact, the closest candidate of each tail type is related (period_of / member_of)."""
    positive = {"period": "period_of", "member": "member_of"}
    distance = np.minimum(abs(df["tail_start"] - df["head_end"]), abs(df["head_start"] - df["tail_end"])).to_numpy()
    keys = list(zip(df["text"], df["head_start"], df["head_end"], df["tail_type"]))
    closest: dict = {}
    for k, d in zip(keys, distance):
        closest[k] = min(d, closest.get(k, d))
    return [positive.get(t, "no_relation") if d == closest[k] else "no_relation"
            for k, d, t in zip(keys, distance, df["tail_type"])]


def majority_label(train_labels: Sequence[str], n: int) -> list[str]:
    label = collections.Counter(map(str, train_labels)).most_common(1)[0][0]
    return [label] * n


# ------------------------------------------------------------------------------------------ classification


def train_tfidf_logreg(texts: Sequence[str], labels: Sequence[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=50000),
                          LogisticRegression(max_iter=1000, C=10.0))
    return model.fit(list(texts), list(map(str, labels)))


def train_embedding_logreg(x: np.ndarray, labels: Sequence[str]):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, list(map(str, labels)))


def train_embedding_mlp(x: np.ndarray, labels: Sequence[str], hidden: int = 128, seed: int = 0):
    """The JumpStart embeddings post's classifier: an MLP on pooled document embeddings."""
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-3, max_iter=500, early_stopping=False, random_state=seed)
    return mlp.fit(x, list(map(str, labels)))


def mlp_arrays(mlp) -> dict[str, np.ndarray]:
    """An sklearn MLP's weights as plain arrays (stored as .npz, no pickle)."""
    arrays = {}
    for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        arrays[f"w{i}"], arrays[f"b{i}"] = w.astype(np.float32), b.astype(np.float32)
    return arrays


def mlp_probabilities(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Forward pass of :func:`mlp_arrays` (ReLU hidden layers, softmax or logistic output)."""
    n_layers = len([k for k in arrays if k.startswith("w")])
    h = np.asarray(x, dtype=np.float32)
    for i in range(n_layers):
        h = h @ arrays[f"w{i}"] + arrays[f"b{i}"]
        if i < n_layers - 1:
            h = np.maximum(h, 0)
    if h.shape[1] == 1:  # sklearn's binary case: one logistic output for the second class
        p = 1 / (1 + np.exp(-h[:, 0]))
        return np.stack([1 - p, p], axis=1)
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------ summarization


def lead_sentence(document: str) -> str:
    from ...text.sentences import split_sentences

    sentences = split_sentences(document)
    return sentences[0] if sentences else ""


def jaccard_sentence(document: str) -> str:
    from ...text.summarize import jaccard_summary

    try:
        return jaccard_summary(document, size=1)
    except ValueError:
        return lead_sentence(document)
