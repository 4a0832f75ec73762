"""Credit benchmark: how faithful the synthetic generator is, how the rating models compare with JumpStart's
AutoGluon baseline, where real bankrupt companies' last Altman scores land, and the controls that show the
TabText gain is built into the data by rank_join.

    .venv/bin/python benchmarks/credit.py [--trials 10] [--seeds 50] [--skip-models] [--only controls]

Needs ../shared (the reference table and the EDGAR company facts); parts whose inputs are absent are skipped.
The controls run on simulated firms with random "text" scores, and on the synthetic firms and real MD&A passages
of a materialized FINSEC_HOME (e.g. the demo's) when there is one. Prints tables only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from finsec_assets.ml.altman import (INVESTMENT_GRADE, JUMPSTART_COLUMNS, NLP_SCORES, RATINGS,
                                     altman_inputs_from_facts, rank_join, ratios_from_jumpstart_columns,
                                     simulate_financials)
from finsec_assets.ml.credit_features import (DISTRESS_LABELS, MODEL_VARIANTS, REAL_RATIOS, compare_feature_sets,
                                              filing_split, filing_vectors, shuffle_text, tabtext_table,
                                              variant_features)
from finsec_assets.ml.rating import fit_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REFERENCE_CSV = SHARED / "reference" / "ccr_tabular_data.csv"
FACTS = SHARED / "edgar" / "api" / "xbrl" / "companyfacts"
# AutoGluon, tabular only, binary, their 80/20 split with seed 42 (awslabs graph-based credit scoring sample).
AUTOGLUON = {"accuracy": 0.680, "f1": 0.719, "roc_auc": 0.749, "mcc": 0.352, "balanced_accuracy": 0.673}
# Chapter 11 petition dates (public court records).
BANKRUPT = {945436: ("SunEdison", "2016-04-21"), 865941: ("Celadon", "2019-12-08"),
            1731289: ("Nikola", "2025-02-19"), 1657853: ("Hertz", "2020-05-22")}


def table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    if df.index.nlevels > 1:
        return df.reset_index().to_markdown(index=False, floatfmt=floatfmt)
    return df.to_markdown(floatfmt=floatfmt)


def reference_features(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.concat([df[["industry_code"]] if "industry_code" in df else pd.DataFrame(index=df.index),
                     ratios_from_jumpstart_columns(df)], axis=1)
    out["rating"] = df["Rating"]
    out["investment_grade"] = df["Rating"].isin(INVESTMENT_GRADE)
    return out


def generator_fidelity(ref: pd.DataFrame, seeds: int) -> None:
    print("\n## Synthetic generator vs JumpStart's table (n = 3,286)\n")
    sim = simulate_financials(len(ref), seed=42)
    t = time.perf_counter()
    draws = [simulate_financials(len(ref), seed=s) for s in range(seeds)]
    per_draw = (time.perf_counter() - t) / seeds
    rows = []
    sim_r, ref_r = ratios_from_jumpstart_columns(sim), ratios_from_jumpstart_columns(ref)
    for col in [*JUMPSTART_COLUMNS, "A", "B", "C", "D", "E", "altman_z"]:
        a = (sim_r if col in sim_r else sim)[col]
        b = (ref_r if col in ref_r else ref)[col]
        rows.append({"column": col, "ref mean": b.mean(), "sim mean": a.mean(), "ref sd": b.std(), "sim sd": a.std(),
                     "ref min": b.min(), "sim min": a.min(), "ref max": b.max(), "sim max": a.max(),
                     "KS p-value": ks_2samp(a, b).pvalue})
    print(table(pd.DataFrame(rows).set_index("column"), ".4g"))
    shares = pd.DataFrame([d["Rating"].value_counts(normalize=True) for d in draws]).reindex(
        columns=list(RATINGS)).fillna(0.0)
    ref_share = ref["Rating"].value_counts(normalize=True).reindex(list(RATINGS)).fillna(0.0)
    seed42 = sim["Rating"].value_counts(normalize=True).reindex(list(RATINGS)).fillna(0.0)
    within = ((shares - ref_share).abs().max(axis=1) <= 0.02).mean()
    print(f"\nRating shares, % (reference; seed 42; mean and sd over {seeds} seeds; {per_draw * 1000:.1f} ms per draw)\n")
    print(table(pd.DataFrame({"reference": ref_share * 100, "seed 42": seed42 * 100, "mean over seeds": shares.mean() * 100,
                              "sd over seeds": shares.std() * 100,
                              "mean - ref": (shares.mean() - ref_share) * 100}), ".2f"))
    ig = shares[list(INVESTMENT_GRADE & set(RATINGS))].sum(axis=1)
    print(f"\ninvestment grade: reference {ref_share[list(INVESTMENT_GRADE)].sum() * 100:.1f}%, "
          f"simulated mean {ig.mean() * 100:.1f}% (sd {ig.std() * 100:.1f}); draws with every share within 2 points "
          f"of the reference: {within:.0%} (min-max rescaling ties each draw's bins to its two most extreme firms)")
    print("\nNoise-free Altman Z (JumpStart weights) by rating: mean (sd)\n")
    zr = ref_r.assign(Rating=ref["Rating"]).groupby("Rating")["altman_z"].agg(["mean", "std", "size"])
    zs = sim.groupby("Rating")["altman_z"].agg(["mean", "std", "size"])
    print(table(pd.DataFrame({"ref mean": zr["mean"], "ref sd": zr["std"], "ref n": zr["size"], "sim mean": zs["mean"],
                              "sim sd": zs["std"], "sim n": zs["size"]}).reindex(list(RATINGS))))


def models_on_reference(ref: pd.DataFrame, trials: int) -> None:
    print("\n## LightGBM, tabular only, on JumpStart's table (stratified 80/20, seed 42) vs AutoGluon\n")
    data = reference_features(ref)
    rows = []
    for task, label in (("binary", "investment_grade"), ("multiclass", "rating")):
        for name, features in (("ratios + Z + industry", ["industry_code", "A", "B", "C", "D", "E", "altman_z"]),
                               ("ratios + industry", ["industry_code", "A", "B", "C", "D", "E"])):
            t = time.perf_counter()
            _, m = fit_and_evaluate(data, label, task, features=features, n_trials=trials)
            rows.append({"task": task, "features": name, "accuracy": m["accuracy"], "f1 (IG)": m.get("f1", np.nan),
                         "roc_auc": m["roc_auc"], "mcc": m["mcc"], "balanced_accuracy": m["balanced_accuracy"],
                         "macro_f1": m["macro_f1"], "cv accuracy": f"{m['cv_accuracy_mean']:.3f} +- {m['cv_accuracy_std']:.3f}",
                         "seconds": time.perf_counter() - t})
    rows.append({"task": "binary", "features": "AutoGluon (JumpStart)", "accuracy": AUTOGLUON["accuracy"],
                 "f1 (IG)": AUTOGLUON["f1"], "roc_auc": AUTOGLUON["roc_auc"], "mcc": AUTOGLUON["mcc"],
                 "balanced_accuracy": AUTOGLUON["balanced_accuracy"]})
    print(table(pd.DataFrame(rows).set_index(["task", "features"])))


def bankrupt_companies() -> None:
    print("\n## Bankrupt companies: Altman scores of the last 10-K filed before the petition\n")
    rows = []
    for cik, (name, failed) in BANKRUPT.items():
        path = FACTS / f"CIK{cik:010d}.json.gz"
        if not path.is_file():
            continue
        df = altman_inputs_from_facts(json.loads(gzip.decompress(path.read_bytes())))
        before = df[df["filed"] < failed].tail(3)
        for i, r in enumerate(before.itertuples()):
            rows.append({"company": name, "petition": failed, "fiscal year": r.fiscal_year, "10-K filed": r.filed,
                         "last before failure": "yes" if i == len(before) - 1 else "",
                         "Z": r.altman_z, "zone": r.zone or "n/a", "Z''": r.altman_z_double_prime,
                         "zone Z''": r.zone_double_prime or "n/a", "flags": r.flags})
    print(table(pd.DataFrame(rows).set_index(["company", "fiscal year"]), ".2f"))


def distress_from_ratios() -> None:
    """The real label without text: every fiscal year of the shared company facts, next year's Z'' zone from this
    year's ratios, against the same plus a column of noise (a control for the procedure's optimism)."""
    frames = [altman_inputs_from_facts(json.loads(gzip.decompress(p.read_bytes())))
              for p in sorted(FACTS.glob("CIK*.json.gz"))]
    altman = pd.concat(frames, ignore_index=True).sort_values(["cik", "fiscal_year"])
    altman = altman.drop_duplicates(["cik", "fiscal_year"], keep="last")
    nxt = altman[["cik", "fiscal_year", "zone_double_prime"]].assign(fiscal_year=lambda d: d["fiscal_year"] - 1)
    rows = altman.merge(nxt.rename(columns={"zone_double_prime": "next_zone"}), on=["cik", "fiscal_year"])
    rows = rows.dropna(subset=["next_zone"]).reset_index(drop=True)
    for name, zones in DISTRESS_LABELS.items():
        rows[name] = rows["next_zone"].isin(zones)
    rows["noise"] = np.random.default_rng(0).normal(size=len(rows))
    print(f"\n## Real label without text: next year's Z'' zone from this year's ratios ({len(rows)} fiscal years of "
          f"{rows['cik'].nunique()} companies in ../shared; 20 x company-grouped 5-fold CV, 1,000 company bootstrap "
          f"draws)\n")
    sets = {"ratios": (list(REAL_RATIOS), False), "ratios + noise (control)": ([*REAL_RATIOS, "noise"], False)}
    out = pd.concat([compare_feature_sets(rows, label, sets) for label in DISTRESS_LABELS], ignore_index=True)
    cols = ["label", "feature_set", "rows", "companies", "positives", "positive_companies", "auc", "auc_ci_low",
            "auc_ci_high", "auc_repeat_sd", "brier", "balanced_accuracy", "note"]
    print(table(out[[c for c in cols if c in out.columns]].set_index(["label", "feature_set"])))


def stored_table(name: str) -> pd.DataFrame | None:
    """A table of the FINSEC_HOME in the environment (the lake when there is one), or None."""
    from finsec_assets.settings import Settings

    settings = Settings.from_env()
    from finsec_assets.storage.lake import open_lake

    lake = open_lake(settings)
    return lake.sql(f"select * from {name}") if lake.has_table(name) else None


def _variants_table(df: pd.DataFrame, trials: int, *, grouped: bool, seed: int = 42) -> list[dict]:
    rows = []
    for variant in MODEL_VARIANTS:
        data = shuffle_text(df, seed) if variant == "tabtext_shuffled" else df
        for task, label in (("binary", "investment_grade"), ("multiclass", "rating")):
            _, m = fit_and_evaluate(data, label, task, features=variant_features(data, variant), n_trials=trials,
                                    cv_repeats=2, groups=data["accession"].to_numpy() if grouped else None,
                                    test_mask=(data["split"] == "test").to_numpy(), seed=seed)
            rows.append({"task": task, "variant": variant, "test accuracy": m["accuracy"], "n_test": m["n_test"],
                         "validation accuracy": m["val_accuracy"],
                         "CV accuracy": f"{m['cv_accuracy_mean']:.3f} +- {m['cv_accuracy_std']:.3f}",
                         "test macro F1": m["macro_f1"]})
    return rows


def random_text_control(n: int, trials: int) -> None:
    """The issue's demonstration: uniform random 'text' scores, rank-joined as JumpStart does, vs joined at random."""
    print(f"\n## Random 'text' scores rank-joined to {n} simulated firms (no text at all)\n")
    rng = np.random.default_rng(0)
    units = pd.DataFrame(rng.random((n, len(NLP_SCORES))), columns=list(NLP_SCORES))
    for col, value in (("accession", [f"unit-{i}" for i in range(n)]), ("cik", 0), ("form", "10-K"),
                       ("filing_date", "2024-01-01"), ("item", "7"), ("passage", -1), ("industry_code", "D")):
        units[col] = value
    firms = rank_join(simulate_financials(n, seed=42), units)
    df, _ = tabtext_table(firms, filing_split(firms, 0.2, 42), None, 0)
    rows = _variants_table(df, trials, grouped=True)
    print(table(pd.DataFrame(rows).set_index(["task", "variant"])))
    print("\nEach unit is its own group here (no passages overlap). tabtext's lift comes from rank_join alone.")


def sample_controls(trials: int) -> None:
    """tabular vs tabtext vs tabtext_shuffled on the stored synthetic firms (real MD&A passages), before (rows split
    at random, PCA on all rows) and after (split by source filing, PCA on training rows)."""
    firms = stored_table("synthetic_altman_financials")
    if firms is None or firms.empty:
        print("\nskipped: no synthetic_altman_financials in FINSEC_HOME (run the demo first)")
        return
    from sklearn.model_selection import train_test_split

    from finsec_assets.ml.embeddings import DEFAULT_MODEL_NAME, embed_documents

    firms = firms.sort_values("firm").reset_index(drop=True)
    t = time.perf_counter()
    if (firms["passage"] >= 0).any():
        vectors, level = embed_documents(firms["text"].tolist()), "passage"
    else:
        pooled = stored_table("pooled_embeddings")
        vectors, level = (filing_vectors(firms, pooled, DEFAULT_MODEL_NAME) if pooled is not None else None), "filing"
    embed_s = time.perf_counter() - t
    n_filings = firms["accession"].nunique()
    print(f"\n## Controls on {len(firms)} synthetic firms paired with {level}s of {n_filings} real MD&As "
          f"({embed_s:.0f}s to embed)\n")
    rows = []
    for protocol in ("before: rows split at random, PCA on all rows", "after: split by filing, PCA on training rows"):
        if protocol.startswith("before"):
            df, _ = tabtext_table(firms, np.full(len(firms), "train", dtype=object), vectors, 16)
            test = train_test_split(np.arange(len(df)), test_size=0.2, random_state=42, stratify=df["rating"])[1]
            df["split"] = np.where(np.isin(np.arange(len(df)), test), "test", "train")
            grouped = False
        else:
            df, _ = tabtext_table(firms, filing_split(firms, 0.2, 42), vectors, 16)
            grouped = True
        df = df[np.isfinite(df[variant_features(df, "tabtext")[1:]].to_numpy(float)).all(axis=1)]
        shared = df[df["split"] == "test"]["accession"].isin(df[df["split"] == "train"]["accession"]).mean()
        for row in _variants_table(df.reset_index(drop=True), trials, grouped=grouped):
            rows.append({"protocol": protocol, "test rows whose filing is also in training": f"{shared:.0%}", **row})
    print(table(pd.DataFrame(rows).set_index(["protocol", "task", "variant"])))
    distress = stored_table("next_year_distress_experiment")
    if distress is not None and len(distress):
        print("\n## next_year_distress_experiment as stored (real label: next year's Altman Z'' zone)\n")
        cols = [c for c in ("label", "feature_set", "rows", "companies", "positives", "auc", "auc_ci_low",
                            "auc_ci_high", "brier", "note") if c in distress.columns]
        print(table(distress[cols].set_index(["label", "feature_set"])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="Optuna trials per model")
    parser.add_argument("--seeds", type=int, default=50, help="generator draws for the share spread")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--only", choices=["controls"], help="run only this part")
    parser.add_argument("--control-firms", type=int, default=1200, help="simulated firms of the random-text control")
    args = parser.parse_args()
    if args.only == "controls":
        random_text_control(args.control_firms, args.trials)
        sample_controls(args.trials)
        if FACTS.is_dir():
            distress_from_ratios()
        return
    if REFERENCE_CSV.is_file():
        ref = pd.read_csv(REFERENCE_CSV)
        generator_fidelity(ref, args.seeds)
        if not args.skip_models:
            models_on_reference(ref, args.trials)
    else:
        print(f"skipped: {REFERENCE_CSV} not present")
    if FACTS.is_dir():
        bankrupt_companies()
        distress_from_ratios()
    else:
        print(f"skipped: {FACTS} not present")
    if not args.skip_models:
        random_text_control(args.control_firms, args.trials)
        sample_controls(args.trials)


if __name__ == "__main__":
    main()
