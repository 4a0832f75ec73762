"""company_universe -> filing_index -> raw_filings."""


import dagster as dg
import pandas as pd

from ...edgar.client import EdgarError
from ...edgar.ingest import fetch_filings, filing_index as build_filing_index, resolve_universe
from ...edgar.parsing import EdgarDataError, quarter_bounds, quarter_label
from ...edgar import client as _client, ingest as _ingest, parsing as _parsing, ratelimit as _ratelimit, synthetic as _synthetic
from ..common import FinsecResource, md_list, previous_partition, quarter_partitions, source_version, table_output
from . import checks

# The EDGAR client, parsers and ingest code plus the bundled sample they serve in sample mode (synthetic.TreeIndex
# answers its full-index and bulk archives).
EDGAR_VERSION = source_version(_client, _ingest, _parsing, _ratelimit, _synthetic, data=[_client.SAMPLE_DIR])


@dg.asset(group_name="edgar", kinds={"duckdb", "parquet"}, code_version=EDGAR_VERSION)
def company_universe(context: dg.AssetExecutionContext, finsec: FinsecResource) -> dg.Output:
    """The companies to follow (FINSEC_UNIVERSE), with SIC code and industry division."""
    entries = finsec.settings().universe
    df, problems = resolve_universe(finsec.edgar(), entries)
    if df.empty:
        raise dg.Failure(f"none of FINSEC_UNIVERSE={','.join(entries)} could be resolved", metadata={"problems": md_list(problems.items)})
    return table_output(df, {"requested": len(entries), "resolved": len(df), "problems": md_list(problems.items),
                             "preview": dg.MetadataValue.md(df.to_markdown(index=False))})


def _quarter(context) -> tuple:
    try:
        return quarter_bounds(context.partition_key)
    except EdgarDataError as exc:
        raise dg.Failure(str(exc)) from exc


@dg.asset(group_name="edgar", partitions_def=quarter_partitions, kinds={"duckdb", "parquet"}, code_version=EDGAR_VERSION,
          check_specs=checks.filing_index_checks)
def filing_index(context: dg.AssetExecutionContext, finsec: FinsecResource, company_universe: pd.DataFrame):
    """Every filing of the FINSEC_FORMS families (10-K, 10-Q, 8-K by default; amendments flagged) the universe filed
    in the quarter; 8-K rows carry EDGAR's items ("2.02,9.01"). From FINSEC_EDGAR_BULK_MIN_COMPANIES companies on,
    read from the quarter's full-index and the nightly bulk submissions.zip instead of one request per company."""
    start, end = _quarter(context)
    forms = finsec.settings().forms
    client = finsec.edgar()
    df, problems = build_filing_index(client, company_universe["cik"].astype(int).tolist(), start, end, forms)
    if problems.items and len(problems.items) == len(company_universe):
        raise dg.Failure(f"{quarter_label(context.partition_key)}: no company's submissions could be read",
                         metadata={"problems": md_list(problems.items)})
    yield table_output(df, {"quarter": quarter_label(context.partition_key), "companies": int(df["cik"].nunique()),
                            "10-K": int((df["form"].str.startswith("10-K")).sum()),
                            "10-Q": int((df["form"].str.startswith("10-Q")).sum()),
                            "8-K": int((df["form"].str.startswith("8-K")).sum()), "forms": ",".join(forms),
                            "amendments": int(df["is_amendment"].sum()), "problems": md_list(problems.items),
                            "read_via": ("full-index + bulk submissions.zip" if client.bulk
                                         else "one submissions request per company")})
    yield checks.accession_format_and_unique(df, "filing_index")
    yield checks.every_company_indexed(company_universe, problems.failed, quarter_label(context.partition_key))


@dg.asset(group_name="edgar", partitions_def=quarter_partitions, kinds={"s3", "parquet"}, code_version=EDGAR_VERSION,
          check_specs=checks.raw_filings_checks)
def raw_filings(context: dg.AssetExecutionContext, finsec: FinsecResource, filing_index: pd.DataFrame):
    """Each filing's primary document as a blob, plus an 8-K's EX-99 exhibits (press releases), one row per document
    keyed by (accession, document); image and PDF exhibits are rows with a skip_reason. A rerun fetches only what is
    not stored yet."""
    _quarter(context)
    store = finsec.object_store()
    previous = previous_partition(finsec, "raw_filings", context.partition_key)
    try:
        df, problems, fetched = fetch_filings(finsec.edgar(), store, filing_index, previous if len(previous) else None)
    except EdgarError as exc:  # pragma: no cover - fetch_filings catches per filing
        raise dg.Failure(str(exc)) from exc
    skipped = df[df["skip_reason"].notna()]
    yield table_output(df, {"quarter": quarter_label(context.partition_key), "fetched": fetched,
                            "reused": int(df["uri"].notna().sum()) - fetched, "failed": len(problems.items),
                            "exhibits": int((~df["is_primary"] & df["uri"].notna()).sum()),
                            "document_types": dg.MetadataValue.md(
                                df.groupby("document_type").size().to_frame("documents").to_markdown() if len(df) else "none"),
                            "skipped": md_list(f"{r.accession} {r.document_type}: {r.skip_reason}" for r in skipped.itertuples()),
                            "stored_mb": round(float(df["bytes"].fillna(0).sum()) / 1e6, 2),
                            "problems": md_list(problems.items)})
    yield checks.accession_format_and_unique(df, "raw_filings", key=["accession", "document"])
    yield checks.every_index_row_has_a_document(filing_index, df)
    yield checks.stored_bytes_match_sha256(df, store)
