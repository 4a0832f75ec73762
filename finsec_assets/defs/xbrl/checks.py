"""Checks on xbrl_facts, run inside the asset's step on the quarter just written."""

import dagster as dg
import pandas as pd

from ..common import md_list

xbrl_facts_checks = [
    dg.AssetCheckSpec("spans_match_section_text", asset="xbrl_facts",
                      description="Every aligned fact's span of its filing_sections text reads exactly as the fact's displayed text."),
    dg.AssetCheckSpec("facts_have_context_and_unit", asset="xbrl_facts",
                      description="Every fact names an existing context, every numeric fact an existing unit."),
]


def spans_match_section_text(facts: pd.DataFrame, sections: pd.DataFrame) -> dg.AssetCheckResult:
    texts = {(a, i): t for a, i, t in zip(sections["accession"], sections["item"], sections["text"])} if len(sections) else {}
    aligned = facts[facts["section"].notna() & facts["start"].notna()] if len(facts) else facts
    bad = []
    single = aligned[~aligned["display_text"].fillna("").str.contains("\n")] if len(aligned) else aligned
    for r in single.itertuples(index=False):
        text = texts.get((r.accession, r.section))
        if r.is_numeric and (text is None or text[int(r.start):int(r.end)] != r.display_text):
            bad.append(f"{r.accession} {r.fact_id} {r.concept}: {r.display_text!r}")
    return dg.AssetCheckResult(asset_key="xbrl_facts", check_name="spans_match_section_text", passed=not bad,
                               metadata={"aligned_numeric_facts": int(aligned["is_numeric"].sum()) if len(aligned) else 0,
                                         "mismatched": len(bad), "details": md_list(bad)})


def facts_have_context_and_unit(facts: pd.DataFrame) -> dg.AssetCheckResult:
    flagged = facts[facts["flags"].map(lambda f: "missing_context" in f or "missing_unit" in f)] if len(facts) else facts
    details = [f"{r.accession} {r.fact_id} {r.concept}: {', '.join(r.flags)}" for r in flagged.itertuples(index=False)]
    return dg.AssetCheckResult(asset_key="xbrl_facts", check_name="facts_have_context_and_unit", passed=not details,
                               severity=dg.AssetCheckSeverity.WARN, metadata={"facts": len(facts), "flagged": len(details),
                                                                               "details": md_list(details)})
