"""raw_filings, filing_sections -> xbrl_facts (every inline-XBRL fact, placed in its section's text)."""

import json
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import pandas as pd
import pyarrow as pa

from ...storage.object_store import ObjectStore
from ...storage.tables import ContentHasher
from ...text import html as html_module, sections as sections_module
from ...text.sections import Section
from ...xbrl import FACT_COLUMNS, extract_facts, facts as facts_module, transforms as transforms_module
from ..common import (FinsecResource, kept_documents, lake_table_metadata, md_list, quarter_partitions, quarter_rows,
                      source_version, step_workers, write_quarter_batches)
from . import checks

XBRL_VERSION = source_version(facts_module, transforms_module, html_module, sections_module)
COLUMNS = ["accession", "cik", "form", "filing_date", *FACT_COLUMNS, "source_sha256", "extractor_version"]
# Facts of this many filings are in memory at once (a 10-K has a few thousand). A constant, not the worker count:
# the batches' boundaries feed the data version.
FILINGS_PER_BATCH = 16
DTYPES = {"cik": "int64", "start": "Int64", "end": "Int64", "doc_start": "Int64", "doc_end": "Int64", "scale": "Int64",
          "value": "float64", "is_numeric": "bool", "is_nil": "bool", "is_hidden": "bool", "in_table": "bool"}
_ARROW = {"int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
SCHEMA = pa.schema([(c, pa.list_(pa.string()) if c == "flags" else _ARROW.get(DTYPES.get(c), pa.string())) for c in COLUMNS])
SECTION_COLUMNS = ["accession", "item", "title", "text", "start", "end"]


def _facts_of_filing(args: tuple[dict, list[dict], str]) -> pd.DataFrame:
    rec, section_rows, store_url = args
    sections = [Section(item=s["item"], title=s["title"], text=s["text"], start=int(s["start"]), end=int(s["end"]))
                for s in section_rows]
    df = extract_facts(ObjectStore(store_url).get_bytes(rec["uri"]), form=rec["form"], sections=sections)
    df["dimensions"] = df["dimensions"].map(lambda d: json.dumps(d, sort_keys=True))  # axis -> member, as JSON text
    for key in ("accession", "cik", "form", "filing_date"):
        df[key] = rec[key]
    df["source_sha256"] = rec["sha256"]
    df["extractor_version"] = XBRL_VERSION
    return df[COLUMNS]


class _Tally:
    """The output metadata, added up over the batches."""

    def __init__(self):
        self.with_facts, self.facts, self.numeric, self.aligned, self.in_prose, self.in_tables = set(), 0, 0, 0, 0, 0
        self.flags, self.sections = Counter(), Counter()

    def add(self, df: pd.DataFrame) -> None:
        self.with_facts.update(df["accession"].unique())
        self.facts += len(df)
        self.numeric += int(df["is_numeric"].sum())
        self.aligned += int(df["section"].notna().sum())
        visible_numeric = df[df["is_numeric"] & ~df["is_hidden"]]
        self.in_prose += int((visible_numeric["section"].notna() & ~visible_numeric["in_table"]).sum())
        self.in_tables += int(visible_numeric["in_table"].sum())
        self.flags.update(f for flags in df["flags"] for f in flags)
        self.sections.update(df["section"].dropna())

    @staticmethod
    def markdown(counts: Counter, name: str, by_key: bool) -> str:
        """Counts, largest first, as the whole-frame value_counts/groupby tables read (ties: first seen / by key)."""
        if not counts:
            return "none"
        series = pd.Series(dict(counts), dtype="int64").rename_axis(name)
        series = (series.sort_index() if by_key else series).sort_values(ascending=False)
        return series.to_frame("facts").to_markdown()


@dg.asset(group_name="xbrl", partitions_def=quarter_partitions, kinds={"python", "parquet"}, code_version=XBRL_VERSION,
          check_specs=checks.xbrl_facts_checks, deps=["filing_sections"])
def xbrl_facts(context: dg.AssetExecutionContext, finsec: FinsecResource, raw_filings: pd.DataFrame):
    """Every ix:nonFraction / ix:nonNumeric of each filing: value after format, scale and sign, period, unit,
    dimensions, and where it sits in the filing_sections text (section, start, end); filings without inline XBRL
    give no rows. A filing whose document and reader are unchanged is not read again.

    Streamed: FILINGS_PER_BATCH filings at a time (in accession order), their sections read from the lake, their
    facts written through one lake transaction, so memory does not grow with the filings in a quarter."""
    quarter = context.partition_key
    lake = finsec.lake()
    stored = raw_filings[raw_filings["uri"].notna()]
    fresh = set(zip(stored["accession"], stored["sha256"]))
    done = {a for a, _ in kept_documents(lake, "xbrl_facts", quarter, XBRL_VERSION, fresh)}
    todo = stored[~stored["accession"].isin(done)]
    accessions = sorted(set(stored["accession"]))
    url = finsec.settings().object_store_url
    tally, spans, contexts = _Tally(), checks.SpansMatchSectionText(), checks.FactsHaveContextAndUnit()
    hasher = ContentHasher(COLUMNS)
    workers = min(len(todo), step_workers(context))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None

    def batches():
        for i in range(0, len(accessions), FILINGS_PER_BATCH):
            chunk = accessions[i:i + FILINGS_PER_BATCH]
            sections = quarter_rows(lake, "filing_sections", SECTION_COLUMNS, quarter, chunk)
            by_filing = {a: g.to_dict("records") for a, g in sections.groupby("accession")} if len(sections) else {}
            reused_here = [a for a in chunk if a in done]
            reuse = quarter_rows(lake, "xbrl_facts", COLUMNS, quarter, reused_here, " and extractor_version = ?",
                                  [XBRL_VERSION])
            if len(reuse):
                reuse = reuse[[(a, s) in fresh for a, s in zip(reuse["accession"], reuse["source_sha256"])]]
            jobs = [(rec, by_filing.get(rec["accession"], []), url)
                    for rec in todo[todo["accession"].isin(chunk)].to_dict("records")]
            frames = list(pool.map(_facts_of_filing, jobs)) if pool is not None else [_facts_of_filing(j) for j in jobs]
            frames = [f for f in [reuse[COLUMNS] if len(reuse) else None, *frames] if f is not None and len(f)]
            df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
            df = df.astype(DTYPES)
            df["flags"] = df["flags"].map(lambda f: [str(x) for x in f])
            df = df.sort_values(["accession", "doc_start", "fact_id"], na_position="last", kind="stable").reset_index(drop=True)
            tally.add(df)
            spans.add(df, sections)
            contexts.add(df)
            hasher.update(df)
            yield df

    written = write_quarter_batches(lake, "xbrl_facts", quarter, batches(), SCHEMA, pool)
    without = sorted(set(accessions) - tally.with_facts)
    metadata = {
        "filings": len(accessions), "filings_with_ixbrl": len(tally.with_facts),
        "read": len(todo), "reused_filings": len(done), "facts": tally.facts, "numeric_facts": tally.numeric,
        "aligned_facts": tally.aligned, "aligned_numeric_in_prose": tally.in_prose,
        "numeric_in_data_tables": tally.in_tables,
        "flags": dg.MetadataValue.md(tally.markdown(tally.flags, "flags", by_key=False)),
        "aligned_by_section": dg.MetadataValue.md(tally.markdown(tally.sections, "section", by_key=True)),
        "filings_without_ixbrl": md_list(without),
        **lake_table_metadata(lake, "xbrl_facts", quarter, written.snapshot_id, written.rows),
    }
    yield dg.Output(None, metadata=metadata, data_version=dg.DataVersion(hasher.hexdigest()))
    yield spans.result()
    yield contexts.result()
