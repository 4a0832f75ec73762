"""The credit assets materialized on small upstream tables (stored the way the IO manager stores them) and the
bundled XBRL company facts: altman_inputs -> synthetic_altman_financials -> tabtext_dataset -> rating_models ->
rating_model_metrics -> rating_predictions, and next_year_distress_experiment."""

import functools
import json
import os
import subprocess
import sys

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from finsec_assets.defs.common import FinsecResource
from finsec_assets.defs.credit.assets import (altman_inputs, next_year_distress_experiment, rating_model_metrics,
                                              rating_models, rating_predictions, synthetic_altman_financials,
                                              tabtext_dataset)
from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.embeddings.assets import pooled_embeddings
from finsec_assets.defs.text.assets import filing_sections, nlp_scores
from finsec_assets.ml.altman import RATINGS
from finsec_assets.ml.embeddings import DEFAULT_MODEL_NAME
from finsec_assets.ml.rating import RatingModel
from finsec_assets.storage.lake import open_lake
from finsec_assets.text.scoring import SCORE_NAMES, score_texts

from .helpers import check_results, output_metadata, resources

UPSTREAM = [company_universe, filing_index, raw_filings, filing_sections, nlp_scores, pooled_embeddings]
CREDIT = [altman_inputs, synthetic_altman_financials, tabtext_dataset, rating_models, rating_model_metrics,
          rating_predictions, next_year_distress_experiment]
QUARTER = "2024-01-01"
FILINGS = [  # accession, cik, form, filing_date
    ("0000104169-24-000056", 104169, "10-K", "2024-03-15"),
    ("0000320193-24-000006", 320193, "10-Q", "2024-02-02"),
    ("0001318605-24-000002", 1318605, "10-K", "2024-01-29"),
    ("0000354950-24-000011", 354950, "10-K", "2024-03-13"),
]
VOCAB = {
    "good": "strong growth improved record success gains favorable efficient profitable achieved stable safe",
    "bad": "loss decline adverse impairment weak litigation default fraud risk uncertain volatile restructuring",
    "plain": "the company sales quarter year revenue costs operations segment customers products market",
}


def mdna_text(seed: int, sentences: int = 300) -> str:
    """Sentences mixing plain, good and bad words, with the mix drifting along the text so passages differ."""
    rng = np.random.default_rng(seed)
    words = {k: v.split() for k, v in VOCAB.items()}
    out = []
    for i in range(sentences):
        tone = "good" if rng.random() < (i / sentences if seed % 2 else 1 - i / sentences) else "bad"
        picks = list(rng.choice(words["plain"], 6)) + list(rng.choice(words[tone], rng.integers(1, 4)))
        rng.shuffle(picks)
        out.append(" ".join(picks).capitalize() + ".")
    return " ".join(out)


@functools.lru_cache(maxsize=1)
def upstream_tables() -> dict[str, pd.DataFrame]:
    """company_universe, one quarter of filing_sections, nlp_scores of its MD&As, and 8-d pooled_embeddings."""
    universe = pd.DataFrame({"cik": [104169, 320193, 1318605, 354950], "ticker": ["WMT", "AAPL", "TSLA", "HD"],
                             "name": ["Walmart", "Apple", "Tesla", "Home Depot"], "sic": [5331, 3571, 3711, 5211],
                             "industry_code": ["G", "D", "D", "G"]})
    rows = []
    for i, (acc, cik, form, date) in enumerate(FILINGS):
        item = "7" if form == "10-K" else "I-2"
        text = mdna_text(i)
        for it, body in ((item, text), ("1A" if form == "10-K" else "II-1A", mdna_text(10 + i, 20))):
            rows.append({"accession": acc, "cik": cik, "form": form, "filing_date": date, "item": it, "title": it,
                         "text": body, "n_chars": len(body), "n_words": len(body.split()), "flags": []})
    sections = pd.DataFrame(rows)
    mdna = sections[sections["item"].isin(["7", "I-2"])].reset_index(drop=True)
    keys = mdna[["accession", "cik", "form", "filing_date", "item"]]
    scores = pd.DataFrame(score_texts(mdna["text"].tolist(), with_counts=True)).drop(columns=["flags"])
    vectors = np.random.default_rng(0).normal(size=(len(mdna), 8)).astype(np.float32)
    return {"company_universe": universe, "filing_sections": sections, "nlp_scores": pd.concat([keys, scores], axis=1),
            "pooled_embeddings": keys.assign(model=DEFAULT_MODEL_NAME, dim=8, embedding=list(vectors))}


def store_upstream() -> None:
    lake = open_lake()
    for asset, df in upstream_tables().items():
        if asset == "company_universe":
            lake.replace_table(asset, df)
        else:
            lake.replace_partition(asset, QUARTER, df)


def read_table(asset: str) -> pd.DataFrame:
    return open_lake().read_partition(asset, None)


def run(selection, run_config=None):
    return dg.materialize(UPSTREAM + CREDIT, selection=selection, resources=resources(), run_config=run_config or {},
                          raise_on_error=False)


FAST_MODELS = {"n_trials": 1, "cv_repeats": 0}
SYNTHETIC = {"passage_words": 100, "passage_stride_words": 100, "min_mdnas": 300}


def test_credit_graph_end_to_end(finsec_env):
    store_upstream()
    store = FinsecResource().object_store()

    result = run([altman_inputs])
    assert result.success
    assert all(check_results(result).values()), check_results(result)
    meta = output_metadata(result, "altman_inputs")
    assert meta["companies"] == 3  # Tesla has no company facts in the bundled sample: reported, not dropped silently
    assert "TSLA" in meta["companies_without_facts"]
    altman = read_table("altman_inputs")
    assert {"WMT", "AAPL", "HD"} == set(altman["ticker"])
    assert altman.groupby("cik")["period_end"].apply(lambda s: s.is_unique).all()

    result = run([synthetic_altman_financials], {"ops": {"synthetic_altman_financials": {"config": SYNTHETIC}}})
    assert result.success
    meta = output_metadata(result, "synthetic_altman_financials")
    firms = read_table("synthetic_altman_financials")
    assert meta["text_units"] == "passage" and "fewer than 300 MD&As" in meta["text_unit_note"]
    assert len(firms) == meta["firms"] and len(firms) >= 80  # 4 MD&As of ~3,000 words in 100-word passages
    assert firms.groupby("accession")["passage"].nunique().min() > 10
    assert set(firms["Rating"]) <= set(RATINGS) and firms["firm"].is_unique
    universe = {104169: "G", 320193: "D", 1318605: "D", 354950: "G"}
    assert (firms["industry_code"] == firms["cik"].map(universe)).all()  # each firm inherits its filing's industry
    assert "rating_shares_like_jumpstart" in str(check_results(result))

    broken = firms.copy()
    broken.loc[5, "EBIT"] = np.nan  # a NaN ratio: the firm is excluded, counted and reported
    open_lake().replace_table("synthetic_altman_financials", broken)
    result = run([tabtext_dataset], {"ops": {"tabtext_dataset": {"config": {"embed_passages": False,
                                                                           "embedding_components": 4}}}})
    assert result.success and all(check_results(result).values()), check_results(result)
    assert output_metadata(result, "tabtext_dataset")["excluded_nan_features"] == 1
    data = read_table("tabtext_dataset")
    assert len(data) == len(firms) - 1 and broken.loc[5, "firm"] not in set(data["firm"])
    assert {"A", "B", "C", "D", "E", "altman_z", *SCORE_NAMES, "emb_0", "emb_3", "rating", "investment_grade",
            "accession", "item", "passage", "industry_code"} <= set(data.columns)
    assert (data["embedding_level"] == "filing").all()
    assert (data["investment_grade"] == data["rating"].isin(["AAA", "AA", "A", "BBB"])).all()
    # the split keeps each source filing on one side; the PCA saw the training firms only
    assert data.groupby("accession")["split"].nunique().max() == 1 and set(data["split"]) == {"train", "test"}
    meta = output_metadata(result, "tabtext_dataset")
    assert meta["embedding_pca_fitted_on"] == "training firms only" and "rank_join" in meta["rank_join_caveat"]

    result = run([rating_models, rating_model_metrics], {"ops": {"rating_models": {"config": FAST_MODELS}}})
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    registry = read_table("rating_models")
    assert sorted(zip(registry["model_variant"], registry["task"])) == [
        ("tabtext", "binary"), ("tabtext", "multiclass"), ("tabtext_shuffled", "binary"),
        ("tabtext_shuffled", "multiclass"), ("tabular", "binary"), ("tabular", "multiclass")]
    assert registry.loc[registry["model_variant"] == "tabtext_shuffled", "control"].all()
    test_filings = set(data.loc[data["split"] == "test", "accession"])
    assert (registry["n_test"] == (data["split"] == "test").sum()).all() and len(test_filings) == 1
    assert "rating_models:shuffled_text_collapses_to_tabular" in check_results(result)
    for uri in registry["uri"]:
        bundle = json.loads(store.get_bytes(uri))
        model = RatingModel.from_bytes(bundle["rating_model"].encode())
        assert model.predict_proba(data.head(3)).shape[0] == 3
    meta = output_metadata(result, "rating_models")
    assert "data:image/png;base64" in meta["confusion_matrices"] and "data:image/png;base64" in meta["feature_importance"]
    metrics = read_table("rating_model_metrics")
    assert list(metrics.columns[:7]) == ["model_variant", "task", "accuracy", "balanced_accuracy", "macro_f1", "mcc",
                                         "roc_auc"]
    assert metrics.loc[metrics["task"] == "binary", "roc_auc"].between(0, 1).all()
    assert metrics.loc[metrics["task"] == "multiclass", "roc_auc"].isna().all()
    assert metrics["val_accuracy"].between(0, 1).all()
    assert "binary_accuracy_gain_tabtext_shuffled" in output_metadata(result, "rating_model_metrics")

    result = run([rating_predictions])
    assert result.success and all(check_results(result).values()), check_results(result)
    pred = read_table("rating_predictions")
    assert sorted(pred["accession"]) == sorted(a for a, *_ in FILINGS)
    assert np.allclose(pred[[f"p_{r}" for r in RATINGS]].sum(axis=1), 1)
    assert pred["model_version"].isin(registry["model_version"]).all()
    # chosen on validation figures among real variants, never the control
    real = registry[~registry["control"]]
    best = real[real["task"] == "multiclass"].sort_values(["val_macro_f1", "model_variant"],
                                                          ascending=[False, True]).iloc[0]
    assert (pred["model_version"] == best["model_version"]).all()
    assert set(pred["binary_model_variant"]) <= {"tabular", "tabtext"}
    by_acc = pred.set_index("accession")
    assert by_acc.loc["0001318605-24-000002", "flags"] == "no_altman_inputs"  # Tesla: no XBRL facts bundled
    # Walmart's 10-K filed 2024-03-15 is scored with the FY2024 inputs filed that day; Apple's 10-Q with FY2023
    assert by_acc.loc["0000104169-24-000056", "altman_fiscal_year"] == 2024
    assert by_acc.loc["0000320193-24-000006", "altman_fiscal_year"] == 2023


def test_synthetic_financials_refuses_more_firms_than_text_units(finsec_env):
    store_upstream()
    result = run([synthetic_altman_financials],
                 {"ops": {"synthetic_altman_financials": {"config": {**SYNTHETIC, "n_firms": 5000}}}})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "n_firms=5000 but the corpus gives only" in str(failure.event_specific_data.error)
    bad_anchor = run([synthetic_altman_financials],
                     {"ops": {"synthetic_altman_financials": {"config": {**SYNTHETIC, "anchors": {"ebit": -1.0}}}}})
    assert not bad_anchor.success
    failure = next(e for e in bad_anchor.all_events if e.event_type_value == "STEP_FAILURE")
    assert "anchors.ebit" in str(failure.event_specific_data.error)


def test_passages_get_their_own_embedding(finsec_env):
    store_upstream()
    store = FinsecResource().object_store()
    config = {**SYNTHETIC, "n_firms": 24, "passage_words": 200, "passage_stride_words": 200}
    assert run([synthetic_altman_financials], {"ops": {"synthetic_altman_financials": {"config": config}}}).success
    result = run([tabtext_dataset], {"ops": {"tabtext_dataset": {"config": {"embedding_components": 3}}}})
    assert result.success and all(check_results(result).values())
    data = read_table("tabtext_dataset")
    assert len(data) == 24 and (data["embedding_level"] == "passage").all()
    assert (data["embedding_model"] == DEFAULT_MODEL_NAME).all()
    pca = json.loads(store.get_bytes(data["embedding_pca_uri"].iloc[0]))
    assert pca["dim"] == 384 and len(pca["components"]) == 3
    # passages pool their MD&A's sentence vectors from the cache pooled_embeddings and filing_summaries share:
    # the first run encoded each MD&A once into it, a second run encodes no MD&A sentence at all
    first = output_metadata(result, "tabtext_dataset")
    assert first["embedding_mdnas"] == data["accession"].nunique() and first["embedding_mdna_sentences_encoded"] > 0
    again = run([tabtext_dataset], {"ops": {"tabtext_dataset": {"config": {"embedding_components": 3}}}})
    meta = output_metadata(again, "tabtext_dataset")
    assert meta["embedding_mdna_sentences_encoded"] == 0 and meta["embedding_mdna_sentences_cached"] > 0
    assert np.allclose(read_table("tabtext_dataset")[["emb_0", "emb_1", "emb_2"]], data[["emb_0", "emb_1", "emb_2"]],
                       atol=1e-5)


def test_next_year_distress_experiment_on_real_xbrl(finsec_env):
    """A real label: next year's Z'' zone from the bundled company facts, for the MD&As that have one."""
    store_upstream()
    store = FinsecResource().object_store()
    assert run([altman_inputs]).success
    config = {"repeats": 3, "bootstrap": 50}
    result = run([next_year_distress_experiment], {"ops": {"next_year_distress_experiment": {"config": config}}})
    assert result.success, [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    table = read_table("next_year_distress_experiment")
    meta = output_metadata(result, "next_year_distress_experiment")
    # Walmart's, Apple's and Home Depot's MD&As have annual inputs filed by then and for the next fiscal year
    assert meta["mdnas_with_next_year_zone"] == 3 and meta["companies"] == 3
    assert set(table["label"]) == {"distress", "grey_or_distress"}
    assert {"ratios", "ratios + MD&A scores", "ratios + MD&A scores + embedding"} <= set(table["feature_set"])
    # three companies cannot give two on each side of either label: reported as not estimable, never a number
    assert table["auc"].isna().all() and table["note"].str.startswith("not estimable").all()


# ================================================================================================================
# Memory: corpus assets read the lake by SQL, a batch at a time
# ================================================================================================================
MEASURE = """
import json, resource, sys
import dagster as dg
sys.path.insert(0, {root!r})
from finsec_assets_tests.defs.test_credit_assets import CREDIT, UPSTREAM
from finsec_assets_tests.defs.helpers import resources


def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


# Measure the run, not the imports: their transient peak would hide what the asset does. Linux resets the
# high-water mark when 5 is written to clear_refs.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = peak_mb()
result = dg.materialize(UPSTREAM + CREDIT, selection=[{asset!r}], resources=resources(), raise_on_error=False,
                        run_config={{"ops": {{{asset!r}: {{"config": {config!r}}}}}}})
print(json.dumps({{"ok": result.success, "peak_rss_mb": peak_mb(), "rss_before_mb": before}}))
"""


def store_corpus(copies: int, filings_per_quarter: int = 40) -> int:
    """``copies`` quarters, each holding ``filings_per_quarter`` filings of the sample's shape: an MD&A of ~3,000
    words plus ~200 kB of other items (a 10-K's size), replicated under new accession numbers. Every tenth MD&A
    has no stored scores, so the asset scores it from the text. Returns the number of filings."""
    tables = upstream_tables()
    lake = open_lake()
    lake.replace_table("company_universe", tables["company_universe"])
    mdna = tables["filing_sections"][tables["filing_sections"]["item"].isin(["7", "I-2"])].reset_index(drop=True)
    scores = tables["nlp_scores"]
    filler = mdna_text(99, 300) * 9
    n = 0
    for q in range(copies):
        quarter = f"{2010 + q // 4}-{3 * (q % 4) + 1:02d}-01"
        sections, stored = [], []
        for i in range(filings_per_quarter):
            src = mdna.iloc[i % len(mdna)]
            acc = f"{9000000000 + q:010d}-{q % 100:02d}-{i:06d}"
            row = {**src.to_dict(), "accession": acc}
            other = filler.replace(".", f" {acc}.")  # distinct text per filing, so nothing is shared in memory
            sections += [row, {**row, "item": "1" if src["form"] == "10-K" else "II-1A", "text": other,
                               "n_chars": len(other), "n_words": len(other.split())}]
            if i % 10:
                stored.append({**scores.iloc[i % len(scores)].to_dict(), "accession": acc})
            n += 1
        lake.replace_partition("filing_sections", quarter, pd.DataFrame(sections))
        lake.replace_partition("nlp_scores", quarter, pd.DataFrame(stored))
    return n


def peak_rss_mb(asset: str, config: dict) -> float:
    """Peak RSS of a fresh process while it materializes ``asset`` (after its imports)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = MEASURE.format(root=root, asset=asset, config=config)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"], proc.stderr[-3000:]
    return out["peak_rss_mb"]


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="peak RSS reset needs Linux /proc")
def test_synthetic_financials_peak_memory_does_not_grow_with_quarters(finsec_env, tmp_path, monkeypatch):
    """synthetic_altman_financials at 1x and 10x the rows (1 and 10 quarters of 40 filings, ~10 and ~100 MB of
    section text): peak RSS of the run within 1.5x. Loading every quarter into pandas, as it did through
    AllPartitionMapping, fails it (the load alone, measured the same way: 431 -> 756 MB; this asset: 534 -> 583 MB)."""
    peaks = {}
    for copies in (1, 10):
        home, dagster_home = tmp_path / f"finsec{copies}", tmp_path / f"dagster{copies}"
        dagster_home.mkdir()
        (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        monkeypatch.setenv("FINSEC_HOME", str(home))
        monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
        filings = store_corpus(copies)
        peaks[copies] = peak_rss_mb("synthetic_altman_financials", {"min_mdnas": 10})
        firms = read_table("synthetic_altman_financials")
        assert len(firms) == filings and "text" not in firms.columns  # whole MD&As: a reference, not a copy
        assert firms[["positive", "risk"]].notna().all().all()  # every tenth MD&A was scored from its text
    print(f"peak RSS: 1x {peaks[1]:.0f} MB, 10x {peaks[10]:.0f} MB")
    assert peaks[10] <= 1.5 * peaks[1], peaks
