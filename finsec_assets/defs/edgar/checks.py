"""Checks on the ingestion assets. They run inside the asset's step (check_specs), so they see
exactly the quarter just written, which standalone checks on partitioned assets cannot."""

from __future__ import annotations

import hashlib

import dagster as dg
import pandas as pd

from ...edgar.parsing import ACCESSION_RE
from ...storage.object_store import ObjectStore
from ..common import md_list

filing_index_checks = [
    dg.AssetCheckSpec("accession_format_and_unique", asset="filing_index",
                      description="Every accession looks like 0000320193-24-000123 and appears once."),
    dg.AssetCheckSpec("every_company_indexed", asset="filing_index",
                      description="Every company of the universe had its filings read for the quarter; "
                                  "fails naming those whose submissions could not be read."),
]
raw_filings_checks = [
    dg.AssetCheckSpec("every_index_row_has_a_document", asset="raw_filings",
                      description="Each filing in filing_index has a stored primary document (exhibits aside)."),
    dg.AssetCheckSpec("stored_bytes_match_sha256", asset="raw_filings",
                      description="Re-reads every stored document and compares its sha256."),
    dg.AssetCheckSpec("accession_format_and_unique", asset="raw_filings",
                      description="Every accession is well formed and each (accession, document) appears once."),
]


def accession_format_and_unique(df: pd.DataFrame, asset: str, key: list[str] | None = None) -> dg.AssetCheckResult:
    """``key`` defaults to the accession alone; raw_filings (several documents per 8-K) passes (accession, document)."""
    bad = sorted(a for a in df["accession"] if not ACCESSION_RE.match(str(a)))
    key = key or ["accession"]
    duplicated = df[key].astype(str).duplicated() if len(df) else pd.Series([], dtype=bool)
    dupes = sorted(df["accession"][duplicated.to_numpy()].unique())
    return dg.AssetCheckResult(
        asset_key=asset, check_name="accession_format_and_unique", passed=not bad and not dupes,
        metadata={"malformed": ", ".join(bad[:20]) or "none", "duplicated": ", ".join(dupes[:20]) or "none"},
    )


def every_index_row_has_a_document(index: pd.DataFrame, raw: pd.DataFrame) -> dg.AssetCheckResult:
    primary = raw[raw["is_primary"].astype(bool)] if "is_primary" in raw else raw
    stored = set(primary.loc[primary["uri"].notna(), "accession"])
    missing = sorted(set(index["accession"]) - stored)
    errors = primary.drop_duplicates("accession").set_index("accession")["error"].to_dict() if len(primary) else {}
    return dg.AssetCheckResult(
        asset_key="raw_filings", check_name="every_index_row_has_a_document", passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"missing": len(missing),
                  "missing_filings": md_list(f"{a}: {errors.get(a)}" for a in missing)},
    )


def stored_bytes_match_sha256(raw: pd.DataFrame, store: ObjectStore) -> dg.AssetCheckResult:
    mismatched = []
    for rec in raw[raw["uri"].notna()].to_dict("records"):
        if hashlib.sha256(store.get_bytes(rec["uri"])).hexdigest() != rec["sha256"]:
            mismatched.append(rec["accession"])
    return dg.AssetCheckResult(
        asset_key="raw_filings", check_name="stored_bytes_match_sha256", passed=not mismatched,
        metadata={"checked": int(raw["uri"].notna().sum()), "mismatched": ", ".join(mismatched) or "none"},
    )


def every_company_indexed(universe: pd.DataFrame, failed: dict, quarter: str) -> dg.AssetCheckResult:
    """A quarter where some companies' submissions failed is incomplete downstream: fail, naming them."""
    names = {int(r["cik"]): f"{r.get('ticker') or r.get('name') or 'CIK'} (CIK {int(r['cik'])})"
             for r in universe.to_dict("records")}
    failed_names = [f"{names.get(int(cik), f'CIK {cik}')}: {message}" for cik, message in sorted(failed.items())]
    return dg.AssetCheckResult(
        asset_key="filing_index", check_name="every_company_indexed", passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{quarter}: {len(failed)} of {len(universe)} companies could not be indexed: "
                     + ", ".join(names.get(int(c), f"CIK {c}") for c in sorted(failed))) if failed else None,
        metadata={"companies": len(universe), "indexed": len(universe) - len(failed), "failed": len(failed),
                  "failed_companies": md_list(failed_names)},
    )
