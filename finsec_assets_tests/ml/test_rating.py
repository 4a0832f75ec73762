"""LightGBM rating models: the protocol, the metrics, serialisation and bad input. Tiny budgets, one thread."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsec_assets.ml.rating import RatingModel, classification_metrics, default_features, fit_and_evaluate

FAST = {"n_trials": 2, "tuning_folds": 3, "cv_folds": 3, "cv_repeats": 1, "n_jobs": 1, "max_rounds": 300}
RATINGS = ["AAA", "AA", "A", "BBB", "BB", "B", "CCC"]


def firms(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Ratings driven by a score z = 2x + (industry effect) + noise; x2 is noise."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(list("DEHI"), n)
    z = 2 * rng.normal(size=n) + pd.Series(industry).map({"D": 0.0, "E": -1.5, "H": 1.5, "I": 0.0}).to_numpy()
    z_obs = z + 0.3 * rng.normal(size=n)
    bins = np.quantile(z_obs, [0.02, 0.12, 0.35, 0.6, 0.8, 0.95])
    rating = np.array(RATINGS[::-1])[np.searchsorted(bins, z_obs)]
    return pd.DataFrame({"accession": [f"0000000001-24-{i:06d}" for i in range(n)], "industry_code": industry,
                         "x": (z - pd.Series(industry).map({"D": 0.0, "E": -1.5, "H": 1.5, "I": 0.0})).to_numpy() / 2,
                         "x2": rng.normal(size=n), "rating": rating,
                         "investment_grade": np.isin(rating, ["AAA", "AA", "A", "BBB"])})


def test_binary_learns_the_signal_and_reports_every_metric():
    df = firms()
    model, m = fit_and_evaluate(df, "investment_grade", "binary", **FAST)
    assert m["accuracy"] > 0.85 and m["roc_auc"] > 0.92 and m["mcc"] > 0.7
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "mcc", "roc_auc", "f1", "logloss",
                "cv_accuracy_mean", "cv_accuracy_std", "cv_roc_auc_mean"):
        assert 0 <= m[key] <= 1 or key == "logloss", key
    assert m["n_train"] == 480 and m["n_test"] == 120 and m["cv_folds"] == 3
    assert m["features"] == ["industry_code", "x", "x2"]  # identifiers and the other label are not features
    assert np.asarray(m["confusion_matrix"]).sum() == 120
    proba = model.predict_proba(df.head(50))
    assert list(proba.columns) == ["False", "True"] and np.allclose(proba.sum(axis=1), 1)
    assert set(model.predict(df.head(5))) <= {False, True}
    # the industry effect is learned through the native categorical split
    assert model.feature_importance()["industry_code"] > model.feature_importance()["x2"]


def test_split_is_stratified_80_20_with_the_seed():
    df = firms()
    _, a = fit_and_evaluate(df, "investment_grade", "binary", **{**FAST, "cv_repeats": 0})
    _, b = fit_and_evaluate(df, "investment_grade", "binary", **{**FAST, "cv_repeats": 0})
    assert a["accuracy"] == b["accuracy"] and a["best_params"] == b["best_params"]
    positives = df["investment_grade"].mean()
    cm = np.asarray(a["confusion_matrix"])
    assert cm[1].sum() / cm.sum() == pytest.approx(positives, abs=0.01)


def test_multiclass_excludes_and_reports_a_class_too_rare_to_stratify():
    df = firms(500, seed=1)
    df.loc[df.index[:2], "rating"] = "AAA"
    df.loc[df.index[2:], "rating"] = df["rating"].iloc[2:].replace("AAA", "AA")
    model, m = fit_and_evaluate(df, "rating", "multiclass", **FAST)
    assert m["excluded_classes"] == {"AAA": 2} and m["n_excluded_rare_class"] == 2 and m["n_rows"] == 498
    assert m["classes"] == ["AA", "A", "BBB", "BB", "B", "CCC"]
    assert m["accuracy"] > 0.45 and np.isnan(m["roc_auc"])
    assert np.asarray(m["confusion_matrix"]).shape == (6, 6)
    assert list(model.predict_proba(df.head(3)).columns) == m["classes"]


def test_missing_labels_are_excluded_and_missing_features_kept():
    df = firms(400, seed=2)
    df["investment_grade"] = df["investment_grade"].astype(object)
    df.loc[df.index[:7], "investment_grade"] = None
    df.loc[df.index[10:30], "x2"] = np.nan
    df.loc[df.index[30:35], "x"] = np.inf
    _, m = fit_and_evaluate(df, "investment_grade", "binary", **{**FAST, "cv_repeats": 0})
    assert m["n_excluded_missing_label"] == 7 and m["n_rows"] == 393
    assert m["n_rows_with_missing_features"] == 25


def test_model_round_trips_through_bytes_and_scores_unseen_categories():
    df = firms(400, seed=3)
    model, _ = fit_and_evaluate(df, "rating", "multiclass", **{**FAST, "cv_repeats": 0})
    again = RatingModel.from_bytes(model.to_bytes())
    new = df.head(20).copy()
    new.loc[new.index[0], "industry_code"] = "Z"  # never seen in training
    pd.testing.assert_frame_equal(model.predict_proba(new), again.predict_proba(new))
    assert again.classes == model.classes and again.features == model.features
    with pytest.raises(ValueError, match="lacks feature"):
        again.predict_proba(new.drop(columns="x"))
    with pytest.raises(ValueError, match="not a saved rating model"):
        RatingModel.from_bytes(b"{}")


def test_classification_metrics_on_known_values():
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    m = classification_metrics(y, proba, [False, True], "binary")
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.75 and m["roc_auc"] == 1.0
    assert m["f1"] == pytest.approx(0.8) and m["mcc"] == pytest.approx(1 / np.sqrt(3))
    multi = classification_metrics(np.array([0, 1, 2]), np.eye(3)[[0, 1, 1]], ["A", "B", "C"], "multiclass")
    assert multi["accuracy"] == pytest.approx(2 / 3) and np.isnan(multi["roc_auc"])
    assert multi["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_default_features_skip_identifiers_and_labels():
    df = pd.DataFrame(columns=["accession", "cik", "item", "passage", "text", "industry_code", "A", "rating",
                               "investment_grade", "emb_0"])
    assert default_features(df, "rating") == ["industry_code", "A", "emb_0"]


@pytest.mark.parametrize("change, kwargs, message", [
    (None, {"label": "grade", "task": "binary"}, "label column 'grade' not in the table"),
    (None, {"label": "rating", "task": "regression"}, "task must be one of"),
    (None, {"label": "rating", "task": "binary"}, "binary label must be boolean or 0/1"),
    (None, {"label": "rating", "task": "multiclass", "features": ["x", "nope"]}, r"feature column\(s\) \['nope'\]"),
    (None, {"label": "rating", "task": "multiclass", "features": ["rating", "x"]}, "cannot also be a feature"),
    ("arrays", {"label": "rating", "task": "multiclass"}, "holds arrays"),
    ("one_class", {"label": "investment_grade", "task": "binary"}, "at least two classes"),
    (None, {"label": "rating", "task": "multiclass", "test_size": 1.5}, "test_size"),
    (None, {"label": "rating", "task": "multiclass", "class_weight": "heavy"}, "class_weight"),
])
def test_bad_input_is_refused_with_the_reason(change, kwargs, message):
    df = firms(120, seed=4)
    if change == "arrays":
        df["embedding"] = [np.zeros(3, np.float32)] * len(df)
    if change == "one_class":
        df["investment_grade"] = True
    with pytest.raises((ValueError, TypeError), match=message):
        fit_and_evaluate(df, **kwargs, **FAST)
    with pytest.raises(TypeError, match="DataFrame"):
        fit_and_evaluate(df.to_dict(), "rating", "multiclass")


def test_grouped_split_keeps_each_group_on_one_side_and_reports_validation_figures():
    df = firms(480, seed=5)
    df["accession"] = [f"0000000001-24-{i % 24:06d}" for i in range(len(df))]  # 24 filings, 20 rows each
    _, m = fit_and_evaluate(df, "investment_grade", "binary", groups=df["accession"], **{**FAST, "cv_repeats": 1})
    assert m["split"] == "grouped" and m["n_test"] % 20 == 0 and 0.15 <= m["n_test"] / 480 <= 0.3
    for key in ("val_accuracy", "val_macro_f1", "val_roc_auc"):
        assert 0.5 < m[key] <= 1, key
    assert m["cv_folds"] == 3


def test_a_given_test_mask_is_the_test_split():
    df = firms(300, seed=6)
    mask = np.arange(len(df)) >= 240
    model, m = fit_and_evaluate(df, "investment_grade", "binary", test_mask=mask, **{**FAST, "cv_repeats": 0})
    assert m["split"] == "given" and m["n_test"] == 60 and m["n_train"] == 240
    pred = model.predict_proba(df[mask]).to_numpy().argmax(axis=1)
    assert m["accuracy"] == pytest.approx((pred == df.loc[mask, "investment_grade"].astype(int)).mean())
    with pytest.raises(ValueError, match="test_mask must mark some rows"):
        fit_and_evaluate(df, "investment_grade", "binary", test_mask=np.zeros(len(df), bool), **FAST)
    with pytest.raises(ValueError, match="groups needs one non-null value per row"):
        fit_and_evaluate(df, "investment_grade", "binary", groups=["a"] * 10, **FAST)
    with pytest.raises(ValueError, match="single group"):
        fit_and_evaluate(df, "investment_grade", "binary", groups=np.where(mask, "b", "a"), **FAST)
