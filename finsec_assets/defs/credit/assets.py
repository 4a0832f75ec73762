"""company_universe -> altman_inputs (XBRL); nlp_scores, filing_sections -> synthetic_altman_financials ->
tabtext_dataset (+ pooled_embeddings) -> rating_models -> rating_model_metrics, rating_predictions;
altman_inputs, nlp_scores, pooled_embeddings -> next_year_distress_experiment (a real label).

The feature engineering lives in finsec_assets.ml.credit_features; these bodies wire it to storage and metadata.

JumpStart's corporate credit rating solution as assets. Reproduce the seed's comparison table
(tabular vs TabText, binary and 7-class) once the text quarters are materialized:

    dagster asset materialize -m finsec_assets.definitions \\
        --select synthetic_altman_financials,tabtext_dataset,rating_models,rating_model_metrics
"""

import hashlib
import json

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from ...edgar.client import EdgarError
from ...edgar.parsing import EdgarDataError
from ...ml import altman as altman_module
from ...ml import credit_features as credit_features_module
from ...ml import rating as rating_module
from ...ml.altman import (INVESTMENT_GRADE, NLP_SCORES, RATINGS, AltmanAnchors, altman_inputs_from_facts, rank_join,
                          simulate_financials, text_units)
from ...ml.credit_features import (CONTROL_VARIANTS, DISTRESS_LABELS, MODEL_VARIANTS, RANK_JOIN_CAVEAT, REAL_RATIOS,
                                   choose_models, compare_feature_sets, filing_split, filing_vectors, fill_scores,
                                   mdna_sql, next_year_distress_rows, passage_units, prediction_flags, real_features,
                                   reuse_scores, score_units, shuffle_text, tabtext_table, variant_features)
from ...ml.rating import RatingModel, fit_and_evaluate, plot_confusion_matrix, plot_feature_importance
from ...storage.tables import content_hash
from ..common import FinsecResource, figure, md_list, png_metadata, source_version, table_output
from . import checks

ALTMAN_VERSION = source_version(altman_module, credit_features_module)
RATING_VERSION = source_version(altman_module, credit_features_module, rating_module)
TASK_LABELS = {"binary": "investment_grade", "multiclass": "rating"}
PROBA_COLUMNS = [f"p_{r}" for r in RATINGS]


def _md_table(df: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.to_markdown() if len(df) else "empty")


# ================================================================================================================
# altman_inputs
# ================================================================================================================
@dg.asset(group_name="credit", kinds={"python", "parquet"}, code_version=ALTMAN_VERSION,
          check_specs=checks.altman_inputs_checks)
def altman_inputs(context: dg.AssetExecutionContext, finsec: FinsecResource, company_universe: pd.DataFrame):
    """Per universe company and fiscal year (10-K): the eight Altman inputs from XBRL company facts, with the tag
    each came from, ratios A-E, Z, Z'' and zones. MVE is dei:EntityPublicFloat; without it Z is NaN (flag
    mve_missing) and Z'' is the score to read. Companies without facts are listed in the metadata."""
    client = finsec.edgar()
    frames, without = [], []
    for rec in company_universe.to_dict("records"):
        who = f"{rec.get('ticker') or ''} (CIK {int(rec['cik'])})".strip()
        try:
            facts = client.company_facts(int(rec["cik"]))
        except (EdgarError, EdgarDataError) as exc:
            without.append(f"{who}: no company facts ({exc})")
            continue
        df = altman_inputs_from_facts(facts)
        if df.empty:
            without.append(f"{who}: company facts hold no 10-K balance sheet")
            continue
        frames.append(df.assign(ticker=rec.get("ticker")))
    for line in without:
        context.log.warning(f"altman_inputs: {line}")
    if not frames:
        raise dg.Failure("altman_inputs: no universe company has XBRL company facts with a 10-K",
                         metadata={"companies_without_facts": md_list(without)})
    df = pd.concat(frames, ignore_index=True)
    df = df[["cik", "ticker", *[c for c in df.columns if c not in ("cik", "ticker")]]]
    latest = df.sort_values("period_end").groupby("cik").tail(1).set_index("ticker")
    flag_counts = pd.Series([f for fl in df["flags"] for f in fl.split(";") if f]).value_counts()
    fig, ax = figure(8, 4.5)
    for ticker, g in df.groupby("ticker"):
        ax.plot(pd.to_datetime(g["period_end"]), g["altman_z"].clip(-5, 15), marker="o", ms=3, label=ticker)
    ax.axhspan(1.81, 2.99, color="grey", alpha=0.15)
    ax.set_ylabel("Altman Z (clipped to [-5, 15]); grey zone shaded")
    ax.legend(fontsize=7, ncol=3)
    yield table_output(df, {
        "companies": int(df["cik"].nunique()), "fiscal_years": len(df),
        "companies_without_facts": md_list(without),
        "without_public_float": int(df["flags"].str.contains("mve_missing").sum()),
        "flags": _md_table(flag_counts.to_frame("fiscal_years")),
        "latest_year": _md_table(latest[["fiscal_year", "period_end", "altman_z", "zone", "altman_z_double_prime",
                                         "zone_double_prime", "flags"]].round(3)),
        "tag_fallbacks": dg.MetadataValue.md("\n".join(f"- **{k}**: {' -> '.join(v)}"
                                                        for k, v in altman_module.TAG_FALLBACKS.items())),
        "z_over_time": png_metadata(fig, "Altman Z by fiscal year"),
    })
    yield checks.accounting_identities(df)
    yield checks.every_missing_score_is_explained(df)


# ================================================================================================================
# synthetic_altman_financials
# ================================================================================================================
class SyntheticFinancialsConfig(dg.Config):
    n_firms: int | None = Field(default=None, description="Firms to simulate; None: one per text unit.")
    seed: int = Field(default=42, description="Seed of the generator (and of the unit sample when n_firms < units).")
    z_noise: float = Field(default=0.5, description="Standard deviation of the noise added to Z before rating.")
    perturbation: float = Field(default=0.3, description="Each input is scaled by 1 + perturbation * (U(0,1) - 0.5).")
    anchors: dict[str, float] = Field(default={},
                                      description="Overrides of the FRED 2021Q1 anchors, e.g. {'price_to_book': 3.5}.")
    min_mdnas: int = Field(default=300, description="Fewer whole MD&As than this (or than n_firms): MD&A passages "
                                                    "are the text units.")
    passage_words: int = Field(default=500, description="Passage window in words (sentence-aligned).")
    passage_stride_words: int = Field(default=250, description="A passage starts every this many words "
                                                               "(< window: overlapping).")
    replicate_negative_sign_bug: bool = Field(default=False, description="Rank text as JumpStart's notebook did "
                                                                         "(negative words raise the rank).")


def _ratings_figure(df: pd.DataFrame, shares: pd.DataFrame) -> dg.MetadataValue:
    fig, _ = figure(11, 4)
    fig.clf()
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = np.arange(len(RATINGS))
    ax1.bar(x - 0.2, shares["share"], 0.4, label=f"simulated (n={len(df)})")
    ax1.bar(x + 0.2, shares["jumpstart"], 0.4, label="JumpStart (n=3,286)")
    ax1.set_xticks(x, labels=list(RATINGS))
    ax1.set_title("rating shares")
    ax1.legend(fontsize=8)
    ax2.boxplot([df.loc[df["Rating"] == r, "altman_z"].to_numpy() for r in RATINGS], tick_labels=list(RATINGS))
    ax2.set_title("noise-free Altman Z by rating")
    return png_metadata(fig, "ratings")


def _text_units(finsec: FinsecResource, config: SyntheticFinancialsConfig, wanted: int):
    """The corpus's MD&A text units, read from the lake a batch at a time: whole MD&As (their keys, stored scores
    and, for those without, scores computed batch by batch; no text kept) when there are at least ``wanted``,
    else sentence-aligned passages. Returns (units, kind, MD&As, scores reused)."""
    lake = finsec.lake()
    if not lake.has_table("filing_sections"):
        raise dg.Failure("synthetic_altman_financials: filing_sections is empty; materialize some quarters first")
    mdna = f"{mdna_sql()} and length(trim(text)) > 0"
    keys = lake.sql(f"select accession, any_value(cik) cik, any_value(form) form, any_value(filing_date) filing_date, "
                    f"item, max(n_words) n_words from filing_sections where {mdna} group by accession, item "
                    f"order by accession, item")
    if keys.empty:
        raise dg.Failure("synthetic_altman_financials: filing_sections holds no MD&A text; materialize some quarters")
    text_query = (f"select accession, cik, form, filing_date, item, text from filing_sections where {mdna} "
                  f"and accession in (select unnest(?))")
    if len(keys) < wanted:
        batches = (b.to_pandas() for b in lake.batches(text_query, [keys["accession"].tolist()], batch_size=64))
        units = passage_units(batches, config.passage_words, config.passage_stride_words)
        units = units.sort_values(["accession", "item", "passage"]).reset_index(drop=True)
        return score_units(units, "passage", pd.DataFrame())[0], "passage", len(keys), 0
    stored = (lake.sql(f"select accession, item, {', '.join(NLP_SCORES)}, n_sentences from nlp_scores "
                       f"where {mdna_sql()}") if lake.has_table("nlp_scores") else pd.DataFrame())
    units, reused = reuse_scores(keys.assign(passage=-1), stored)
    todo = units.loc[units["positive"].isna(), "accession"].unique().tolist()
    if todo:
        batches = (b.to_pandas() for b in lake.batches(text_query, [todo], batch_size=64))
        units, _ = fill_scores(units, batches)
    return units, "mdna", len(keys), reused


@dg.asset(group_name="credit", kinds={"python", "parquet"}, code_version=ALTMAN_VERSION,
          deps=["nlp_scores", "filing_sections"], ins={"company_universe": dg.AssetIn()},
          check_specs=checks.synthetic_altman_financials_checks)
def synthetic_altman_financials(context: dg.AssetExecutionContext, config: SyntheticFinancialsConfig,
                                finsec: FinsecResource, company_universe: pd.DataFrame):
    """JumpStart's synthetic firms (FRED anchors, perturbations, rejection rules, noisy Z, rescale, shift, rating
    by Altman's median Z) paired with real MD&A text units by rank_join: firms sorted by noisy Z meet units sorted
    by text_rank, a fixed sum of ten of the 11 scores. The scores therefore encode the rating by construction:
    whatever TabText gains from them here is built into the data, not found in the text. Each firm inherits the
    industry of the filing its text came from. MD&As are read from the lake by SQL, a batch at a time, so memory
    does not grow with the number of quarters; whole-MD&A units keep their reference, not their text. The
    `negative` sign bug of JumpStart's notebook is fixed (configurable)."""
    try:
        anchors = AltmanAnchors.from_mapping(config.anchors)
    except ValueError as exc:
        raise dg.Failure(f"synthetic_altman_financials: {exc}") from exc
    wanted = max(config.n_firms or 0, config.min_mdnas)
    units, kind, n_mdnas, reused = _text_units(finsec, config, wanted)
    unscorable = units[list(NLP_SCORES)].isna().any(axis=1)
    if unscorable.any():
        context.log.warning(f"{int(unscorable.sum())} text unit(s) without a full set of scores (no sentences) excluded")
    units = units[~unscorable].reset_index(drop=True)
    n = config.n_firms or len(units)
    if n > len(units):
        raise dg.Failure(f"synthetic_altman_financials: n_firms={n} but the corpus gives only {len(units)} text units "
                         f"({kind}s of {n_mdnas} MD&As); lower n_firms, shorten passage_words or add quarters")
    if n < 2:
        raise dg.Failure(f"synthetic_altman_financials: {len(units)} text unit(s); the generator needs at least two")
    if n < len(units):
        units = units.sample(n, random_state=config.seed).reset_index(drop=True)
    simulation = {"anchors": anchors, "perturbation": config.perturbation, "z_noise": config.z_noise}
    try:
        firms = simulate_financials(n, config.seed, **simulation)
    except ValueError as exc:
        raise dg.Failure(f"synthetic_altman_financials: {exc}") from exc
    df = rank_join(firms, units, replicate_negative_sign_bug=config.replicate_negative_sign_bug)
    industry = company_universe.set_index(company_universe["cik"].astype(int))["industry_code"]
    df.insert(df.columns.get_loc("item") + 1, "industry_code", df["cik"].astype(int).map(industry))
    df["investment_grade"] = df["Rating"].isin(INVESTMENT_GRADE)
    df = df.sort_values("firm").reset_index(drop=True)

    shares = pd.DataFrame({"share": df["Rating"].value_counts(normalize=True),
                           "jumpstart": pd.Series(checks.JUMPSTART_SHARES)}).reindex(list(RATINGS)).fillna(0.0)
    unit_note = (f"{len(units)} whole MD&As" if kind == "mdna" else
                 f"{len(units)} passages of ~{config.passage_words} words (a new one every {config.passage_stride_words} "
                 f"words) cut from {n_mdnas} MD&As, because the corpus holds fewer than {wanted} MD&As")
    yield table_output(df, {
        "firms": n, "text_units": kind, "text_unit_note": unit_note, "mdnas": n_mdnas,
        "scores_reused_from_nlp_scores": reused, "units_without_scores_excluded": int(unscorable.sum()),
        "firms_without_industry_code": int(df["industry_code"].isna().sum()),
        "candidates": firms.attrs["candidates"], "rejected": firms.attrs["rejected"],
        "rejections_by_rule": dg.MetadataValue.json(firms.attrs["rejections_by_rule"]),
        "negative_sign": "JumpStart's bug replicated" if config.replicate_negative_sign_bug else "subtracted (bug fixed)",
        "rank_join_caveat": RANK_JOIN_CAVEAT,
        "rating_shares": _md_table(shares.round(4)), "distributions": _ratings_figure(df, shares),
    })
    yield checks.rating_shares_like_jumpstart(df, **simulation)


# ================================================================================================================
# tabtext_dataset
# ================================================================================================================
class TabTextConfig(dg.Config):
    embedding_components: int = Field(default=16, description="PCA components kept of the pooled embedding (0: none).")
    embed_passages: bool = Field(default=True, description="Passage units get their own pooled embedding (same "
                                 "encoder); False: they inherit their MD&A's vector from pooled_embeddings.")
    embedding_model: str | None = Field(default=None, description="Encoder for passages and the pooled_embeddings rows "
                                        "to use; None: all-MiniLM-L6-v2 (pooled_embeddings' default).")
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Share of source filings held out for test; all "
                                                                  "of a filing's passages go to the same side.")
    seed: int = 42


def _mdna_embeddings(finsec: FinsecResource, model_name: str, accessions: list | None = None,
                     ciks: list | None = None) -> pd.DataFrame:
    """``accession, item, model, embedding`` of one encoder's pooled MD&A vectors, only for these filings (or
    issuers), straight from the lake."""
    lake = finsec.lake()
    if not lake.has_table("pooled_embeddings"):
        return pd.DataFrame(columns=["accession", "item", "model", "embedding"])
    where, params = [f"model = ?", mdna_sql()], [model_name]
    if accessions is not None:
        where.append("accession in (select unnest(?))")
        params.append(list(accessions))
    if ciks is not None:
        where.append("cik in (select unnest(?))")
        params.append([int(c) for c in ciks])
    return lake.sql(f"select accession, item, model, embedding from pooled_embeddings where {' and '.join(where)}",
                    params)


def _passage_vectors(finsec: FinsecResource, encoder, firms: pd.DataFrame, batch_size: int = 16) -> tuple[np.ndarray, dict]:
    """Each passage firm's vector pooled from its MD&A's sentence vectors, read from the sentence-vector cache
    pooled_embeddings and filing_summaries fill (an MD&A missing from it is encoded once and written to it), so
    the text is not encoded again; MD&As are read from the lake a batch at a time."""
    from ...ml.embeddings import SentenceVectorCache

    cache = SentenceVectorCache(finsec.object_store())
    out = np.full((len(firms), encoder.dim), np.nan, np.float32)
    rows = firms.reset_index(drop=True).groupby(["accession", "item"]).indices
    stats = {"mdnas": 0, "mdna_sentences_encoded": 0, "mdna_sentences_cached": 0, "passage_sentences_encoded": 0}
    query = (f"select accession, item, text from filing_sections where {mdna_sql()} and accession in (select unnest(?))")
    lake = finsec.lake()
    for batch in lake.batches(query, [sorted({a for a, _ in rows})], batch_size=batch_size):
        mdnas = batch.to_pandas()
        mdnas = mdnas[[(a, i) in rows for a, i in zip(mdnas["accession"], mdnas["item"])]]
        mdnas = mdnas.drop_duplicates(["accession", "item"]).reset_index(drop=True)
        if mdnas.empty:
            continue
        vectors = encoder.section_vectors(mdnas["text"].astype(str).tolist(), cache)
        stats["mdnas"] += len(mdnas)
        stats["mdna_sentences_encoded"] += vectors.n_encoded_sentences
        stats["mdna_sentences_cached"] += vectors.n_cached_sentences
        for j, (accession, item) in enumerate(zip(mdnas["accession"], mdnas["item"])):
            for r in rows[(accession, item)]:
                out[r], encoded = vectors.passage_vector(j, str(firms["text"].iat[r]), encoder)
                stats["passage_sentences_encoded"] += encoded
    return out, stats


def _text_vectors(config: TabTextConfig, finsec: FinsecResource, firms: pd.DataFrame, meta: dict | None = None):
    """(vectors or None, level, model name): passages pooled here from their MD&A's cached sentence vectors,
    whole MD&As from pooled_embeddings."""
    from ...ml.embeddings import EmbeddingModelError, load_encoder, resolve_model

    if config.embedding_components <= 0:
        return None, "none", None
    try:
        model_name = resolve_model(config.embedding_model)[0]
        if (firms["passage"] >= 0).any() and config.embed_passages:
            vectors, stats = _passage_vectors(finsec, load_encoder(config.embedding_model), firms)
            if meta is not None:
                meta.update(stats)
            return vectors, "passage", model_name
    except EmbeddingModelError as exc:
        raise dg.Failure(f"tabtext_dataset: {exc}") from exc
    pooled = _mdna_embeddings(finsec, model_name, accessions=firms["accession"].unique().tolist())
    vectors = filing_vectors(firms, pooled, model_name)
    return vectors, ("filing" if vectors is not None else "none"), model_name


@dg.asset(group_name="credit", kinds={"python", "parquet"}, code_version=RATING_VERSION,
          ins={"synthetic_altman_financials": dg.AssetIn()}, deps=["pooled_embeddings"],
          check_specs=checks.tabtext_dataset_checks)
def tabtext_dataset(context: dg.AssetExecutionContext, config: TabTextConfig, finsec: FinsecResource,
                    synthetic_altman_financials: pd.DataFrame):
    """One row per synthetic firm: its text reference (accession, item, passage), industry code, ratios A-E and Z,
    the 11 NLP scores, its pooled text embedding reduced by a PCA fitted on the training firms only, the labels
    (7-class rating, investment grade) and `split`: train/test chosen by source filing, so overlapping passages of
    one MD&A never sit on both sides."""
    firms = synthetic_altman_financials
    if firms.empty:
        raise dg.Failure("tabtext_dataset: synthetic_altman_financials is empty")
    try:
        split = filing_split(firms, config.test_size, config.seed)
        encoding: dict = {}
        vectors, level, model_name = _text_vectors(config, finsec, firms, encoding)
        df, pca = tabtext_table(firms, split, vectors, config.embedding_components, config.seed)
    except ValueError as exc:
        raise dg.Failure(f"tabtext_dataset: {exc}") from exc
    meta: dict = {f"embedding_{k}": v for k, v in encoding.items()}
    pca_uri = None
    if pca is not None:
        pca.update({"model": model_name, "level": level})
        blob = json.dumps(pca).encode()
        pca_uri = finsec.object_store().put_bytes(f"credit/embedding_pca/{hashlib.sha256(blob).hexdigest()[:16]}.json",
                                                  blob)
        meta["embedding_variance_kept"] = float(np.sum(pca["explained_variance_ratio"]))
    if level == "filing":
        meta["firms_without_embedding"] = int(df["emb_0"].isna().sum())
    df["embedding_model"], df["embedding_level"], df["embedding_pca_uri"] = model_name, level, pca_uri
    features = variant_features(df, "tabtext")[1:]  # industry_code may be missing (LightGBM's missing branch)
    bad = ~np.isfinite(df[features].to_numpy(dtype=float)).all(axis=1)
    if bad.any():
        context.log.warning(f"tabtext_dataset: {int(bad.sum())} firm(s) with NaN or infinite features excluded")
    df = df[~bad].reset_index(drop=True)
    sides = df.groupby("split").agg(firms=("firm", "size"), filings=("accession", "nunique"))
    yield table_output(df, {
        "firms": len(df), "excluded_nan_features": int(bad.sum()), "embedding_level": level,
        "embedding_model": model_name or "none", "embedding_components": sum(c.startswith("emb_") for c in df.columns),
        "embedding_pca": dg.MetadataValue.path(pca_uri) if pca_uri else "none",
        "embedding_pca_fitted_on": "training firms only" if pca is not None else "none",
        "split": _md_table(sides), "split_grouped_by": "source filing (accession)",
        "features": dg.MetadataValue.md(", ".join(features)), "rank_join_caveat": RANK_JOIN_CAVEAT, **meta,
    })
    yield checks.no_nan_in_features(df, features)
    yield checks.labels_consistent(df)


# ================================================================================================================
# rating_models, rating_model_metrics
# ================================================================================================================
class RatingModelsConfig(dg.Config):
    n_trials: int = Field(default=8, description="Optuna trials per model (each: 3 validation folds with early stopping).")
    cv_repeats: int = Field(default=2, description="Repeats of 5-fold grouped stratified CV for the cv_* figures (0: none).")
    class_weight: str | None = Field(default="sqrt_balanced", description="sqrt_balanced, balanced or None.")
    seed: int = 42


def _variant_data(dataset: pd.DataFrame, variant: str, seed: int) -> pd.DataFrame:
    return shuffle_text(dataset, seed) if variant == "tabtext_shuffled" else dataset


def _model_figures(results: dict) -> dict:
    fig, _ = figure(15, 10)
    fig.clf()
    imp_fig, _ = figure(15, 9)
    imp_fig.clf()
    for i, ((variant, task), (model, m)) in enumerate(results.items()):
        col, row = MODEL_VARIANTS.index(variant), 0 if task == "binary" else 1
        plot_confusion_matrix(fig.add_subplot(2, len(MODEL_VARIANTS), row * len(MODEL_VARIANTS) + col + 1),
                              m["confusion_matrix"], m["classes"] if task == "multiclass" else ["not IG", "IG"],
                              f"{variant} {task}: accuracy {m['accuracy']:.3f}")
        plot_feature_importance(imp_fig.add_subplot(2, len(MODEL_VARIANTS), row * len(MODEL_VARIANTS) + col + 1),
                                model.feature_importance("gain"), 15, f"{variant} {task}")
    fig.tight_layout()
    imp_fig.tight_layout()
    return {"confusion_matrices": png_metadata(fig, "confusion matrices"),
            "feature_importance": png_metadata(imp_fig, "feature importance (gain)")}


@dg.asset(group_name="credit", kinds={"lightgbm", "parquet"}, code_version=RATING_VERSION,
          check_specs=checks.rating_models_checks)
def rating_models(context: dg.AssetExecutionContext, config: RatingModelsConfig, finsec: FinsecResource,
                  tabtext_dataset: pd.DataFrame):
    """LightGBM for {tabular, tabtext, tabtext_shuffled} x {binary investment grade, 7-class rating} on
    tabtext_dataset's split (grouped by source filing): Optuna on grouped validation folds, early stopping, class
    weights, grouped repeated CV. tabtext_shuffled is the control: the same pipeline with each firm's text unit
    replaced by a random one, which shows that TabText's gain comes from rank_join, not from the text. One row per
    model with its object-store URI, version, validation and test figures; confusion matrices and importances."""
    if tabtext_dataset.empty:
        raise dg.Failure("rating_models: tabtext_dataset is empty")
    store = finsec.object_store()
    pca_uri = tabtext_dataset["embedding_pca_uri"].dropna().unique().tolist()
    pca = json.loads(store.get_bytes(pca_uri[0])) if pca_uri else None
    trained_on = content_hash(tabtext_dataset)
    rows, results = [], {}
    for variant in MODEL_VARIANTS:
        data = _variant_data(tabtext_dataset, variant, config.seed)
        features = variant_features(data, variant)
        for task, label in TASK_LABELS.items():
            try:
                model, m = fit_and_evaluate(data, label, task, features=features, seed=config.seed,
                                            n_trials=config.n_trials, cv_repeats=config.cv_repeats,
                                            class_weight=config.class_weight, groups=data["accession"].to_numpy(),
                                            test_mask=(data["split"] == "test").to_numpy())
            except ValueError as exc:
                raise dg.Failure(f"rating_models: {variant} {task}: {exc}") from exc
            bundle = json.dumps({"format": "finsec-rating-bundle/1", "model_variant": variant, "task": task,
                                 "trained_on": trained_on, "rating_model": model.to_bytes().decode(),
                                 "embedding_pca": pca if variant != "tabular" else None}).encode()
            version = hashlib.sha256(bundle).hexdigest()[:12]
            uri = store.put_bytes(f"credit/rating_models/{variant}-{task}-{version}.json", bundle)
            if m["excluded_classes"]:
                context.log.warning(f"{variant} {task}: classes too rare to stratify, excluded: {m['excluded_classes']}")
            results[(variant, task)] = (model, m)
            rows.append(registry_row(variant, task, label, version, uri, m, features, trained_on))
    registry = pd.DataFrame(rows)
    table = registry.set_index(["model_variant", "task"])[["val_accuracy", "accuracy", "balanced_accuracy", "macro_f1",
                                                           "mcc", "roc_auc", "cv_accuracy_mean", "cv_accuracy_std"]]
    yield table_output(registry, {
        "metrics": _md_table(table.round(3)), **_model_figures(results),
        "rows": int(len(tabtext_dataset)), "trained_on": trained_on, "split": "grouped by source filing",
        "rank_join_caveat": RANK_JOIN_CAVEAT,
    })
    yield checks.shuffled_text_collapses_to_tabular(registry)


def registry_row(variant: str, task: str, label: str, version: str, uri: str, m: dict, features: list[str],
                 trained_on: str) -> dict:
    """One rating_models row: what the model is, where it lives, its validation, test and CV figures."""
    return {
        "model_variant": variant, "task": task, "label": label, "control": variant in CONTROL_VARIANTS,
        "model_version": version, "uri": uri,
        **{k: m[k] for k in ("accuracy", "balanced_accuracy", "macro_f1", "mcc", "roc_auc")},
        **{f"val_{k}": m[f"val_{k}"] for k in ("accuracy", "macro_f1", "roc_auc")},
        "f1_investment_grade": m.get("f1", np.nan),
        "cv_accuracy_mean": m.get("cv_accuracy_mean", np.nan), "cv_accuracy_std": m.get("cv_accuracy_std", np.nan),
        "cv_macro_f1_mean": m.get("cv_macro_f1_mean", np.nan),
        "n_train": m["n_train"], "n_test": m["n_test"], "n_features": len(features),
        "classes": ",".join(m["classes"]), "excluded_classes": json.dumps(m["excluded_classes"]),
        "best_params": json.dumps(m["best_params"]), "num_boost_round": m["num_boost_round"],
        "features": ",".join(features), "trained_on": trained_on,
    }


@dg.asset(group_name="credit", kinds={"python", "parquet"}, code_version=RATING_VERSION)
def rating_model_metrics(rating_models: pd.DataFrame) -> dg.Output:
    """The comparison table: model_variant x task with held-out accuracy, balanced accuracy, macro F1, MCC, ROC AUC
    (binary), validation figures and the repeated grouped-CV accuracy. tabtext_shuffled is the control: TabText's
    gain over tabular is built into the data by rank_join, and it disappears when the text is shuffled."""
    cols = ["model_variant", "task", "accuracy", "balanced_accuracy", "macro_f1", "mcc", "roc_auc",
            "f1_investment_grade", "val_accuracy", "val_macro_f1", "val_roc_auc", "cv_accuracy_mean",
            "cv_accuracy_std", "n_test", "control", "model_version"]
    df = rating_models[cols].reset_index(drop=True)
    acc = df.set_index(["model_variant", "task"])["accuracy"]
    gains = {f"{task}_accuracy_gain_{variant}": float(acc[(variant, task)] - acc[("tabular", task)])
             for task in TASK_LABELS for variant in ("tabtext", "tabtext_shuffled") if (variant, task) in acc}
    return table_output(df, {"table": _md_table(df.set_index(["model_variant", "task"]).round(3)), **gains,
                             "rank_join_caveat": RANK_JOIN_CAVEAT})


# ================================================================================================================
# next_year_distress_experiment
# ================================================================================================================
def _mdna_scores(finsec: FinsecResource, ciks: list | None = None) -> pd.DataFrame:
    """Keys and the 11 scores of the stored MD&As (of these issuers), straight from the lake."""
    lake = finsec.lake()
    cols = f"accession, cik, form, filing_date, item, {', '.join(NLP_SCORES)}"
    if not lake.has_table("nlp_scores"):
        return pd.DataFrame(columns=cols.split(", "))
    where, params = mdna_sql(), []
    if ciks is not None:
        where += " and cik in (select unnest(?))"
        params.append([int(c) for c in ciks])
    return lake.sql(f"select {cols} from nlp_scores where {where}", params or None)


class DistressExperimentConfig(dg.Config):
    folds: int = Field(default=5, description="Company-grouped folds (fewer when there are fewer companies).")
    repeats: int = Field(default=20, description="Repeats of the grouped CV with different company-to-fold draws.")
    bootstrap: int = Field(default=1000, description="Company bootstrap draws for the 95% intervals.")
    embedding_components: int = Field(default=4, description="PCA components of the MD&A embedding, fitted per fold.")
    embedding_model: str | None = Field(default=None, description="pooled_embeddings rows to use; None: the default.")
    seed: int = 42


@dg.asset(group_name="credit", kinds={"scikitlearn", "parquet"}, code_version=RATING_VERSION,
          ins={"altman_inputs": dg.AssetIn()}, deps=["nlp_scores", "pooled_embeddings"])
def next_year_distress_experiment(context: dg.AssetExecutionContext, config: DistressExperimentConfig,
                                  finsec: FinsecResource, altman_inputs: pd.DataFrame):
    """A real label, unlike the synthetic ratings: does an MD&A add to this year's Altman ratios (A-E, X4, Z'') in
    predicting next year's Z'' zone, computed from the issuer's XBRL? Logistic regressions on ratios vs ratios +
    MD&A scores (+ embedding), company-grouped repeated CV, 95% intervals from resampling companies. On the bundled
    sample this is a handful of companies: the intervals are wide, and that is the finding."""
    from ...ml.embeddings import resolve_model

    model_name = resolve_model(config.embedding_model)[0]
    ciks = altman_inputs["cik"].astype(int).unique().tolist()
    mdna = _mdna_scores(finsec, ciks=ciks).merge(
        _mdna_embeddings(finsec, model_name, ciks=ciks).drop_duplicates(["accession", "item"])
        [["accession", "item", "embedding"]], how="left", on=["accession", "item"])
    rows = next_year_distress_rows(mdna, altman_inputs)
    with_embedding = bool(rows["embedding"].map(lambda v: v is not None).any()) if len(rows) else False
    sets = {"ratios": (list(REAL_RATIOS), False), "ratios + MD&A scores": ([*REAL_RATIOS, *NLP_SCORES], False)}
    if with_embedding:
        sets["ratios + MD&A scores + embedding"] = ([*REAL_RATIOS, *NLP_SCORES], True)
    frames = [compare_feature_sets(rows, label, sets, folds=config.folds, repeats=config.repeats,
                                   bootstrap=config.bootstrap, n_components=config.embedding_components,
                                   seed=config.seed) for label in DISTRESS_LABELS]
    df = pd.concat(frames, ignore_index=True)
    for note in df["note"].dropna().unique():
        if note.startswith("not estimable"):
            context.log.warning(f"next_year_distress_experiment: {note}")
    shown = [c for c in ("label", "feature_set", "rows", "companies", "positives", "auc", "auc_ci_low", "auc_ci_high",
                         "brier", "balanced_accuracy", "note") if c in df.columns]
    yield table_output(df, {
        "mdnas_with_next_year_zone": len(rows), "companies": int(rows["cik"].nunique()) if len(rows) else 0,
        "with_embedding": int(rows["embedding"].map(lambda v: v is not None).sum()) if len(rows) else 0,
        "next_year_zones": _md_table(rows["next_zone_double_prime"].value_counts().to_frame("mdnas")
                                     if len(rows) else pd.DataFrame()),
        "results": _md_table(df[shown].set_index(["label", "feature_set"]).round(3)),
        "protocol": "logistic regression (median imputation, scaling, embedding PCA fitted per training fold), "
                    f"{config.repeats} x company-grouped {config.folds}-fold CV, {config.bootstrap} company bootstrap "
                    "draws for 95% intervals",
    })


# ================================================================================================================
# rating_predictions
# ================================================================================================================
def _load_bundle(store, uri: str) -> tuple[RatingModel, dict]:
    bundle = json.loads(store.get_bytes(uri))
    return RatingModel.from_bytes(bundle["rating_model"].encode()), bundle


class RatingPredictionsConfig(dg.Config):
    batch_rows: int = Field(default=10_000, description="MD&As scored per batch read from the lake.")


# Declarative automation fits predictions better than a schedule: they are cheap, and should follow each new
# filing's scores and embeddings (or a retrained model) within a tick, while the expensive model training stays on
# weekly_model_refresh. Not AutomationCondition.eager(): it waits until *every* upstream quarter since 1993 exists.
PREDICT_AFTER_NEW_INPUTS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("after new filings or a new model")


def _predict(batch: pd.DataFrame, multi: RatingModel, binary: RatingModel, altman: pd.DataFrame,
             universe: pd.DataFrame, pca: dict | None) -> pd.DataFrame:
    """One batch of real MD&As scored by both models."""
    real = real_features(batch, altman, universe, pca)
    proba = multi.predict_proba(real)
    out = real[["accession", "cik", "form", "filing_date", "item", "industry_code", "altman_accession",
                "altman_fiscal_year", "altman_z", "zone"]].copy()
    out["filing_date"] = out["filing_date"].dt.date.astype(str)
    for rating in RATINGS:
        out[f"p_{rating}"] = proba[rating] if rating in proba.columns else 0.0
    out["predicted_rating"] = multi.predict(real).astype(str)
    grade = binary.predict_proba(real)
    out["p_investment_grade"] = grade[grade.columns[1]]
    out["flags"] = prediction_flags(real)
    return out


@dg.asset(group_name="credit", kinds={"lightgbm", "parquet"}, code_version=RATING_VERSION,
          ins={"rating_models": dg.AssetIn(), "altman_inputs": dg.AssetIn(), "company_universe": dg.AssetIn()},
          deps=["nlp_scores", "pooled_embeddings"],
          check_specs=checks.rating_predictions_checks, automation_condition=PREDICT_AFTER_NEW_INPUTS)
def rating_predictions(context: dg.AssetExecutionContext, config: RatingPredictionsConfig, finsec: FinsecResource,
                       rating_models: pd.DataFrame, altman_inputs: pd.DataFrame, company_universe: pd.DataFrame):
    """Every real MD&A scored by the 7-class model with the best validation macro F1 and the binary model with the
    best validation ROC AUC (controls excluded; test figures play no part): text features of the filing plus the
    issuer's latest annual Altman ratios filed by then. MD&A scores and vectors stream from the lake in batches.
    One row per accession and item; missing inputs are NaN features (LightGBM's missing branch) and named in
    `flags`."""
    lake = finsec.lake()
    if not lake.has_table("nlp_scores"):
        raise dg.Failure("rating_predictions: nlp_scores is empty; nothing to score")
    try:
        best_multi, best_binary = choose_models(rating_models)
    except ValueError as exc:
        raise dg.Failure(f"rating_predictions: {exc}") from exc
    store = finsec.object_store()
    multi, multi_bundle = _load_bundle(store, best_multi["uri"])
    binary, binary_bundle = _load_bundle(store, best_binary["uri"])
    pca = multi_bundle["embedding_pca"] or binary_bundle["embedding_pca"]
    scores = f"s.accession, s.cik, s.form, s.filing_date, s.item, {', '.join(f's.{c}' for c in NLP_SCORES)}"
    if pca is not None and lake.has_table("pooled_embeddings"):
        query = (f"select {scores}, e.embedding from nlp_scores s left join (select accession, item, "
                 f"any_value(embedding) embedding from pooled_embeddings where model = ? group by accession, item) e "
                 f"on s.accession = e.accession and s.item = e.item where {mdna_sql('s')}")
        params = [pca["model"]]
    else:
        query, params = f"select {scores} from nlp_scores s where {mdna_sql('s')}", None
    frames = [_predict(b.to_pandas(), multi, binary, altman_inputs, company_universe, pca)
              for b in lake.batches(query, params, batch_size=config.batch_rows)]
    out = pd.concat([f for f in frames if len(f)], ignore_index=True) if frames else pd.DataFrame()
    if out.empty:
        raise dg.Failure("rating_predictions: nlp_scores holds no MD&A; nothing to score")
    out = out.drop_duplicates(["accession", "item"]).sort_values(["filing_date", "accession", "item"])
    out = out.reset_index(drop=True)
    out.insert(out.columns.get_loc("predicted_rating") + 1, "model_variant", best_multi["model_variant"])
    out.insert(out.columns.get_loc("model_variant") + 1, "model_version", best_multi["model_version"])
    out.insert(out.columns.get_loc("p_investment_grade") + 1, "binary_model_variant", best_binary["model_variant"])
    out.insert(out.columns.get_loc("binary_model_variant") + 1, "binary_model_version", best_binary["model_version"])
    shares = out["predicted_rating"].value_counts().reindex(list(RATINGS)).fillna(0).astype(int)
    yield table_output(out, {
        "filings": int(out["accession"].nunique()), "rows": len(out),
        "model": f"{best_multi['model_variant']} multiclass {best_multi['model_version']} "
                 f"(validation macro F1 {best_multi['val_macro_f1']:.3f})",
        "binary_model": f"{best_binary['model_variant']} binary {best_binary['model_version']} "
                        f"(validation ROC AUC {best_binary['val_roc_auc']:.3f})",
        "chosen_on": "validation folds of the training split (never the test split)",
        "without_altman_inputs": int(out["flags"].str.contains("no_altman_inputs").sum()),
        "without_embedding": int(out["flags"].str.contains("no_embedding").sum()),
        "predicted_ratings": _md_table(shares.to_frame("filings")),
        "caveat": "Models are trained on synthetic financials (JumpStart's design); these ratings illustrate the "
                  "pipeline and are not credit opinions.",
    })
    yield checks.probabilities_are_distributions(out, PROBA_COLUMNS)
