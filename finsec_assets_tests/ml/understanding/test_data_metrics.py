"""Dataset contract checks, stable subsets, metrics and the non-neural baselines (no model training)."""

import numpy as np
import pandas as pd
import pytest

from finsec_assets.ml.understanding import baselines, data, metrics
from finsec_assets_tests.ml.understanding import frames


@pytest.fixture(scope="module")
def tables():
    return {task: build() for task, build in frames.FRAMES.items()}


def test_sample_frames_follow_the_contract_and_split_by_company(tables):
    for task, df in tables.items():
        data.check_dataset(task, df)
        assert data.company_overlap(df) == {}
        assert set(df["split"]) == set(data.SPLITS), task


def test_a_company_in_two_splits_is_refused(tables):
    df = tables["ner"].copy()
    df.loc[df.index[0], "split"] = "test" if df.loc[df.index[0], "split"] != "test" else "train"
    with pytest.raises(data.DatasetError, match="companies in more than one split"):
        data.check_dataset("ner", df)


def test_missing_columns_and_bad_splits_are_named(tables):
    with pytest.raises(data.DatasetError, match=r"qa_dataset: missing column\(s\) \['answer_text'\]"):
        data.check_dataset("qa", tables["qa"].drop(columns=["answer_text"]))
    bad = tables["relation"].copy()
    bad.loc[bad.index[0], "split"] = "dev"
    with pytest.raises(data.DatasetError, match="unknown split value"):
        data.check_dataset("relation", bad)


def test_stable_subset_ignores_row_order(tables):
    df = tables["ner"]
    a = data.stable_subset(df, 20)
    b = data.stable_subset(df.sample(frac=1, random_state=3), 20)
    assert len(a) == 20 and set(a["id"]) == set(b["id"])
    assert len(data.stable_subset(df, 0)) == len(df)


def test_squad_v2_counts_no_answer():
    gold = ["$1.2 billion", "", "15,245", ""]
    pred = ["1.2 billion", "", "", "42"]
    m = metrics.squad_v2_metrics(gold, pred)
    assert m["exact"] == pytest.approx(50.0)  # '$' is punctuation; empty == empty
    assert m["f1"] == pytest.approx(50.0)
    assert m["has_answer_f1"] == pytest.approx(50.0) and m["no_answer_accuracy"] == pytest.approx(50.0)


def test_seqeval_entity_level():
    gold = [["B-Revenues", "I-Revenues", "O", "B-NetIncomeLoss"]]
    pred = [["B-Revenues", "I-Revenues", "O", "O"]]
    m = metrics.ner_metrics(gold, pred)
    assert m["precision"] == 1.0 and m["recall"] == 0.5
    assert m["micro_f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx(0.5)


def test_rouge_and_label_metrics():
    assert metrics.rouge_metrics(["we may lose customers"], ["we may lose customers"])["rougeL"] == pytest.approx(1.0)
    assert metrics.label_metrics(["a", "b", "b"], ["a", "b", "a"])["accuracy"] == pytest.approx(2 / 3)


def test_crf_baseline_learns_fact_tags(tables):
    df = tables["ner"]
    train, test = df[df.split == "train"], df[df.split == "test"]
    crf = baselines.train_crf(list(train["tokens"]), list(train["tags"]), max_iterations=50)
    pred = baselines.predict_crf(crf, list(test["tokens"]))
    assert [len(p) for p in pred] == [len(t) for t in test["tokens"]]
    assert metrics.ner_metrics(list(train["tags"]), baselines.predict_crf(crf, list(train["tokens"])))["micro_f1"] > 0.5


def test_lexical_qa_answers_with_a_number_near_the_question_words():
    qa = baselines.LexicalQA().fit(["What was revenue for 2023?"] * 2,
                                   ["Revenue was 5 million in 2023.", "The board met twice."], ["5", ""])
    assert qa.predict(["What was net revenue?"], ["Costs rose 7%. Net revenue was 1,234 million."]) == ["1,234"]
    assert qa.predict(["What was revenue?"], ["The board met."]) == [""]


def test_nearest_tail_rule_marks_the_closest_period():
    text = "Revenue was 5 in 2023 and 4 in 2022."
    df = pd.DataFrame({"text": [text, text], "head_start": [12, 12], "head_end": [13, 13],
                       "tail_start": [17, 31], "tail_end": [21, 35], "tail_type": ["period", "period"]})
    assert baselines.nearest_tail_rule(df) == ["period_of", "no_relation"]


def test_mlp_arrays_reproduce_sklearn_probabilities():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    for labels in (["a", "b"] * 20, ["a", "b", "c", "d"] * 10):
        mlp = baselines.train_embedding_mlp(x, labels, hidden=16)
        assert np.allclose(baselines.mlp_probabilities(baselines.mlp_arrays(mlp), x), mlp.predict_proba(x), atol=1e-4)


def test_summarization_baselines_pick_one_sentence(tables):
    doc = tables["summarization"]["document"].iloc[0]
    lead = baselines.lead_sentence(doc)
    assert lead and doc.startswith(lead[:20])
    assert baselines.jaccard_sentence(doc)
