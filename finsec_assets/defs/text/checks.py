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
filing_events_checks = [
    dg.AssetCheckSpec("events_match_edgar_items", asset="filing_events",
                      description="The items found in each 8-K's text are the items EDGAR lists for it (a warning: "
                                  "filers sometimes list an item they do not head, or the reverse)."),
]
nlp_scores_checks = [
    dg.AssetCheckSpec("scores_in_range", asset="nlp_scores",
                      description="Word-list shares in [0, 1], polarity and sentiment in [-1, 1], readability in [5, 40], no NaN."),
]


class SectionChecks:
    """filing_sections' three checks, added up batch by batch (a batch holds whole filings) so the step never holds
    the quarter's text."""

    def __init__(self):
        self.items: dict[str, set] = {}
        self.table_of_contents: list[str] = []
        self.overlaps: list[str] = []

    def add(self, sections: pd.DataFrame) -> None:
        for accession, item in zip(sections["accession"], sections["item"]):
            self.items.setdefault(accession, set()).add(item)
        self.table_of_contents += [f"{r.accession} item {r.item}" for r in sections.itertuples()
                                   if is_table_of_contents(r.text or "")]
        # offsets index into each document's own text: an 8-K and its press release are compared apart
        keys = ["accession", "document_type"] if "document_type" in sections else ["accession"]
        for key, group in sections.sort_values([*keys, "start"]).groupby(keys):
            accession = key[0] if isinstance(key, tuple) else key
            ends = group["end"].to_numpy()
            starts = group["start"].to_numpy()
            for i in np.nonzero(starts[1:] < ends[:-1])[0]:
                self.overlaps.append(f"{accession}: item {group['item'].iloc[i]} overlaps item {group['item'].iloc[i + 1]}")

    def results(self, filings: pd.DataFrame) -> list[dg.AssetCheckResult]:
        missing = []
        for rec in filings.to_dict("records"):
            if str(rec["form"]).upper().endswith("/A"):
                continue  # amendments restate only what changed
            lacking = required_items(rec["form"], str(rec["filing_date"])) - self.items.get(rec["accession"], set())
            if lacking:
                missing.append(f"{rec['accession']} ({rec['form']}): missing {sorted(lacking)}")
        return [
            dg.AssetCheckResult(asset_key="filing_sections", check_name="required_items_present", passed=not missing,
                                metadata={"filings": len(filings), "failing": len(missing), "details": md_list(missing)}),
            dg.AssetCheckResult(asset_key="filing_sections", check_name="no_table_of_contents_section",
                                passed=not self.table_of_contents, metadata={"suspects": md_list(self.table_of_contents)}),
            dg.AssetCheckResult(asset_key="filing_sections", check_name="sections_do_not_overlap", passed=not self.overlaps,
                                metadata={"overlaps": md_list(self.overlaps)}),
        ]


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


def events_match_edgar_items(events: pd.DataFrame) -> dg.AssetCheckResult:
    """Item-id agreement with EDGAR's items field, per filing; filings EDGAR lists no items for are not judged."""
    items = events[~events["is_exhibit"].astype(bool)] if len(events) else events
    judged = items[items["listed_by_edgar"].notna()] if len(items) else items
    listed_accessions = set(items.loc[items["listed_by_edgar"].fillna(False).astype(bool), "accession"]) if len(items) else set()
    judged = judged[judged["accession"].isin(listed_accessions)] if len(judged) else judged
    missing = judged[~judged["found_in_text"].astype(bool)]
    extra = judged[judged["found_in_text"].astype(bool) & ~judged["listed_by_edgar"].fillna(False).astype(bool)]
    found = int(judged["found_in_text"].astype(bool).sum()) if len(judged) else 0
    listed = int(judged["listed_by_edgar"].fillna(False).astype(bool).sum()) if len(judged) else 0
    agree = found - len(extra)
    return dg.AssetCheckResult(
        asset_key="filing_events", check_name="events_match_edgar_items", passed=missing.empty and extra.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"filings": len(listed_accessions), "precision": round(agree / found, 4) if found else 1.0,
                  "recall": round(agree / listed, 4) if listed else 1.0,
                  "listed_not_found": md_list(f"{r.accession} item {r.item}" for r in missing.itertuples()),
                  "found_not_listed": md_list(f"{r.accession} item {r.item}" for r in extra.itertuples())},
    )
