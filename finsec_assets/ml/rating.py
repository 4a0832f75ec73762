"""Credit-rating classifiers: LightGBM with Optuna, judged the way JumpStart's AutoGluon baseline was.

:func:`fit_and_evaluate` is the whole protocol in one call: a stratified 80/20
split with seed 42 (the reference's), an Optuna search scored on validation folds
of the training part only, early stopping inside every fold, class weights so the
rare ratings (AAA, CCC) count, then the held-out test metrics plus repeated
stratified cross-validation for figures that do not hinge on one split.
With ``groups`` (e.g. the source filing of each row) every split keeps a group on
one side, so overlapping passages of one MD&A never sit in both training and test;
``test_mask`` fixes the test rows instead (when they were chosen upstream, e.g. to fit
a PCA on the training rows only). The validation metrics (``val_*``, out-of-fold on
the training part with the chosen parameters) are the ones to pick a model by; the
test split is for reporting only.
Categorical columns (``industry_code``) go to LightGBM natively, missing feature
values too (LightGBM learns which side of a split they go); rows without a
label and classes too rare to stratify are excluded and counted, never dropped silently.

Pure library (lightgbm, optuna, scikit-learn); the model serialises to JSON bytes
(LightGBM's text format plus the feature/category/class metadata), no pickle.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, log_loss,
                             matthews_corrcoef, roc_auc_score)
from sklearn.model_selection import (RepeatedStratifiedKFold, StratifiedGroupKFold, StratifiedKFold,
                                     train_test_split)

from .altman import RATINGS

__all__ = ["TASKS", "ID_COLUMNS", "LABEL_COLUMNS", "METRIC_COLUMNS", "RatingModel", "fit_and_evaluate",
           "classification_metrics", "default_features", "grouped_test_mask", "fit_embedding_pca", "apply_embedding_pca",
           "plot_confusion_matrix", "plot_feature_importance"]

TASKS = ("binary", "multiclass")
# Columns that identify a row, carry text or record provenance: never features by default.
ID_COLUMNS = frozenset({"accession", "cik", "item", "passage", "firm", "text", "form", "filing_date", "ticker",
                        "name", "entity_name", "title", "model", "text_kind", "period_end", "filed", "fiscal_year",
                        "n_words", "n_sentences", "flags", "embedding_model", "embedding_level", "embedding_pca_uri"})
LABEL_COLUMNS = frozenset({"rating", "Rating", "investment_grade"})
METRIC_COLUMNS = ("accuracy", "balanced_accuracy", "macro_f1", "mcc", "roc_auc")
SINGLE_THREAD_BELOW_ROWS = 50_000


# ================================================================================================================
# The model
# ================================================================================================================
@dataclass
class RatingModel:
    """A trained booster with what it needs to score new rows: feature order, categories and class labels."""

    booster: lgb.Booster
    task: str
    label: str
    features: list[str]
    categories: dict[str, list[str]]
    classes: list
    params: dict = field(default_factory=dict)
    num_boost_round: int = 0

    def _matrix(self, df: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.features if c not in df.columns]
        if missing:
            raise ValueError(f"RatingModel: input lacks feature column(s) {missing}")
        X = df[self.features].copy()
        for col in self.features:
            if col in self.categories:
                X[col] = pd.Categorical(X[col].astype("string").astype(object), categories=self.categories[col])
            else:
                X[col] = pd.to_numeric(X[col], errors="coerce").astype(float).replace([np.inf, -np.inf], np.nan)
        return X

    def predict_proba(self, df: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities, one column per class (named by the class label as text)."""
        raw = self.booster.predict(self._matrix(df), num_iteration=self.num_boost_round or None)
        proba = np.column_stack([1.0 - raw, raw]) if self.task == "binary" else np.asarray(raw)
        return pd.DataFrame(proba, index=df.index, columns=[str(c) for c in self.classes])

    def predict(self, df: pd.DataFrame) -> pd.Series:
        proba = self.predict_proba(df).to_numpy()
        return pd.Series(np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)], index=df.index, name=self.label)

    def feature_importance(self, kind: str = "gain") -> pd.Series:
        values = self.booster.feature_importance(importance_type=kind)
        return pd.Series(values, index=self.booster.feature_name(), name=kind).sort_values(ascending=False)

    def to_bytes(self) -> bytes:
        meta = {"format": "finsec-rating-model/1", "task": self.task, "label": self.label, "features": self.features,
                "categories": self.categories, "classes": [_jsonable(c) for c in self.classes],
                "params": {k: _jsonable(v) for k, v in self.params.items()}, "num_boost_round": self.num_boost_round,
                "booster": self.booster.model_to_string(num_iteration=self.num_boost_round or None)}
        return json.dumps(meta).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "RatingModel":
        try:
            meta = json.loads(data)
            if meta.get("format") != "finsec-rating-model/1":
                raise ValueError(f"unknown format {meta.get('format')!r}")
            booster = lgb.Booster(model_str=meta["booster"])
        except (ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
            raise ValueError(f"RatingModel.from_bytes: not a saved rating model ({exc})") from exc
        return cls(booster=booster, task=meta["task"], label=meta["label"], features=meta["features"],
                   categories=meta["categories"], classes=meta["classes"], params=meta["params"],
                   num_boost_round=meta["num_boost_round"])


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


# ================================================================================================================
# Metrics
# ================================================================================================================
def classification_metrics(y_true, proba: np.ndarray, classes: list, task: str) -> dict:
    """accuracy, balanced_accuracy, macro_f1, mcc, logloss; for binary also roc_auc and f1 of the positive class.

    ``y_true`` holds class indices into ``classes``; ``proba`` is (n, len(classes)).
    Classes absent from ``y_true`` are still part of the label set, so a split that
    misses one does not change what macro averages mean.
    """
    y = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    labels = np.arange(len(classes))
    pred = proba.argmax(axis=1)
    out = {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if len(np.unique(y)) > 1 else float("nan"),
        "macro_f1": float(f1_score(y, pred, labels=labels[np.isin(labels, np.union1d(y, pred))], average="macro",
                                   zero_division=0)),
        "mcc": float(matthews_corrcoef(y, pred)),
        "logloss": float(log_loss(y, np.clip(proba, 1e-15, 1.0), labels=labels)),
        "roc_auc": float("nan"),
    }
    if task == "binary":
        out["f1"] = float(f1_score(y, pred, pos_label=1, zero_division=0))
        out["roc_auc"] = float(roc_auc_score(y, proba[:, 1])) if len(np.unique(y)) == 2 else float("nan")
    return out


# ================================================================================================================
# Fitting
# ================================================================================================================
def default_features(df: pd.DataFrame, label: str) -> list[str]:
    """Every column except the label, other label columns and identifiers (accession, cik, text, ...)."""
    return [c for c in df.columns if c != label and c not in LABEL_COLUMNS and c not in ID_COLUMNS]


def _prepare(df: pd.DataFrame, label: str, task: str, features: list[str] | None):
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"fit_and_evaluate: df must be a pandas DataFrame, got {type(df).__name__}")
    if task not in TASKS:
        raise ValueError(f"fit_and_evaluate: task must be one of {TASKS}, got {task!r}")
    if label not in df.columns:
        raise ValueError(f"fit_and_evaluate: label column {label!r} not in the table (columns: {list(df.columns)})")
    features = list(features) if features is not None else default_features(df, label)
    if not features:
        raise ValueError("fit_and_evaluate: no feature columns")
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise ValueError(f"fit_and_evaluate: feature column(s) {missing} not in the table")
    if label in features:
        raise ValueError(f"fit_and_evaluate: the label {label!r} cannot also be a feature")
    X = pd.DataFrame(index=df.index)
    categories: dict[str, list[str]] = {}
    for col in features:
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            if s.dropna().map(lambda v: isinstance(v, (list, tuple, np.ndarray, dict))).any():
                raise ValueError(f"fit_and_evaluate: feature {col!r} holds arrays; expand it into numeric columns "
                                 f"(e.g. PCA components) first")
            text = s.astype("string")
            categories[col] = sorted(text.dropna().unique().tolist())
            X[col] = pd.Categorical(text.astype(object), categories=categories[col])
        elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            X[col] = s.astype(float).replace([np.inf, -np.inf], np.nan)
        else:
            raise ValueError(f"fit_and_evaluate: feature {col!r} has unsupported dtype {s.dtype}")

    y_raw = df[label]
    label_missing = y_raw.isna()
    if task == "binary":
        values = set(y_raw[~label_missing].unique().tolist())
        if not values <= {0, 1, True, False}:
            raise ValueError(f"fit_and_evaluate: a binary label must be boolean or 0/1; {label!r} has values "
                             f"{sorted(map(str, values))[:10]}")
        classes: list = [False, True] if y_raw.dtype == bool else [0, 1]
        y = y_raw.map(lambda v: np.nan if pd.isna(v) else int(bool(v)))
    else:
        present = [v for v in y_raw[~label_missing].unique().tolist()]
        classes = ([r for r in RATINGS if r in present] if set(present) <= set(RATINGS) else sorted(present, key=str))
        index = {c: i for i, c in enumerate(classes)}
        y = y_raw.map(lambda v: np.nan if pd.isna(v) else index[v])
    return X, y, classes, categories, features, label_missing


def _class_weights(y: np.ndarray, n_classes: int, mode) -> np.ndarray:
    if mode is None:
        return np.ones(len(y))
    counts = np.bincount(y, minlength=n_classes).astype(float)
    if mode == "balanced":
        w = len(y) / (n_classes * np.where(counts > 0, counts, 1.0))
    elif mode == "sqrt_balanced":
        w = np.sqrt(len(y) / (n_classes * np.where(counts > 0, counts, 1.0)))
    else:
        raise ValueError(f"fit_and_evaluate: class_weight must be 'balanced', 'sqrt_balanced' or None, got {mode!r}")
    return w[y]


def _base_params(task: str, n_classes: int, seed: int, n_jobs: int | None) -> dict:
    params = {"objective": "binary" if task == "binary" else "multiclass", "verbosity": -1, "seed": seed,
              "deterministic": True, "force_col_wise": True, "feature_pre_filter": False, "bagging_freq": 1}
    if task == "multiclass":
        params["num_class"] = n_classes
    params["num_threads"] = n_jobs
    return params


def _train(params, X, y, w, rounds, valid=None, early_stopping_rounds=None):
    train_set = lgb.Dataset(X, y, weight=w, free_raw_data=False)
    kwargs = {}
    if valid is not None:
        Xv, yv, wv = valid
        kwargs["valid_sets"] = [lgb.Dataset(Xv, yv, weight=wv, reference=train_set)]
        kwargs["callbacks"] = [lgb.early_stopping(early_stopping_rounds, verbose=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return lgb.train(params, train_set, num_boost_round=rounds, **kwargs)


def _proba(booster, X, task, rounds=None):
    raw = booster.predict(X, num_iteration=rounds)
    return np.column_stack([1.0 - raw, raw]) if task == "binary" else np.asarray(raw)


def grouped_test_mask(y, groups, test_size: float = 0.2, seed: int = 42) -> np.ndarray:
    """Test rows of a split that keeps each group on one side, stratified by ``y`` as far as groups allow.

    One fold of ``round(1 / test_size)`` group folds (fewer when there are fewer groups),
    so the test share is about ``test_size``. Needs at least two groups.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    n_groups = len(pd.unique(groups))
    if n_groups < 2:
        raise ValueError(f"grouped split: need at least two groups (source filings) to keep apart, got {n_groups}")
    if not (0.0 < test_size < 1.0):
        raise ValueError(f"grouped split: test_size must be in (0, 1), got {test_size!r}")
    n_splits = max(2, min(round(1 / test_size), n_groups))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has fewer members than n_splits"
        _, test = next(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(y, y, groups))
    mask = np.zeros(len(y), dtype=bool)
    mask[test] = True
    return mask


def _folds(y: pd.Series, groups: np.ndarray | None, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds; with groups, grouped stratified folds (at most one per group)."""
    if groups is None:
        return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(y, y))
    n_splits = min(n_splits, len(pd.unique(groups)))
    if n_splits < 2:
        raise ValueError("fit_and_evaluate: the training rows come from a single group (source filing); "
                         "need at least two to validate on held-out groups")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(y, y, groups))


def fit_and_evaluate(df: pd.DataFrame, label: str, task: str, features: list[str] | None = None, seed: int = 42, *,
                     n_trials: int = 10, tuning_folds: int = 3, cv_folds: int = 5, cv_repeats: int = 2,
                     test_size: float = 0.2, class_weight: str | None = "sqrt_balanced", early_stopping_rounds: int = 30,
                     max_rounds: int = 1000, n_jobs: int | None = None, timeout_s: float | None = None,
                     groups=None, test_mask=None) -> tuple[RatingModel, dict]:
    """Train a LightGBM rating classifier and measure it; returns ``(model, metrics)``.

    ``task`` is ``"binary"`` (label boolean or 0/1, e.g. investment grade) or ``"multiclass"``
    (e.g. the 7 ratings). ``features=None`` takes every column that is not the label, another
    label or an identifier; text columns become LightGBM categoricals. The metrics dict holds
    the held-out test figures (accuracy, balanced_accuracy, macro_f1, mcc, roc_auc for binary,
    f1 of the positive class, logloss), ``cv_<metric>_mean``/``_std`` over ``cv_folds`` x
    ``cv_repeats`` stratified folds of all usable rows (fixed tuned parameters), counts of
    rows used and excluded, the best parameters and the confusion matrix of the test split.

    ``class_weight``: "sqrt_balanced" (default) weighs each class by sqrt(n / (k * n_class)),
    enough for AAA and CCC to register without trading away accuracy; "balanced" is full
    inverse frequency; None is unweighted. ``n_trials`` Optuna trials (default 10, sized for a
    2-core laptop; the first is a sensible default configuration), each scored by class-weighted
    log loss on ``tuning_folds`` validation folds of the training split with early stopping.
    ``n_jobs``: LightGBM threads; None uses one below 50,000 rows, where thread start-up costs
    more than it saves, and all cores above.

    ``groups`` (one value per row of ``df``, e.g. the source accession): the test split, the
    tuning folds and the CV folds keep each group on one side. ``test_mask`` (booleans per
    row of ``df``): these rows are the test split (nothing else is tested). ``val_<metric>``
    are out-of-fold figures on the tuning folds with the chosen parameters: choose models by
    them, never by the test figures.
    """
    import optuna

    X, y, classes, categories, features, label_missing = _prepare(df, label, task, features)
    if not (0.0 < test_size < 1.0):
        raise ValueError(f"fit_and_evaluate: test_size must be in (0, 1), got {test_size!r}")
    if n_trials < 1 or tuning_folds < 2 or cv_folds < 2 or cv_repeats < 0:
        raise ValueError(f"fit_and_evaluate: need n_trials >= 1, tuning_folds >= 2, cv_folds >= 2, cv_repeats >= 0; "
                         f"got {n_trials}, {tuning_folds}, {cv_folds}, {cv_repeats}")
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != len(df) or pd.isna(groups).any():
            raise ValueError(f"fit_and_evaluate: groups needs one non-null value per row ({len(df)}), "
                             f"got {len(groups)} with {int(pd.isna(groups).sum())} null")
    if test_mask is not None:
        test_mask = np.asarray(test_mask, dtype=bool)
        if len(test_mask) != len(df):
            raise ValueError(f"fit_and_evaluate: test_mask needs one boolean per row ({len(df)}), got {len(test_mask)}")
        if test_mask.all() or not test_mask.any():
            raise ValueError("fit_and_evaluate: test_mask must mark some rows, not all, as test")
    metrics: dict = {"label": label, "task": task, "n_rows_in": int(len(df)),
                     "n_excluded_missing_label": int(label_missing.sum()),
                     "split": "given" if test_mask is not None else "grouped" if groups is not None else "stratified"}
    keep = ~label_missing
    # Classes too rare to appear in every fold cannot be stratified: exclude them, count them.
    min_count = max(tuning_folds, cv_folds if cv_repeats else 0,
                    2 if test_mask is not None else math.ceil(1 / test_size), 2)
    counts = y[keep].value_counts()
    rare = {classes[int(i)]: int(c) for i, c in counts.items() if c < min_count}
    if rare:
        keep &= ~y.isin([classes.index(c) for c in rare])
    metrics["excluded_classes"] = {str(k): v for k, v in rare.items()}
    metrics["n_excluded_rare_class"] = int(sum(rare.values()))
    X, y = X[keep], y[keep]
    keep_rows = keep.to_numpy()
    groups = groups[keep_rows] if groups is not None else None
    test_mask = test_mask[keep_rows] if test_mask is not None else None
    if task == "multiclass" and rare:
        classes = [c for c in classes if c not in rare]
        index = {c: i for i, c in enumerate(classes)}
        y = df.loc[keep, label].map(index)
    y = y.astype(int)
    if y.nunique() < 2:
        raise ValueError(f"fit_and_evaluate: {label!r} needs at least two classes with >= {min_count} rows each; "
                         f"got counts {counts.to_dict()} (classes {classes})")
    metrics["n_rows"] = int(len(X))
    metrics["n_rows_with_missing_features"] = int(X.isna().any(axis=1).sum())
    metrics["classes"] = [str(c) for c in classes]
    n_classes = len(classes) if task == "multiclass" else 2

    if n_jobs is None:
        # On small tables OpenMP's thread start-up and spinning cost more than they save (measured: a 120-row
        # multiclass fit took 10 s on 2 busy cores with all threads, 0.4 s with one).
        n_jobs = 1 if len(X) < SINGLE_THREAD_BELOW_ROWS else 0
    if test_mask is None and groups is not None:
        test_mask = grouped_test_mask(y.to_numpy(), groups, test_size, seed)
    if test_mask is not None:
        if test_mask.all() or not test_mask.any():
            raise ValueError("fit_and_evaluate: after excluding rows without a usable label, the split leaves no "
                             "training or no test rows")
        X_tr, X_te, y_tr, y_te = X[~test_mask], X[test_mask], y[~test_mask], y[test_mask]
    else:
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    groups_tr = groups[~test_mask] if groups is not None else None
    w_tr = _class_weights(y_tr.to_numpy(), n_classes, class_weight)
    base = _base_params(task, n_classes, seed, n_jobs)

    folds = _folds(y_tr, groups_tr, tuning_folds, seed)

    def objective(trial) -> float:
        params = {**base,
                  "learning_rate": trial.suggest_float("learning_rate", 0.03, 0.3, log=True),
                  "num_leaves": trial.suggest_int("num_leaves", 4, 48, log=True),
                  "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5, 100, log=True),
                  "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
                  "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
                  "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
                  "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True)}
        scores, iters = [], []
        for tr, va in folds:
            booster = _train(params, X_tr.iloc[tr], y_tr.iloc[tr], w_tr[tr], max_rounds,
                             valid=(X_tr.iloc[va], y_tr.iloc[va], w_tr[va]), early_stopping_rounds=early_stopping_rounds)
            it = booster.best_iteration or booster.current_iteration()
            p = _proba(booster, X_tr.iloc[va], task, it)
            scores.append(log_loss(y_tr.iloc[va], np.clip(p, 1e-15, 1), sample_weight=w_tr[va], labels=np.arange(n_classes)))
            iters.append(it)
        trial.set_user_attr("best_iteration", int(np.mean(iters)))
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({"learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20, "feature_fraction": 0.9,
                         "bagging_fraction": 0.9, "lambda_l2": 1.0, "cat_smooth": 10.0})
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s)
    best = study.best_trial
    params = {**base, **best.params}
    rounds = max(1, int(best.user_attrs["best_iteration"]))

    # Validation figures: out-of-fold predictions on the tuning folds with the chosen parameters.
    oof = np.zeros((len(X_tr), n_classes))
    for tr, va in folds:
        b = _train(params, X_tr.iloc[tr], y_tr.iloc[tr], w_tr[tr], rounds)
        oof[va] = _proba(b, X_tr.iloc[va], task)
    metrics.update({f"val_{k}": v for k, v in classification_metrics(y_tr.to_numpy(), oof, classes, task).items()})

    booster = _train(params, X_tr, y_tr, w_tr, rounds)
    proba = _proba(booster, X_te, task)
    metrics.update(classification_metrics(y_te.to_numpy(), proba, classes, task))
    metrics.update({"n_train": int(len(X_tr)), "n_test": int(len(X_te)), "n_trials": len(study.trials),
                    "tuning_logloss": float(best.value), "best_params": best.params, "num_boost_round": rounds,
                    "class_weight": class_weight, "seed": seed, "features": features,
                    "confusion_matrix": confusion_matrix(y_te, proba.argmax(axis=1),
                                                         labels=np.arange(n_classes)).tolist()})

    if cv_repeats:
        cv_scores: dict[str, list[float]] = {}
        if groups is None:
            cv_splits = RepeatedStratifiedKFold(n_splits=cv_folds, n_repeats=cv_repeats, random_state=seed).split(X, y)
        else:
            cv_splits = [f for r in range(cv_repeats) for f in _folds(y, groups, cv_folds, seed + r)]
        n_cv = 0
        for tr, va in cv_splits:
            n_cv += 1
            w = _class_weights(y.iloc[tr].to_numpy(), n_classes, class_weight)
            b = _train(params, X.iloc[tr], y.iloc[tr], w, rounds)
            for k, v in classification_metrics(y.iloc[va].to_numpy(), _proba(b, X.iloc[va], task), classes, task).items():
                cv_scores.setdefault(k, []).append(v)
        for k, v in cv_scores.items():
            metrics[f"cv_{k}_mean"] = float(np.nanmean(v)) if not np.all(np.isnan(v)) else float("nan")
            metrics[f"cv_{k}_std"] = float(np.nanstd(v)) if not np.all(np.isnan(v)) else float("nan")
        metrics["cv_folds"] = n_cv

    model = RatingModel(booster=booster, task=task, label=label, features=features, categories=categories,
                        classes=classes, params=params, num_boost_round=rounds)
    return model, metrics


# ================================================================================================================
# Embedding reduction
# ================================================================================================================
def fit_embedding_pca(vectors: np.ndarray, n_components: int, seed: int = 42) -> dict:
    """PCA of document vectors as a JSON-able dict (mean, components), so the same projection scores new filings."""
    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) < 2:
        raise ValueError(f"fit_embedding_pca: need a 2-d array of at least two vectors, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise ValueError("fit_embedding_pca: vectors contain NaN or infinite values")
    k = int(min(n_components, len(vectors) - 1, vectors.shape[1]))
    if k < 1:
        raise ValueError(f"fit_embedding_pca: n_components must be >= 1, got {n_components}")
    pca = PCA(n_components=k, random_state=seed).fit(vectors)
    return {"dim": int(vectors.shape[1]), "mean": pca.mean_.tolist(), "components": pca.components_.tolist(),
            "explained_variance_ratio": pca.explained_variance_ratio_.tolist()}


def apply_embedding_pca(vectors: np.ndarray, pca: dict) -> np.ndarray:
    """Project vectors with a :func:`fit_embedding_pca` result; (n, k) float64."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[1] != pca["dim"]:
        raise ValueError(f"apply_embedding_pca: vectors of shape {vectors.shape} do not match the PCA's dim {pca['dim']}")
    return (vectors - np.asarray(pca["mean"])) @ np.asarray(pca["components"]).T


# ================================================================================================================
# Pictures (matplotlib; the caller owns the figure)
# ================================================================================================================
def plot_confusion_matrix(ax, matrix, labels, title: str = "") -> None:
    """Row-normalised confusion matrix with counts, true class on the rows."""
    m = np.asarray(matrix, dtype=float)
    shares = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels=labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels=labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, int(m[i, j]), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black",
                    fontsize=8)
    ax.set_title(title)


def plot_feature_importance(ax, importance: pd.Series, top: int = 20, title: str = "") -> None:
    """Horizontal bars of the ``top`` features by gain."""
    imp = importance.sort_values(ascending=False).head(top)[::-1]
    ax.barh(imp.index, imp.to_numpy())
    ax.set_xlabel(importance.name or "importance")
    ax.set_title(title)
