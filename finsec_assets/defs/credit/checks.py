"""Checks on the credit tables, run inside each asset's step so they see exactly what was just written."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from ..common import md_list
from ...ml.altman import INVESTMENT_GRADE, RATINGS, accounting_identity_violations, simulate_financials

# JumpStart's rating shares on 3,286 MD&As (../shared/REFERENCE.md).
JUMPSTART_SHARES = {"AAA": 0.003, "AA": 0.057, "A": 0.222, "BBB": 0.259, "BB": 0.184, "B": 0.222, "CCC": 0.053}

altman_inputs_checks = [
    dg.AssetCheckSpec("accounting_identities", asset="altman_inputs",
                      description="TA > 0, 0 <= CA <= TA, 0 <= CL <= TL, TL >= 0, sales >= 0, MVE >= 0 on every fiscal year."),
    dg.AssetCheckSpec("every_missing_score_is_explained", asset="altman_inputs",
                      description="A fiscal year without Z or Z'' carries a flag saying which input is missing."),
]
synthetic_altman_financials_checks = [
    dg.AssetCheckSpec("rating_shares_like_jumpstart", asset="synthetic_altman_financials",
                      description="Each rating's share is within 2 points of JumpStart's, widened by the generator's own "
                                  "seed-to-seed spread at this sample size (min-max rescaling makes shares move)."),
]
tabtext_dataset_checks = [
    dg.AssetCheckSpec("no_nan_in_features", asset="tabtext_dataset",
                      description="Ratios, Z, NLP scores and embedding components are all finite."),
    dg.AssetCheckSpec("labels_consistent", asset="tabtext_dataset",
                      description="Every rating is one of the 7 and investment_grade is exactly AAA, AA, A or BBB."),
]
rating_models_checks = [
    dg.AssetCheckSpec("shuffled_text_collapses_to_tabular", asset="rating_models",
                      description="The control tabtext_shuffled (each firm's text unit replaced by a random one) is "
                                  "within sampling error of tabular, binary and 7-class: TabText's gain on these data "
                                  "is built in by rank_join (text_rank is a sum of ten of the scores TabText sees), "
                                  "so text that carries no rank must carry no gain."),
]
rating_predictions_checks = [
    dg.AssetCheckSpec("probabilities_are_distributions", asset="rating_predictions",
                      description="Class probabilities are in [0, 1] and sum to 1; every row names its accession and model."),
]


def accounting_identities(df: pd.DataFrame) -> dg.AssetCheckResult:
    bad = accounting_identity_violations(df)
    lines = [f"{r.accession} (cik {r.cik}, FY{r.fiscal_year}): {r.rule}" for r in bad.itertuples()]
    return dg.AssetCheckResult(asset_key="altman_inputs", check_name="accounting_identities", passed=bad.empty,
                               metadata={"fiscal_years": len(df), "violations": len(bad), "details": md_list(lines)})


def every_missing_score_is_explained(df: pd.DataFrame) -> dg.AssetCheckResult:
    unexplained = df[(df["altman_z"].isna() | df["altman_z_double_prime"].isna()) & (df["flags"].fillna("") == "")]
    lines = [f"{r.accession} (cik {r.cik}, FY{r.fiscal_year})" for r in unexplained.itertuples()]
    return dg.AssetCheckResult(asset_key="altman_inputs", check_name="every_missing_score_is_explained",
                               passed=unexplained.empty,
                               metadata={"without_z": int(df["altman_z"].isna().sum()),
                                         "without_z_double_prime": int(df["altman_z_double_prime"].isna().sum()),
                                         "unexplained": md_list(lines)})


def seed_spread(n: int, draws: int = 30, **simulation) -> pd.DataFrame:
    """Mean and standard deviation of each rating's share over ``draws`` simulations of ``n`` firms."""
    shares = pd.DataFrame([simulate_financials(n, seed=10_000 + i, **simulation)["Rating"].value_counts(normalize=True)
                           for i in range(draws)]).reindex(columns=list(RATINGS)).fillna(0.0)
    return pd.DataFrame({"mean": shares.mean(), "sd": shares.std()})


def rating_shares_like_jumpstart(df: pd.DataFrame, **simulation) -> dg.AssetCheckResult:
    n = len(df)
    shares = df["Rating"].value_counts(normalize=True).reindex(list(RATINGS)).fillna(0.0)
    spread = seed_spread(n, **simulation) if n >= 2 else pd.DataFrame({"sd": 0.0}, index=list(RATINGS))
    table = pd.DataFrame({"share": shares, "jumpstart": pd.Series(JUMPSTART_SHARES), "seed_sd": spread["sd"]})
    table["allowed"] = 0.02 + 2 * table["seed_sd"]
    table["ok"] = (table["share"] - table["jumpstart"]).abs() <= table["allowed"]
    return dg.AssetCheckResult(
        asset_key="synthetic_altman_financials", check_name="rating_shares_like_jumpstart",
        passed=bool(table["ok"].all()), severity=dg.AssetCheckSeverity.WARN,
        metadata={"firms": n, "shares": dg.MetadataValue.md((table.round(4)).to_markdown())})


def no_nan_in_features(df: pd.DataFrame, features: list[str]) -> dg.AssetCheckResult:
    values = df[features].apply(pd.to_numeric, errors="coerce")
    bad = {c: int((~np.isfinite(values[c])).sum()) for c in features if (~np.isfinite(values[c])).any()}
    return dg.AssetCheckResult(asset_key="tabtext_dataset", check_name="no_nan_in_features", passed=not bad,
                               metadata={"features": len(features), "rows": len(df),
                                         "non_finite": md_list([f"{c}: {k}" for c, k in bad.items()])})


def labels_consistent(df: pd.DataFrame) -> dg.AssetCheckResult:
    unknown = sorted(set(df["rating"]) - set(RATINGS))
    wrong_grade = int((df["rating"].isin(INVESTMENT_GRADE) != df["investment_grade"].astype(bool)).sum())
    counts = df["rating"].value_counts().reindex(list(RATINGS)).fillna(0).astype(int)
    return dg.AssetCheckResult(asset_key="tabtext_dataset", check_name="labels_consistent",
                               passed=not unknown and wrong_grade == 0,
                               metadata={"unknown_ratings": ", ".join(unknown) or "none",
                                         "wrong_investment_grade": wrong_grade,
                                         "rating_counts": dg.MetadataValue.md(counts.to_frame("firms").to_markdown())})


def shuffled_text_collapses_to_tabular(registry: pd.DataFrame, floor: float = 0.05) -> dg.AssetCheckResult:
    """Passes when tabtext_shuffled's test accuracy exceeds tabular's by no more than two standard errors of a
    difference of two proportions on the test rows (at least ``floor``), for both tasks."""
    acc = registry.set_index(["model_variant", "task"])
    rows, passed = [], True
    for task in ("binary", "multiclass"):
        try:
            tab, shuf, text = (acc.loc[(v, task)] for v in ("tabular", "tabtext_shuffled", "tabtext"))
        except KeyError:
            passed = False
            rows.append({"task": task, "note": "missing tabular, tabtext or tabtext_shuffled"})
            continue
        p, n = float(tab["accuracy"]), max(int(tab["n_test"]), 1)
        allowed = max(floor, 2 * float(np.sqrt(2 * p * (1 - p) / n)))
        excess = float(shuf["accuracy"] - tab["accuracy"])
        passed &= excess <= allowed
        rows.append({"task": task, "tabular": p, "tabtext": float(text["accuracy"]),
                     "tabtext_shuffled": float(shuf["accuracy"]), "shuffled_minus_tabular": excess,
                     "allowed": allowed, "tabtext_minus_tabular (built in by rank_join)":
                     float(text["accuracy"] - tab["accuracy"]), "n_test": n})
    return dg.AssetCheckResult(
        asset_key="rating_models", check_name="shuffled_text_collapses_to_tabular", passed=bool(passed),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"accuracy": dg.MetadataValue.md(pd.DataFrame(rows).set_index("task").round(3).to_markdown()),
                  "reading": "TabText's gain over tabular is built into the data by rank_join; the shuffled control "
                             "shows what the text itself adds."})


def probabilities_are_distributions(df: pd.DataFrame, proba_columns: list[str]) -> dg.AssetCheckResult:
    p = df[proba_columns].to_numpy(dtype=float) if len(df) else np.zeros((0, len(proba_columns)))
    bad_range = int(((p < 0) | (p > 1)).any(axis=1).sum())
    bad_sum = int((np.abs(p.sum(axis=1) - 1) > 1e-6).sum())
    unnamed = int(df["accession"].isna().sum() + df["model_version"].isna().sum()) if len(df) else 0
    return dg.AssetCheckResult(asset_key="rating_predictions", check_name="probabilities_are_distributions",
                               passed=bad_range == 0 and bad_sum == 0 and unnamed == 0,
                               metadata={"rows": len(df), "out_of_range": bad_range, "not_summing_to_one": bad_sum,
                                         "missing_accession_or_model": unnamed})
