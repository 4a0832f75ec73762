"""The training corpus file and held-out splits by filing."""

from __future__ import annotations

import pandas as pd
import pytest

from finsec_assets.ml import training as tc


def test_split_by_filing_is_disjoint_stable_and_refuses_a_single_filing():
    filings = [f"acc-{i:03d}" for i in range(40)]
    train, held = tc.split_by_filing(filings * 3, 0.2, seed=7)  # rows repeat per section: split is per filing
    assert train | held == set(filings) and not train & held
    assert 2 <= len(held) <= 16
    more_train, more_held = tc.split_by_filing(filings + ["acc-new-1", "acc-new-2"], 0.2, seed=7)
    assert held <= more_held and train <= more_train  # adding filings never moves an old one
    assert tc.split_by_filing(filings, 0.2, seed=8) != (train, held)
    assert tc.split_by_filing(["a", "b"], 0.01)[1] and tc.split_by_filing(["a", "b"], 0.99)[0]
    with pytest.raises(tc.TrainingInputError, match="at least 2 filings"):
        tc.split_by_filing(["only-one", "only-one"], 0.1)


def test_corpus_round_trip_and_clear_errors(tmp_path):
    df = pd.DataFrame({"accession": ["b", "a", "a"], "cik": [2, 1, 1], "form": ["10-K"] * 3,
                       "filing_date": ["2024-01-02", "2024-01-01", "2024-01-01"], "item": ["7", "1", "7"],
                       "text": ["mdna b", "business a", "  "], "n_words": [2, 2, 0]})
    path = tc.write_corpus(df, tmp_path / "c.parquet")
    back = tc.read_corpus(str(path))
    assert list(back.columns) == list(tc.CORPUS_COLUMNS)
    assert back["text"].tolist() == ["business a", "mdna b"]  # empty section dropped, sorted
    assert tc.corpus_sha256(back) == tc.corpus_sha256(tc.read_corpus(f"file://{path}"))
    with pytest.raises(tc.TrainingInputError, match=r"missing column\(s\) \['item'\]"):
        tc.write_corpus(df.drop(columns=["item"]), tmp_path / "x.parquet")
    with pytest.raises(tc.TrainingInputError, match="does not exist"):
        tc.read_corpus(tmp_path / "nope.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(tc.TrainingInputError, match="not a readable Parquet"):
        tc.read_corpus(tmp_path / "junk.parquet")
