"""Checks on xbrl_facts, run inside the asset's step on the quarter just written, one chunk of filings at a time."""

import dagster as dg
import pandas as pd

from ..common import md_list

xbrl_facts_checks = [
    dg.AssetCheckSpec("spans_match_section_text", asset="xbrl_facts",
                      description="Every aligned fact's span of its filing_sections text reads exactly as the fact's displayed text."),
    dg.AssetCheckSpec("facts_have_context_and_unit", asset="xbrl_facts",
                      description="Every fact names an existing context, every numeric fact an existing unit."),
]


class SpansMatchSectionText:
    """Fed each chunk's facts with the same filings' sections; the result covers every chunk."""

    def __init__(self):
        self.aligned_numeric, self.bad = 0, []

    def add(self, facts: pd.DataFrame, sections: pd.DataFrame) -> None:
        texts = {(a, i): t for a, i, t in zip(sections["accession"], sections["item"], sections["text"])} if len(sections) else {}
        aligned = facts[facts["section"].notna() & facts["start"].notna()] if len(facts) else facts
        single = aligned[~aligned["display_text"].fillna("").str.contains("\n")] if len(aligned) else aligned
        for r in single.itertuples(index=False):
            text = texts.get((r.accession, r.section))
            if r.is_numeric and (text is None or text[int(r.start):int(r.end)] != r.display_text):
                self.bad.append(f"{r.accession} {r.fact_id} {r.concept}: {r.display_text!r}")
        self.aligned_numeric += int(aligned["is_numeric"].sum()) if len(aligned) else 0

    def result(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(asset_key="xbrl_facts", check_name="spans_match_section_text", passed=not self.bad,
                                   metadata={"aligned_numeric_facts": self.aligned_numeric, "mismatched": len(self.bad),
                                             "details": md_list(self.bad)})


class FactsHaveContextAndUnit:
    def __init__(self):
        self.facts, self.details = 0, []

    def add(self, facts: pd.DataFrame) -> None:
        flagged = facts[facts["flags"].map(lambda f: "missing_context" in f or "missing_unit" in f)] if len(facts) else facts
        self.details += [f"{r.accession} {r.fact_id} {r.concept}: {', '.join(r.flags)}" for r in flagged.itertuples(index=False)]
        self.facts += len(facts)

    def result(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(asset_key="xbrl_facts", check_name="facts_have_context_and_unit", passed=not self.details,
                                   severity=dg.AssetCheckSeverity.WARN, metadata={
                                       "facts": self.facts, "flagged": len(self.details), "details": md_list(self.details)})


def spans_match_section_text(facts: pd.DataFrame, sections: pd.DataFrame) -> dg.AssetCheckResult:
    check = SpansMatchSectionText()
    check.add(facts, sections)
    return check.result()


def facts_have_context_and_unit(facts: pd.DataFrame) -> dg.AssetCheckResult:
    check = FactsHaveContextAndUnit()
    check.add(facts)
    return check.result()
