"""Feature engineering of the credit assets as plain functions over DataFrames (no dagster).

* Synthetic firms (JumpStart's design): :func:`score_units` gives every text unit its 11 NLP scores,
  :func:`filing_split` chooses the test rows by source filing, :func:`tabtext_table` assembles ratios, scores
  and the embedding reduced by a PCA fitted on the training rows only, :func:`shuffle_text` builds the
  control in which each firm gets a random text unit instead of the rank-joined one.
* Real filings: :func:`real_features` pairs each MD&A with the issuer's latest annual Altman ratios filed by
  then, for :func:`choose_models`' models to score.
* A real label: :func:`next_year_distress_rows` and :func:`compare_feature_sets` ask whether an MD&A's scores
  and embedding add anything to this year's ratios for predicting next year's Altman Z'' distress zone,
  with company-grouped cross-validation and bootstrap intervals.

Why the control matters: :func:`finsec_assets.ml.altman.rank_join` pairs firms sorted by noisy Z with text
units sorted by ``text_rank``, a fixed sum of ten of the eleven scores, and those scores are TabText features.
The rating can be read back from the "text" whatever the text says (uniform random scores rank-joined the
same way lift binary accuracy as much), so TabText's gain over tabular on these data is built in by the join.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .altman import INVESTMENT_GRADE, NLP_SCORES, mdna_mask, ratios_from_jumpstart_columns
from .rating import apply_embedding_pca, fit_embedding_pca, grouped_test_mask

__all__ = ["RATIOS", "TABULAR_FEATURES", "MODEL_VARIANTS", "CONTROL_VARIANTS", "TEXT_UNIT_COLUMNS",
           "RANK_JOIN_CAVEAT", "score_units", "reuse_scores", "mdna_vectors", "filing_vectors", "filing_split", "tabtext_table",
           "variant_features", "shuffle_text", "real_features", "prediction_flags", "choose_models",
           "next_year_distress_rows", "compare_feature_sets", "DISTRESS_LABELS", "REAL_RATIOS", "mdna_sql",
           "fill_scores", "passage_units"]

RATIOS: tuple[str, ...] = ("A", "B", "C", "D", "E")
TABULAR_FEATURES: tuple[str, ...] = ("industry_code", *RATIOS, "altman_z")
MODEL_VARIANTS: tuple[str, ...] = ("tabular", "tabtext", "tabtext_shuffled")
CONTROL_VARIANTS = frozenset({"tabtext_shuffled"})
# What a firm inherits from its text unit: the reference, the filer's industry, the scores (and embedding).
TEXT_UNIT_COLUMNS: tuple[str, ...] = ("accession", "cik", "form", "filing_date", "item", "passage", "industry_code",
                                      *NLP_SCORES)
RANK_JOIN_CAVEAT = (
    "The TabText gain on these data is built in by rank_join: firms sorted by noisy Z are paired with text units "
    "sorted by text_rank, a fixed sum of ten of the eleven NLP scores, and those scores are TabText features, so "
    "the rating can be read back from the 'text' whatever it says (JumpStart's design; uniform random scores "
    "rank-joined the same way lift binary accuracy as much). It is not evidence that MD&A text predicts credit "
    "quality. The tabtext_shuffled control (each firm gets a random text unit of its split side) shows what the "
    "text adds without the join: about nothing.")


# ================================================================================================================
# Reading the corpus by SQL (the lake): only MD&A rows, only the columns needed
# ================================================================================================================
def mdna_sql(alias: str | None = None) -> str:
    """A SQL condition true for MD&A rows, the same as :func:`finsec_assets.ml.altman.mdna_mask`."""
    a = f"{alias}." if alias else ""
    return (f"((upper({a}form) like '10-K%' and {a}item = '7') or "
            f"(upper({a}form) like '10-Q%' and {a}item = 'I-2'))")


def fill_scores(units: pd.DataFrame, text_batches: Iterable[pd.DataFrame],
                score: Callable[[list[str]], list[dict]] | None = None) -> tuple[pd.DataFrame, int]:
    """Fill the 11 scores (and ``n_sentences``) of units that lack them from batches of ``accession, item, text``,
    one batch at a time, so the texts never sit in memory together. Returns the units and how many were scored."""
    if score is None:
        from ..text.scoring import score_texts

        def score(texts):
            return score_texts(texts, with_counts=True)

    units = units.copy()
    for col in [*NLP_SCORES, "n_sentences"]:
        if col not in units.columns:
            units[col] = np.nan
    position = {key: i for i, key in enumerate(zip(units["accession"], units["item"]))}
    scored = 0
    for batch in text_batches:
        rows = [position.get(key) for key in zip(batch["accession"], batch["item"])]
        keep = [i for i, r in enumerate(rows) if r is not None and pd.isna(units.iat[r, units.columns.get_loc("positive")])]
        if not keep:
            continue
        scores = pd.DataFrame(score(batch["text"].iloc[keep].tolist()))
        target = [rows[i] for i in keep]
        for col in [*NLP_SCORES, "n_sentences"]:
            if col in scores.columns:
                units.iloc[target, units.columns.get_loc(col)] = scores[col].to_numpy(dtype=float)
        scored += len(keep)
    return units, scored


def passage_units(mdna_batches: Iterable[pd.DataFrame], window_words: int, stride_words: int,
                  split_sentences: Callable[[str], list[str]] | None = None) -> pd.DataFrame:
    """MD&A passages (see :func:`finsec_assets.ml.altman.text_units`) from batches of MD&A rows, one batch at a
    time."""
    from .altman import text_units

    frames = [text_units(batch, 1 << 62, window_words=window_words, stride_words=stride_words,
                         split_sentences=split_sentences)[0] for batch in mdna_batches if len(batch)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["accession", "cik", "form", "filing_date", "item", "passage", "text", "n_words"])
    return pd.concat(frames, ignore_index=True)


# ================================================================================================================
# Synthetic firms: text units, split, TabText table, control
# ================================================================================================================
def reuse_scores(units: pd.DataFrame, nlp_scores: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Whole-MD&A units with the scores ``nlp_scores`` already holds (NaN where it has none), and how many."""
    units = units.copy()
    if not (len(nlp_scores) and set(NLP_SCORES) <= set(nlp_scores.columns)):
        for col in [*NLP_SCORES, "n_sentences"]:
            units[col] = np.nan
        return units, 0
    have = nlp_scores.drop_duplicates(["accession", "item"]).set_index(["accession", "item"])
    cols = [*NLP_SCORES] + (["n_sentences"] if "n_sentences" in have.columns else [])
    units = units.join(have[cols], on=["accession", "item"])
    return units, int(units["positive"].notna().sum())


def score_units(units: pd.DataFrame, kind: str, nlp_scores: pd.DataFrame,
                score: Callable[[list[str]], list[dict]] | None = None) -> tuple[pd.DataFrame, int]:
    """Units with the 11 scores (and ``n_sentences``): whole MD&As reuse ``nlp_scores`` rows; passages, and MD&As
    it lacks, are scored with ``score`` (default :func:`finsec_assets.text.scoring.score_texts` with counts).
    Returns the units and how many reused their stored scores."""
    if score is None:
        from ..text.scoring import score_texts

        def score(texts):
            return score_texts(texts, with_counts=True)

    units, reused = reuse_scores(units, nlp_scores) if kind == "mdna" else (units.copy(), 0)
    todo = units.index if "positive" not in units.columns else units.index[units["positive"].isna()]
    if len(todo):
        scores = pd.DataFrame(score(units.loc[todo, "text"].tolist()), index=todo)
        for col in [*NLP_SCORES, "n_sentences"]:
            units.loc[todo, col] = scores[col] if col in scores.columns else np.nan
    return units, reused


def mdna_vectors(pooled_embeddings: pd.DataFrame, model_name: str) -> pd.DataFrame:
    """``accession, item, embedding`` of one encoder's pooled vectors (empty frame when there are none)."""
    if pooled_embeddings.empty or "embedding" not in pooled_embeddings.columns:
        return pd.DataFrame(columns=["accession", "item", "embedding"])
    chosen = pooled_embeddings[pooled_embeddings["model"] == model_name]
    return chosen.drop_duplicates(["accession", "item"])[["accession", "item", "embedding"]]


def filing_vectors(firms: pd.DataFrame, pooled_embeddings: pd.DataFrame, model_name: str) -> np.ndarray | None:
    """Each firm's MD&A vector from ``pooled_embeddings`` (NaN rows where missing); None when no firm has one."""
    found = firms[["accession", "item"]].merge(mdna_vectors(pooled_embeddings, model_name), how="left",
                                               on=["accession", "item"])
    have = found["embedding"].map(lambda v: isinstance(v, (list, np.ndarray))).to_numpy()
    if not have.any():
        return None
    dim = len(found.loc[have, "embedding"].iloc[0])
    return np.stack([np.asarray(v, np.float32) if ok else np.full(dim, np.nan, np.float32)
                     for v, ok in zip(found["embedding"], have)])


def filing_split(firms: pd.DataFrame, test_size: float = 0.2, seed: int = 42, label: str = "Rating") -> np.ndarray:
    """``"train"``/``"test"`` per firm, grouped by the source filing (accession) of its text unit and stratified by
    ``label`` as far as groups allow: overlapping passages of one MD&A never sit on both sides."""
    test = grouped_test_mask(firms[label].astype(str).to_numpy(), firms["accession"].astype(str).to_numpy(),
                             test_size, seed)
    return np.where(test, "test", "train").astype(object)


def tabtext_table(firms: pd.DataFrame, split: Sequence[str], vectors: np.ndarray | None, n_components: int,
                  seed: int = 42) -> tuple[pd.DataFrame, dict | None]:
    """One row per synthetic firm: text reference, industry, ratios A-E and Z, the 11 scores, ``emb_*`` (the
    vectors reduced by a PCA fitted on the *training* firms only), labels and ``split``. Returns the table and
    the PCA (None without vectors). Rows with NaN features are kept here; the caller decides."""
    split = np.asarray(split, dtype=object)
    if len(split) != len(firms) or not set(split) <= {"train", "test"}:
        raise ValueError(f"tabtext_table: split needs 'train'/'test' for each of the {len(firms)} firms")
    ids = [c for c in ("firm", "accession", "cik", "form", "filing_date", "item", "passage", "industry_code")
           if c in firms.columns]
    df = pd.concat([firms[ids].reset_index(drop=True),
                    ratios_from_jumpstart_columns(firms, "TotalAssets").reset_index(drop=True),
                    firms[list(NLP_SCORES)].reset_index(drop=True)], axis=1)
    pca = None
    if vectors is not None and n_components > 0:
        vectors = np.asarray(vectors, dtype=np.float64)
        if len(vectors) != len(firms):
            raise ValueError(f"tabtext_table: {len(vectors)} vectors for {len(firms)} firms")
        usable = np.isfinite(vectors).all(axis=1)
        fit_rows = usable & (split == "train")
        if fit_rows.sum() < 2:
            raise ValueError(f"tabtext_table: only {int(fit_rows.sum())} training firm(s) have an embedding; "
                             f"the PCA needs two")
        pca = fit_embedding_pca(vectors[fit_rows], n_components, seed)
        pca["fitted_on"] = "train"
        reduced = np.full((len(df), len(pca["components"])), np.nan)
        reduced[usable] = apply_embedding_pca(vectors[usable], pca)
        for i in range(reduced.shape[1]):
            df[f"emb_{i}"] = reduced[:, i]
    df["rating"] = firms["Rating"].to_numpy()
    df["investment_grade"] = df["rating"].isin(INVESTMENT_GRADE)
    df["split"] = split
    return df, pca


def variant_features(dataset: pd.DataFrame, variant: str) -> list[str]:
    """The feature columns of a model variant: tabular = industry, ratios, Z; tabtext(_shuffled) adds the scores
    and embedding components."""
    if variant not in MODEL_VARIANTS:
        raise ValueError(f"variant_features: unknown variant {variant!r}; known: {MODEL_VARIANTS}")
    if variant == "tabular":
        return list(TABULAR_FEATURES)
    return [*TABULAR_FEATURES, *NLP_SCORES, *[c for c in dataset.columns if c.startswith("emb_")]]


def shuffle_text(dataset: pd.DataFrame, seed: int = 42) -> pd.DataFrame:
    """The control: each firm's text unit (reference, industry, scores, embedding) replaced by a random one from
    the same split side, i.e. a random join instead of rank_join. Financials, labels and the split stay; groups
    (source filings) stay on their side."""
    if "split" not in dataset.columns:
        raise ValueError("shuffle_text: the dataset needs a 'split' column (see filing_split)")
    cols = [c for c in (*TEXT_UNIT_COLUMNS, *[c for c in dataset.columns if c.startswith("emb_")])
            if c in dataset.columns]
    rng = np.random.default_rng(seed)
    source = np.arange(len(dataset))
    for side in ("train", "test"):
        rows = np.flatnonzero(dataset["split"].to_numpy() == side)
        source[rows] = rng.permutation(rows)
    out = dataset.copy()
    for c in cols:
        out[c] = dataset[c].to_numpy()[source]
    return out


# ================================================================================================================
# Real filings
# ================================================================================================================
def _latest_annual(mdna: pd.DataFrame, altman: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Each row of ``mdna`` (cik, filing_date) with the issuer's latest annual Altman row filed by that date."""
    fin = altman[["cik", "accession", "fiscal_year", "filed", *columns]].rename(
        columns={"accession": "altman_accession", "fiscal_year": "altman_fiscal_year"}).copy()
    fin["cik"] = fin["cik"].astype(int)
    fin["filed"] = pd.to_datetime(fin["filed"])
    mdna = mdna.copy()
    mdna["cik"] = mdna["cik"].astype(int)
    mdna["filing_date"] = pd.to_datetime(mdna["filing_date"])
    return pd.merge_asof(mdna.sort_values("filing_date"), fin.sort_values("filed"), left_on="filing_date",
                         right_on="filed", by="cik", direction="backward").drop(columns="filed")


def real_features(mdna: pd.DataFrame, altman: pd.DataFrame, universe: pd.DataFrame, pca: dict | None) -> pd.DataFrame:
    """One row per real MD&A (rows of ``nlp_scores``, optionally with their pooled ``embedding``): its scores, the
    issuer's industry and latest annual Altman ratios filed by then, and the embedding projected with the model's
    PCA (``emb_*``, NaN where the MD&A has no vector)."""
    mdna = mdna[mdna_mask(mdna)].drop_duplicates(["accession", "item"]).copy()
    industry = universe.set_index(universe["cik"].astype(int))["industry_code"]
    mdna["industry_code"] = mdna["cik"].astype(int).map(industry)
    mdna = _latest_annual(mdna, altman, [*RATIOS, "altman_z", "zone"])
    if pca is not None:
        if "embedding" not in mdna.columns:
            mdna["embedding"] = None
        has = mdna["embedding"].map(lambda v: isinstance(v, (list, np.ndarray)) and len(v) == pca["dim"]).to_numpy()
        reduced = np.full((len(mdna), len(pca["components"])), np.nan)
        if has.any():
            reduced[has] = apply_embedding_pca(np.stack(mdna.loc[has, "embedding"].map(np.asarray)), pca)
        for i in range(reduced.shape[1]):
            mdna[f"emb_{i}"] = reduced[:, i]
    return mdna.drop(columns="embedding", errors="ignore").reset_index(drop=True)


def prediction_flags(real: pd.DataFrame) -> pd.Series:
    """';'-separated reasons a real row is scored with missing features (LightGBM's missing branch)."""
    checks = [(real["A"].isna(), "no_altman_inputs"), (real["altman_z"].isna() & real["A"].notna(), "no_altman_z"),
              (real["industry_code"].isna(), "no_industry_code")]
    if "emb_0" in real.columns:
        checks.append((real["emb_0"].isna(), "no_embedding"))
    flags = pd.Series("", index=real.index)
    for mask, flag in checks:
        flags = flags.where(~mask, flags + flag + ";")
    return flags.str.rstrip(";")


def choose_models(registry: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The 7-class model with the best validation macro F1 and the binary one with the best validation ROC AUC,
    among real variants (controls excluded). The test figures play no part."""
    real = registry[~registry["model_variant"].isin(CONTROL_VARIANTS)]
    if real.empty:
        raise ValueError("choose_models: the registry holds no model besides controls")
    chosen = []
    for task, metric in (("multiclass", "val_macro_f1"), ("binary", "val_roc_auc")):
        rows = real[real["task"] == task]
        if rows.empty:
            raise ValueError(f"choose_models: no {task} model in the registry")
        if metric not in rows.columns:
            raise ValueError(f"choose_models: the registry lacks {metric}; retrain rating_models")
        chosen.append(rows.sort_values([metric, "model_variant"], ascending=[False, True],
                                       na_position="last").iloc[0])
    return chosen[0], chosen[1]


# ================================================================================================================
# A real label: next year's Altman Z'' distress zone
# ================================================================================================================
# label name -> next year's Z'' zones counted as positive
DISTRESS_LABELS: dict[str, tuple[str, ...]] = {"distress": ("distress",), "grey_or_distress": ("grey", "distress")}
REAL_RATIOS: tuple[str, ...] = (*RATIOS, "X4", "altman_z_double_prime")


def next_year_distress_rows(mdna: pd.DataFrame, altman: pd.DataFrame) -> pd.DataFrame:
    """One row per real MD&A (rows of ``nlp_scores``, optionally with their pooled ``embedding``) whose issuer has
    annual Altman inputs filed by then *and* for the next fiscal year: this year's ratios (A-E, X4 = BE/TL, Z''),
    the 11 scores, the vector (``embedding``, None where missing), next year's Z'' zone and one boolean column per
    :data:`DISTRESS_LABELS` entry."""
    need = ["cik", "accession", "fiscal_year", "filed", *REAL_RATIOS, "zone_double_prime"]
    missing = [c for c in need if c not in altman.columns]
    if missing:
        raise ValueError(f"next_year_distress_rows: altman_inputs lacks {missing}")
    keys = [c for c in ("accession", "cik", "form", "filing_date", "item", "embedding") if c in mdna.columns]
    mdna = mdna[mdna_mask(mdna)].drop_duplicates(["accession", "item"])[keys + list(NLP_SCORES)]
    rows = _latest_annual(mdna, altman, REAL_RATIOS).dropna(subset=["altman_fiscal_year"])
    nxt = altman[["cik", "fiscal_year", "zone_double_prime"]].dropna().copy()
    nxt["cik"] = nxt["cik"].astype(int)
    nxt = nxt.sort_values("fiscal_year").drop_duplicates(["cik", "fiscal_year"], keep="last")
    nxt = nxt.rename(columns={"fiscal_year": "next_fiscal_year", "zone_double_prime": "next_zone_double_prime"})
    rows["next_fiscal_year"] = rows["altman_fiscal_year"].astype(int) + 1
    rows = rows.merge(nxt, on=["cik", "next_fiscal_year"], how="inner")
    for name, zones in DISTRESS_LABELS.items():
        rows[name] = rows["next_zone_double_prime"].isin(zones)
    if "embedding" not in rows.columns:
        rows["embedding"] = None
    rows["embedding"] = rows["embedding"].map(lambda v: np.asarray(v, np.float32)
                                              if isinstance(v, (list, np.ndarray)) else None)
    rows["filing_date"] = rows["filing_date"].dt.date.astype(str)
    return rows.sort_values(["cik", "filing_date", "item"]).reset_index(drop=True)


def _classifier(numeric: list[str], embedding: list[str], n_components: int):
    """Median imputation (with missing indicators) and scaling of the numeric features, a PCA of the embedding
    columns, an L2 logistic regression with balanced class weights: all fitted on the training fold only."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    parts = [("num", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True,
                                                        keep_empty_features=True)),
                               ("scale", StandardScaler())]), numeric)]
    if embedding:
        parts.append(("emb", PCA(n_components=n_components), embedding))
    return Pipeline([("features", ColumnTransformer(parts)),
                     ("model", LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))])


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def compare_feature_sets(rows: pd.DataFrame, label: str, feature_sets: dict[str, tuple[list[str], bool]], *,
                         folds: int = 5, repeats: int = 20, bootstrap: int = 1000, n_components: int = 4,
                         seed: int = 42) -> pd.DataFrame:
    """Out-of-fold predictions of ``label`` for each feature set (name -> (numeric columns, with embedding)),
    with folds grouped by company (``cik``), repeated ``repeats`` times with different company-to-fold draws.

    One row per feature set with ROC AUC, Brier score and balanced accuracy of the repeat-averaged predictions,
    a 95% interval from resampling *companies* with replacement (``bootstrap`` draws), the spread over repeats,
    and one row per non-first set for the paired AUC difference against the first (same bootstrap draws).
    Rows without an embedding are dropped when a set uses it, so every set sees the same rows. Not estimable
    (fewer than two companies on either side of the label): the metrics are NaN and ``note`` says why.
    """
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    if label not in rows.columns:
        raise ValueError(f"compare_feature_sets: no label column {label!r}")
    if not feature_sets:
        raise ValueError("compare_feature_sets: no feature sets")
    if any(emb for _, emb in feature_sets.values()):
        rows = rows[rows["embedding"].map(lambda v: v is not None)]
    rows = rows.reset_index(drop=True)
    y = rows[label].astype(bool).to_numpy().astype(int)
    groups = rows["cik"].astype(int).to_numpy()
    pos_companies = len(np.unique(groups[y == 1]))
    neg_companies = len(np.unique(groups[y == 0]))
    base = {"label": label, "rows": len(rows), "companies": len(np.unique(groups)), "positives": int(y.sum()),
            "positive_companies": pos_companies}
    names = list(feature_sets)
    if pos_companies < 2 or neg_companies < 2:
        note = (f"not estimable: {int(y.sum())} positive row(s) from {pos_companies} company(ies), "
                f"{int((1 - y).sum())} negative from {neg_companies}; need two companies on each side")
        return pd.DataFrame([{**base, "feature_set": n, "auc": np.nan, "note": note} for n in names])
    n_folds = min(folds, len(np.unique(groups)))
    emb_matrix = (np.stack(rows["embedding"].to_numpy()).astype(np.float64)
                  if any(e for _, e in feature_sets.values()) else None)
    oof: dict[str, np.ndarray] = {}
    repeat_auc: dict[str, list[float]] = {}
    for name, (numeric, with_emb) in feature_sets.items():
        X = rows[list(numeric)].apply(pd.to_numeric, errors="coerce").astype(float)
        X = X.replace([np.inf, -np.inf], np.nan)
        emb_cols: list[str] = []
        if with_emb:
            emb_cols = [f"e{i}" for i in range(emb_matrix.shape[1])]
            X = pd.concat([X, pd.DataFrame(emb_matrix, columns=emb_cols)], axis=1)
        preds = np.zeros((repeats, len(rows)))
        for r in range(repeats):
            for tr, te in GroupKFold(n_folds, shuffle=True, random_state=seed + r).split(X, y, groups):
                if len(np.unique(y[tr])) < 2:
                    preds[r, te] = y[tr].mean()
                    continue
                k = max(1, min(n_components, len(tr) - 1, len(emb_cols))) if emb_cols else 0
                model = _classifier(list(numeric), emb_cols, k).fit(X.iloc[tr], y[tr])
                preds[r, te] = model.predict_proba(X.iloc[te])[:, 1]
        oof[name] = preds.mean(axis=0)
        repeat_auc[name] = [_auc(y, p) for p in preds]
    rng = np.random.default_rng(seed)
    companies = np.unique(groups)
    members = {c: np.flatnonzero(groups == c) for c in companies}
    draws = [np.concatenate([members[c] for c in rng.choice(companies, len(companies))]) for _ in range(bootstrap)]
    boot = {n: np.array([_auc(y[d], oof[n][d]) for d in draws]) for n in names}
    out = []
    for name in names:
        p = oof[name]
        brier = np.array([np.mean((oof[name][d] - y[d]) ** 2) for d in draws])
        out.append({**base, "feature_set": name, "auc": _auc(y, p),
                    "auc_ci_low": float(np.nanpercentile(boot[name], 2.5)),
                    "auc_ci_high": float(np.nanpercentile(boot[name], 97.5)),
                    "auc_repeat_sd": float(np.nanstd(repeat_auc[name])),
                    "brier": float(np.mean((p - y) ** 2)), "brier_ci_low": float(np.percentile(brier, 2.5)),
                    "brier_ci_high": float(np.percentile(brier, 97.5)),
                    "balanced_accuracy": float(balanced_accuracy_score(y, p >= 0.5)), "note": ""})
    for name in names[1:]:
        diff = boot[name] - boot[names[0]]
        out.append({**base, "feature_set": f"{name} minus {names[0]}", "auc": out[names.index(name)]["auc"] - out[0]["auc"],
                    "auc_ci_low": float(np.nanpercentile(diff, 2.5)), "auc_ci_high": float(np.nanpercentile(diff, 97.5)),
                    "note": f"paired company bootstrap; share of draws where {name} is better: "
                            f"{float(np.nanmean(diff > 0)):.2f}"})
    return pd.DataFrame(out)
