import gzip
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from finsec_assets.text.scoring import stem_word
from finsec_assets.text.sections import extract_sections
from finsec_assets.text.summarize import (
    jaccard_scores,
    jaccard_summary,
    kmedoids,
    kmedoids_summary,
    summary_candidates,
)

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
AAPL_10Q = SAMPLE / "320193/000032019323000077/aapl-20230701.htm.gz"

TEXT = (
    "Net sales increased due to higher iPhone sales. "
    "Services net sales increased due to higher advertising sales. "
    "The weather was mild this year. "
    "Gross margin increased due to higher net sales and favorable mix. "
    "Our headquarters moved to a new campus."
)


def tfidf(sentences):
    return TfidfVectorizer().fit_transform(sentences).toarray()


@pytest.fixture(scope="module")
def mdna():
    raw = gzip.decompress(AAPL_10Q.read_bytes())
    return next(s.text for s in extract_sections(raw, "10-Q") if s.item == "I-2")


def brute_force_jaccard(sentences):
    sets = [
        {stem_word(w) for w in re.findall(r"[a-z]+", s.lower()) if w not in ENGLISH_STOP_WORDS} for s in sentences
    ]
    return np.array(
        [sum(len(a & b) / len(a | b) for j, b in enumerate(sets) if j != i and a | b) for i, a in enumerate(sets)]
    )


def in_order(summary, sentences):
    """The summary is whole candidate sentences, in document order."""
    positions = []
    rest = summary
    for i, sentence in enumerate(sentences):
        if rest.startswith(sentence):
            positions.append(i)
            rest = rest[len(sentence) :].lstrip()
    return positions if not rest else None


def test_jaccard_scores_equal_the_pairwise_definition(mdna):
    sentences = summary_candidates(mdna)
    assert len(sentences) > 50
    np.testing.assert_allclose(jaccard_scores(sentences), brute_force_jaccard(sentences), rtol=1e-12)


def test_jaccard_summary_keeps_the_most_central_sentences_in_document_order():
    sentences = summary_candidates(TEXT)
    scores = brute_force_jaccard(sentences)
    top2 = sorted(np.argsort(-scores)[:2])
    assert top2 == [0, 1] or top2 == [0, 3] or top2 == [1, 3]
    summary = jaccard_summary(TEXT, size=2)
    assert summary == " ".join(sentences[i] for i in top2)
    assert "weather" not in summary and "headquarters" not in summary


def test_jaccard_summary_size_options(mdna):
    sentences = summary_candidates(mdna)
    n = len(sentences)
    for summary, expected_count in [
        (jaccard_summary(mdna, size=5), 5),
        (jaccard_summary(mdna, percentage=10), -(-n * 10 // 100)),
        (jaccard_summary(mdna, size=10_000), len(set(sentences))),
    ]:
        positions = in_order(summary, sentences)
        assert positions is not None and len(positions) == expected_count
    budget = jaccard_summary(mdna, max_tokens=120)
    assert 0 < len(budget.split()) <= 120 and in_order(budget, sentences) is not None
    scores = jaccard_scores(sentences)
    cut = jaccard_summary(mdna, cutoff=0.9)
    chosen = in_order(cut, sentences)
    assert chosen and all(scores[i] >= 0.9 * scores.max() for i in chosen)
    assert len(chosen) == len({sentences[i] for i in range(n) if scores[i] >= 0.9 * scores.max()})


def test_duplicate_sentences_are_used_once():
    text = "Sales rose on strong demand. " * 3 + "Sales rose in every region. Costs were flat."
    summary = jaccard_summary(text, size=2)
    assert summary.count("Sales rose on strong demand.") == 1
    assert kmedoids_summary(text, 5, tfidf).count("Sales rose on strong demand.") == 1


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"size": 2, "percentage": 10}, {"size": 0}, {"size": 2.5}, {"size": True}, {"percentage": 0},
     {"percentage": 150}, {"max_tokens": -1}, {"cutoff": 1.5}],
)
def test_jaccard_summary_bad_options_are_clear_errors(kwargs):
    with pytest.raises(ValueError):
        jaccard_summary(TEXT, **kwargs)


def test_empty_and_unpunctuated_text():
    assert jaccard_summary("", size=3) == ""
    assert kmedoids_summary("  \n ", 3, tfidf) == ""
    assert jaccard_summary("12 34 56", size=1) == ""
    # No real sentence: fall back to the split units that have letters.
    assert jaccard_summary("risk factors overview\n\nliquidity and capital resources", size=1) in (
        "risk factors overview",
        "liquidity and capital resources",
    )
    with pytest.raises(TypeError, match="text must be str"):
        jaccard_summary(None, size=1)


def optimal_cost(distances, k):
    return min(distances[:, list(c)].min(axis=1).sum() for c in itertools.combinations(range(len(distances)), k))


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "dot"])
def test_kmedoids_finds_the_optimal_medoids_of_small_clustered_data(metric):
    rng = np.random.default_rng(7)
    centers = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    points = np.vstack([c + rng.normal(scale=0.3, size=(5, 3)) for c in centers])
    medoids = kmedoids(points, 3, metric=metric)
    assert sorted({int(i) // 5 for i in medoids}) == [0, 1, 2]  # one per cluster
    from finsec_assets.text.summarize import _distances

    distances = _distances(points, metric)
    cost = distances[:, medoids].min(axis=1).sum()
    assert cost == pytest.approx(optimal_cost(distances, 3))


def test_kmedoids_edge_cases():
    points = np.arange(12, dtype=float).reshape(6, 2)
    assert list(kmedoids(points, 6)) == list(range(6))
    assert list(kmedoids(points, 10)) == list(range(6))
    assert list(kmedoids(points, 1)) in ([2], [3])  # a middle point
    np.testing.assert_array_equal(kmedoids(points, 2), kmedoids(points, 2))  # deterministic
    with pytest.raises(ValueError, match="metric"):
        kmedoids(points, 2, metric="manhattan")
    with pytest.raises(ValueError, match="2-D"):
        kmedoids(np.arange(5.0), 2)
    with pytest.raises(ValueError, match="NaN"):
        kmedoids(np.array([[np.nan, 1.0], [0.0, 1.0], [2.0, 2.0]]), 2)


def test_kmedoids_summary_picks_one_sentence_per_theme_in_document_order(mdna):
    sentences = summary_candidates(mdna)
    summary = kmedoids_summary(mdna, 5, tfidf, metric="cosine")
    positions = in_order(summary, sentences)
    assert positions is not None and len(positions) == 5
    assert summary == kmedoids_summary(mdna, 5, tfidf, metric="cosine")
    calls = []

    def recording_embed(batch):
        calls.append(list(batch))
        return tfidf(batch)

    kmedoids_summary(TEXT, 2, recording_embed)
    assert calls == [summary_candidates(TEXT)]  # one call, all candidates
    assert kmedoids_summary(TEXT, 10, tfidf) == " ".join(summary_candidates(TEXT))


def test_kmedoids_summary_bad_input():
    with pytest.raises(ValueError, match="expected"):
        kmedoids_summary(TEXT, 2, lambda batch: np.zeros((1, 3)))
    with pytest.raises(ValueError, match="metric"):
        kmedoids_summary(TEXT, 2, tfidf, metric="hamming")
    with pytest.raises(ValueError, match="size"):
        kmedoids_summary(TEXT, 0, tfidf)
    with pytest.raises(TypeError, match="embed"):
        kmedoids_summary(TEXT, 2, "all-MiniLM-L6-v2")
