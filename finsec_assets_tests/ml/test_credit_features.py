"""The credit feature engineering: text units' scores, the split by source filing, the TabText table with a PCA
fitted on training rows, the shuffled-text control, model choice, and the next-year distress experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsec_assets.ml.altman import NLP_SCORES, RATINGS, rank_join, simulate_financials
from finsec_assets.ml.altman import mdna_mask
from finsec_assets.ml.credit_features import (DISTRESS_LABELS, TEXT_UNIT_COLUMNS, choose_models, compare_feature_sets,
                                              fill_scores, filing_split, mdna_sql, next_year_distress_rows,
                                              passage_units, prediction_flags, real_features, score_units,
                                              shuffle_text, tabtext_table, variant_features)
from finsec_assets.ml.rating import fit_and_evaluate

FAST = {"n_trials": 1, "tuning_folds": 3, "cv_repeats": 0, "n_jobs": 1, "max_rounds": 200}


def synthetic_firms(n: int = 240, filings: int = 12, seed: int = 0, dim: int = 6) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulated firms rank-joined with text units whose scores are uniform noise; ``filings`` source filings."""
    rng = np.random.default_rng(seed)
    units = pd.DataFrame(rng.random((n, len(NLP_SCORES))), columns=list(NLP_SCORES))
    units.insert(0, "accession", [f"0000000001-24-{i % filings:06d}" for i in range(n)])
    units.insert(1, "cik", 1000 + np.arange(n) % filings)
    units.insert(2, "form", "10-K")
    units.insert(3, "filing_date", "2024-03-01")
    units.insert(4, "item", "7")
    units.insert(5, "passage", np.arange(n) // filings)
    units.insert(6, "industry_code", np.where(np.arange(n) % filings < filings // 2, "D", "G"))
    df = rank_join(simulate_financials(n, seed=seed), units)
    return df, rng.normal(size=(n, dim))


def test_score_units_reuses_stored_mdna_scores_and_scores_the_rest():
    units = pd.DataFrame({"accession": ["a", "b"], "item": ["7", "7"], "text": ["Good growth.", "Bad loss."]})
    stored = pd.DataFrame({"accession": ["a"], "item": ["7"], **{s: [0.5] for s in NLP_SCORES}, "n_sentences": [9]})
    calls = []

    def score(texts):
        calls.append(texts)
        return [{**{s: 0.1 for s in NLP_SCORES}, "n_sentences": 1} for _ in texts]

    out, reused = score_units(units, "mdna", stored, score)
    assert reused == 1 and calls == [["Bad loss."]]
    assert out.loc[0, "positive"] == 0.5 and out.loc[0, "n_sentences"] == 9
    assert out.loc[1, "positive"] == 0.1 and out.loc[1, "n_sentences"] == 1
    passages, reused = score_units(units.assign(passage=[0, 1]), "passage", stored, score)
    assert reused == 0 and passages["positive"].eq(0.1).all()  # passages are never whole MD&As: all scored


def test_filing_split_keeps_every_source_filing_on_one_side():
    firms, _ = synthetic_firms()
    split = filing_split(firms, test_size=0.25, seed=1)
    sides = pd.DataFrame({"accession": firms["accession"], "split": split}).groupby("accession")["split"].nunique()
    assert sides.max() == 1
    assert (split == "test").mean() == pytest.approx(0.25, abs=0.05)
    assert (filing_split(firms, 0.25, 1) == split).all()  # deterministic for a seed
    with pytest.raises(ValueError, match="at least two groups"):
        filing_split(firms.assign(accession="one"), 0.2, 1)


def test_tabtext_table_fits_the_pca_on_training_rows_only():
    firms, vectors = synthetic_firms()
    split = filing_split(firms, 0.25, 0)
    df, pca = tabtext_table(firms, split, vectors, 3, seed=0)
    train = split == "train"
    assert pca["fitted_on"] == "train" and len(pca["components"]) == 3
    assert np.allclose(pca["mean"], vectors[train].mean(axis=0))
    # changing the test firms' vectors changes their components, never the projection learnt from training
    moved = vectors.copy()
    moved[~train] += 5.0
    df2, pca2 = tabtext_table(firms, split, moved, 3, seed=0)
    assert np.allclose(pca2["mean"], pca["mean"]) and np.allclose(pca2["components"], pca["components"])
    assert np.allclose(df2.loc[train, "emb_0"], df.loc[train, "emb_0"])
    assert not np.allclose(df2.loc[~train, "emb_0"], df.loc[~train, "emb_0"])
    assert list(df["split"]) == list(split) and set(df["rating"]) <= set(RATINGS)
    assert {"A", "B", "C", "D", "E", "altman_z", *NLP_SCORES, "investment_grade"} <= set(df.columns)
    with pytest.raises(ValueError, match="split needs"):
        tabtext_table(firms, split[:-1], vectors, 3)


def test_shuffle_text_moves_whole_text_units_within_each_side():
    firms, vectors = synthetic_firms()
    df, _ = tabtext_table(firms, filing_split(firms, 0.25, 0), vectors, 2)
    shuffled = shuffle_text(df, seed=3)
    text_cols = [c for c in (*TEXT_UNIT_COLUMNS, "emb_0", "emb_1") if c in df.columns]
    fixed = ["firm", "A", "B", "C", "D", "E", "altman_z", "rating", "investment_grade", "split"]
    pd.testing.assert_frame_equal(shuffled[fixed], df[fixed])
    assert (shuffled[text_cols].dtypes == df[text_cols].dtypes).all()
    assert (shuffled["positive"] != df["positive"]).mean() > 0.9
    for side in ("train", "test"):  # the same text units on each side, each unit intact
        key = lambda t: t[t["split"] == side][text_cols].sort_values(text_cols).reset_index(drop=True)
        pd.testing.assert_frame_equal(key(shuffled), key(df))
    with pytest.raises(ValueError, match="split"):
        shuffle_text(df.drop(columns="split"))


def test_the_tabtext_gain_is_built_in_by_rank_join_and_the_shuffled_control_removes_it():
    """Uniform random 'text' scores, rank-joined as JumpStart does, lift binary accuracy far above tabular; the
    same scores joined at random add nothing."""
    firms, _ = synthetic_firms(n=600, filings=30, seed=5)
    df, _ = tabtext_table(firms, filing_split(firms, 0.2, 0), None, 0)
    acc = {}
    for variant in ("tabular", "tabtext", "tabtext_shuffled"):
        data = shuffle_text(df, 7) if variant == "tabtext_shuffled" else df
        _, m = fit_and_evaluate(data, "investment_grade", "binary", features=variant_features(data, variant),
                                groups=data["accession"], test_mask=data["split"] == "test", **FAST)
        acc[variant] = m["accuracy"]
    assert acc["tabtext"] - acc["tabular"] > 0.1, acc
    assert abs(acc["tabtext_shuffled"] - acc["tabular"]) < 0.08, acc


def test_variant_features():
    df = pd.DataFrame(columns=["industry_code", "A", "emb_0", "emb_1", *NLP_SCORES])
    assert variant_features(df, "tabular") == ["industry_code", "A", "B", "C", "D", "E", "altman_z"]
    assert variant_features(df, "tabtext")[-2:] == ["emb_0", "emb_1"]
    assert variant_features(df, "tabtext_shuffled") == variant_features(df, "tabtext")
    with pytest.raises(ValueError, match="unknown variant"):
        variant_features(df, "text_only")


def test_choose_models_uses_validation_and_skips_controls():
    registry = pd.DataFrame([
        {"model_variant": "tabular", "task": "multiclass", "val_macro_f1": 0.40, "macro_f1": 0.9, "val_roc_auc": np.nan},
        {"model_variant": "tabtext", "task": "multiclass", "val_macro_f1": 0.50, "macro_f1": 0.1, "val_roc_auc": np.nan},
        {"model_variant": "tabtext_shuffled", "task": "multiclass", "val_macro_f1": 0.9, "macro_f1": 0.9,
         "val_roc_auc": np.nan},
        {"model_variant": "tabular", "task": "binary", "val_macro_f1": 0.5, "roc_auc": 0.99, "val_roc_auc": 0.80},
        {"model_variant": "tabtext", "task": "binary", "val_macro_f1": 0.5, "roc_auc": 0.50, "val_roc_auc": 0.85},
    ])
    multi, binary = choose_models(registry)
    assert multi["model_variant"] == "tabtext" and binary["model_variant"] == "tabtext"
    with pytest.raises(ValueError, match="lacks val_macro_f1"):
        choose_models(registry.drop(columns="val_macro_f1"))
    with pytest.raises(ValueError, match="besides controls"):
        choose_models(registry[registry["model_variant"] == "tabtext_shuffled"])


def altman_table(ciks, years, zone_of) -> pd.DataFrame:
    rows = []
    for cik in ciks:
        for fy in years:
            rows.append({"cik": cik, "accession": f"{cik}-{fy}", "fiscal_year": fy, "filed": f"{fy + 1}-02-15",
                         "A": 0.1, "B": 1.0, "C": 2.0, "D": 0.2, "E": 0.3, "X4": 1.5, "altman_z": 3.0,
                         "altman_z_double_prime": 3.0, "zone": "safe", "zone_double_prime": zone_of(cik, fy)})
    return pd.DataFrame(rows)


def mdna_scores(rows) -> pd.DataFrame:
    """nlp_scores rows: (accession, cik, form, filing_date, item, positive)."""
    df = pd.DataFrame(rows, columns=["accession", "cik", "form", "filing_date", "item", "positive"])
    for s in NLP_SCORES[1:]:
        df[s] = 0.1
    return df


def test_next_year_distress_rows_label_each_mdna_with_the_following_fiscal_year():
    altman = altman_table([1, 2], [2021, 2022, 2023], lambda cik, fy: "distress" if (cik, fy) == (1, 2023) else
                          "grey" if fy == 2023 else "safe")
    scores = mdna_scores([
        ("1-2022", 1, "10-K", "2023-02-15", "7", 0.2),     # its own FY2022 10-K: next year is FY2023 (distress)
        ("q-1", 1, "10-Q", "2023-08-01", "I-2", 0.3),      # latest annual filed by then: FY2022 -> FY2023
        ("2-2023", 2, "10-K", "2024-02-15", "7", 0.4),     # FY2023: no FY2024 inputs -> no label, dropped
        ("2-2021", 2, "10-K", "2022-02-15", "1A", 0.5),    # not an MD&A
        ("x", 3, "10-K", "2023-02-15", "7", 0.6),          # no Altman inputs at all
    ])
    scores["embedding"] = [np.ones(4), None, None, None, None]
    rows = next_year_distress_rows(scores, altman)
    assert list(rows["accession"]) == ["1-2022", "q-1"]
    assert (rows["altman_fiscal_year"] == 2022).all() and (rows["next_fiscal_year"] == 2023).all()
    assert rows["distress"].all() and rows["grey_or_distress"].all()
    assert rows.loc[0, "embedding"].shape == (4,) and rows.loc[1, "embedding"] is None
    assert set(DISTRESS_LABELS) <= set(rows.columns)
    with pytest.raises(ValueError, match="lacks"):
        next_year_distress_rows(scores, altman.drop(columns="X4"))


def experiment_rows(n_companies: int = 40, per_company: int = 3, seed: int = 0) -> pd.DataFrame:
    """Next-year distress that depends on this year's ratio D and, more, on an MD&A score."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_companies):
        tone = rng.normal()
        for k in range(per_company):
            d = rng.normal()
            rows.append({"cik": c, "D": d, "A": rng.normal(), "uncertainty": tone + 0.3 * rng.normal(),
                         "embedding": rng.normal(size=5),
                         "distress": bool(0.5 * d + 2.0 * tone + 0.5 * rng.normal() > 0.8)})
    return pd.DataFrame(rows)


def test_compare_feature_sets_finds_a_real_text_signal_with_intervals():
    rows = experiment_rows()
    sets = {"ratios": (["A", "D"], False), "ratios + text": (["A", "D", "uncertainty"], False),
            "ratios + text + embedding": (["A", "D", "uncertainty"], True)}
    out = compare_feature_sets(rows, "distress", sets, folds=5, repeats=3, bootstrap=200, n_components=2).set_index(
        "feature_set")
    assert out.loc["ratios + text", "auc"] > out.loc["ratios", "auc"] + 0.15
    for name in sets:
        assert out.loc[name, "auc_ci_low"] <= out.loc[name, "auc"] <= out.loc[name, "auc_ci_high"]
        assert out.loc[name, "brier_ci_low"] <= out.loc[name, "brier"] <= out.loc[name, "brier_ci_high"]
    diff = out.loc["ratios + text minus ratios"]
    assert diff["auc_ci_low"] > 0 and "paired company bootstrap" in diff["note"]
    assert (out["companies"] == 40).all() and (out["rows"] == 120).all()


def test_compare_feature_sets_without_a_signal_gives_an_interval_around_no_gain():
    rows = experiment_rows(seed=1)
    rows["noise"] = np.random.default_rng(9).normal(size=len(rows))
    out = compare_feature_sets(rows, "distress", {"ratios": (["A", "D"], False), "noise": (["A", "D", "noise"], False)},
                               repeats=3, bootstrap=200).set_index("feature_set")
    diff = out.loc["noise minus ratios"]
    assert diff["auc_ci_low"] < 0 < diff["auc_ci_high"] or abs(diff["auc"]) < 0.05


def test_compare_feature_sets_says_when_it_cannot_estimate():
    rows = experiment_rows(6, 2)
    rows["distress"] = rows["cik"] == 0  # one positive company
    out = compare_feature_sets(rows, "distress", {"ratios": (["A", "D"], False)}, repeats=2, bootstrap=10)
    assert out["auc"].isna().all() and out.loc[0, "note"].startswith("not estimable: 2 positive row(s) from 1")
    with pytest.raises(ValueError, match="no label column"):
        compare_feature_sets(rows, "bankrupt", {"ratios": (["A"], False)})


def test_real_features_and_flags():
    altman = altman_table([1], [2022], lambda cik, fy: "safe").assign(altman_z=[np.nan])
    scores = mdna_scores([("1-2022", 1, "10-K", "2023-02-15", "7", 0.2), ("z", 2, "10-Q", "2023-05-01", "I-2", 0.1)])
    universe = pd.DataFrame({"cik": [1], "industry_code": ["D"]})
    pca = {"model": "m", "dim": 2, "mean": [0.0, 0.0], "components": [[1.0, 0.0]]}
    scores["embedding"] = [np.array([3.0, 1.0]), None]
    real = real_features(scores, altman, universe, pca).set_index("accession")
    assert real.loc["1-2022", "emb_0"] == 3.0 and real.loc["1-2022", "altman_fiscal_year"] == 2022
    flags = prediction_flags(real.reset_index()).tolist()
    assert flags == ["no_altman_z", "no_altman_inputs;no_industry_code;no_embedding"]


def test_mdna_sql_selects_what_mdna_mask_selects():
    import duckdb

    rows = pd.DataFrame({"form": ["10-K", "10-K405", "10-Q", "10-Q/A", "10-K", "10-Q", "8-K"],
                         "item": ["7", "7", "I-2", "I-2", "7A", "2", "7"]})
    con = duckdb.connect()
    con.register("sections", rows)
    got = con.execute(f"select {mdna_sql()} m from sections").df()["m"].tolist()
    assert got == mdna_mask(rows).tolist() == [True, True, True, True, False, False, False]
    aliased = con.execute(f"select count(*) from sections s where {mdna_sql('s')}").fetchone()[0]
    assert aliased == 4


def test_fill_scores_scores_only_units_without_scores_one_batch_at_a_time():
    units = pd.DataFrame({"accession": ["a", "b", "c"], "item": ["7", "7", "I-2"], "positive": [0.5, np.nan, np.nan]})
    seen = []

    def score(texts):
        seen.append(list(texts))
        return [{**{s: float(len(t)) for s in NLP_SCORES}, "n_sentences": 2} for t in texts]

    batches = [pd.DataFrame({"accession": ["a", "b"], "item": ["7", "7"], "text": ["stored", "bb"]}),
               pd.DataFrame({"accession": ["c", "zz"], "item": ["I-2", "7"], "text": ["cccc", "unknown"]})]
    out, n = fill_scores(units, iter(batches), score)
    assert n == 2 and seen == [["bb"], ["cccc"]]  # 'a' kept its stored score; 'zz' is not a unit
    assert out["positive"].tolist() == [0.5, 2.0, 4.0] and out["n_sentences"].tolist()[1:] == [2, 2]
    assert out["risk"].isna().tolist() == [True, False, False]


def test_passage_units_cut_each_batch_like_text_units():
    text = " ".join(f"Sentence number {i} has five words." for i in range(200))
    batch = pd.DataFrame({"accession": ["a", "b"], "cik": [1, 2], "form": ["10-K", "10-Q"],
                          "filing_date": ["2024-01-01"] * 2, "item": ["7", "I-2"], "text": [text, text]})
    split = lambda t: [s + "." for s in t.split(".") if s.strip()]
    one = passage_units([batch], 100, 50, split)
    two = passage_units([batch.iloc[:1], batch.iloc[1:], batch.iloc[:0]], 100, 50, split)
    pd.testing.assert_frame_equal(one, two)
    assert set(one["accession"]) == {"a", "b"} and one["passage"].min() == 0 and one["n_words"].between(50, 150).all()
    assert passage_units([], 100, 50).empty
