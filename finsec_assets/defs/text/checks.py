"""Checks on section and score tables, run inside the asset's step on exactly the quarter just written."""

import dagster as dg
import numpy as np
import pandas as pd

from ...text.sections import is_table_of_contents, required_items
from ..common import md_list

filing_sections_checks = [
    dg.AssetCheckSpec("required_items_present", asset="filing_sections",
                      description="Each 10-K has items 1 and 7 (and 1A when its filing date requires it); each 10-Q has I-2."),
    dg.AssetCheckSpec("no_table_of_contents_section", asset="filing_sections",
                      description="No section is a table of contents (a short run of 'Item N' lines)."),
    dg.AssetCheckSpec("sections_do_not_overlap", asset="filing_sections",
                      description="Within a filing, each section ends before the next one starts."),
]
nlp_scores_checks = [
    dg.AssetCheckSpec("scores_in_range", asset="nlp_scores",
                      description="Word-list shares in [0, 1], polarity and sentiment in [-1, 1], readability in [5, 40], no NaN."),
]


def required_items_present(sections: pd.DataFrame, filings: pd.DataFrame) -> dg.AssetCheckResult:
    items = sections.groupby("accession")["item"].apply(set).to_dict() if len(sections) else {}
    missing = []
    for rec in filings.to_dict("records"):
        if str(rec["form"]).upper().endswith("/A"):
            continue  # amendments restate only what changed
        need = required_items(rec["form"], str(rec["filing_date"]))
        lacking = need - items.get(rec["accession"], set())
        if lacking:
            missing.append(f"{rec['accession']} ({rec['form']}): missing {sorted(lacking)}")
    return dg.AssetCheckResult(asset_key="filing_sections", check_name="required_items_present", passed=not missing,
                               metadata={"filings": len(filings), "failing": len(missing), "details": md_list(missing)})


def no_table_of_contents_section(sections: pd.DataFrame) -> dg.AssetCheckResult:
    bad = [f"{r.accession} item {r.item}" for r in sections.itertuples() if is_table_of_contents(r.text or "")]
    return dg.AssetCheckResult(asset_key="filing_sections", check_name="no_table_of_contents_section", passed=not bad,
                               metadata={"suspects": md_list(bad)})


def sections_do_not_overlap(sections: pd.DataFrame) -> dg.AssetCheckResult:
    bad = []
    for accession, group in sections.sort_values(["accession", "start"]).groupby("accession"):
        ends = group["end"].to_numpy()
        starts = group["start"].to_numpy()
        for i in np.nonzero(starts[1:] < ends[:-1])[0]:
            bad.append(f"{accession}: item {group['item'].iloc[i]} overlaps item {group['item'].iloc[i + 1]}")
    return dg.AssetCheckResult(asset_key="filing_sections", check_name="sections_do_not_overlap", passed=not bad,
                               metadata={"overlaps": md_list(bad)})


SHARE_COLUMNS = ["positive", "negative", "certainty", "uncertainty", "risk", "safe", "litigious", "fraud"]


def scores_in_range(scores: pd.DataFrame) -> dg.AssetCheckResult:
    problems = []
    # Sections with no words or no real sentence carry readability NaN by design (and a flag saying so).
    unscorable = scores["flags"].map(lambda f: bool({"no_words", "no_sentences"} & set(f if f is not None else [])))
    scored = scores[~unscorable]
    for col in SHARE_COLUMNS:
        bad = scored[(scored[col] < 0) | (scored[col] > 1)]
        problems += [f"{r.accession} {r.item}: {col}={getattr(r, col)}" for r in bad.itertuples()]
    for col in ("polarity", "sentiment"):
        bad = scored[(scored[col] < -1) | (scored[col] > 1)]
        problems += [f"{r.accession} {r.item}: {col}={getattr(r, col)}" for r in bad.itertuples()]
    bad = scored[(scored["readability"] < 5) | (scored["readability"] > 40)]
    problems += [f"{r.accession} {r.item}: readability={r.readability:.1f}" for r in bad.itertuples()]
    nan = scored[SHARE_COLUMNS + ["polarity", "sentiment", "readability"]].isna().any(axis=1)
    problems += [f"{r.accession} {r.item}: NaN score" for r in scored[nan].itertuples()]
    return dg.AssetCheckResult(asset_key="nlp_scores", check_name="scores_in_range", passed=not problems,
                               metadata={"rows": len(scores), "scored": len(scored), "problems": md_list(problems)})
