"""raw_filings, filing_sections -> xbrl_facts (every inline-XBRL fact, placed in its section's text)."""

import json
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import pandas as pd
import pyarrow as pa

from ...storage.object_store import ObjectStore
from ...text import html as html_module, sections as sections_module
from ...text.sections import Section
from ...xbrl import FACT_COLUMNS, extract_facts, facts as facts_module, transforms as transforms_module
from ..common import FinsecResource, md_list, previous_partition, quarter_partitions, source_version, step_workers, table_output
from . import checks

XBRL_VERSION = source_version(facts_module, transforms_module, html_module, sections_module)
COLUMNS = ["accession", "cik", "form", "filing_date", *FACT_COLUMNS, "source_sha256", "extractor_version"]


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


@dg.asset(group_name="xbrl", partitions_def=quarter_partitions, kinds={"python", "parquet"}, code_version=XBRL_VERSION,
          check_specs=checks.xbrl_facts_checks)
def xbrl_facts(context: dg.AssetExecutionContext, finsec: FinsecResource, raw_filings: pd.DataFrame,
               filing_sections: pd.DataFrame):
    """Every ix:nonFraction / ix:nonNumeric of each filing: value after format, scale and sign, period, unit,
    dimensions, and where it sits in the filing_sections text (section, start, end); filings without inline XBRL
    give no rows. A filing whose document and reader are unchanged is not read again."""
    stored = raw_filings[raw_filings["uri"].notna()]
    previous = previous_partition(finsec, "xbrl_facts", context.partition_key)
    done: set = set()
    reuse = previous.iloc[0:0]
    if len(previous) and "source_sha256" in previous:
        fresh = set(zip(stored["accession"], stored["sha256"]))
        keep = [(a, s) in fresh and v == XBRL_VERSION
                for a, s, v in zip(previous["accession"], previous["source_sha256"], previous["extractor_version"])]
        reuse = previous[keep]
        done = set(reuse["accession"])
    todo = stored[~stored["accession"].isin(done)]
    by_filing = {a: g.to_dict("records") for a, g in filing_sections.groupby("accession")} if len(filing_sections) else {}
    url = finsec.settings().object_store_url
    jobs = [(rec, by_filing.get(rec["accession"], []), url) for rec in todo.to_dict("records")]
    workers = min(len(jobs), step_workers(context))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            frames = list(pool.map(_facts_of_filing, jobs))
    else:
        frames = [_facts_of_filing(j) for j in jobs]
    frames = [f for f in [reuse[COLUMNS] if len(reuse) else None, *frames] if f is not None and len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    df = df.astype({"cik": "int64", "start": "Int64", "end": "Int64", "doc_start": "Int64", "doc_end": "Int64",
                    "scale": "Int64", "value": "float64", "is_numeric": "bool", "is_nil": "bool", "is_hidden": "bool",
                    "in_table": "bool"})
    df["flags"] = df["flags"].map(lambda f: [str(x) for x in f])
    if df.empty:  # a quarter without inline XBRL: flags still typed list<string>, so every partition has one schema
        df["flags"] = df["flags"].astype(pd.ArrowDtype(pa.list_(pa.string())))
    df = df.sort_values(["accession", "doc_start", "fact_id"], na_position="last", kind="stable").reset_index(drop=True)
    without = sorted(set(stored["accession"]) - set(df["accession"]))
    flag_counts = df["flags"].explode().value_counts() if len(df) else pd.Series(dtype=int)
    visible_numeric = df[df["is_numeric"] & ~df["is_hidden"]]
    by_section = df[df["section"].notna()].groupby("section").size().sort_values(ascending=False)
    yield table_output(df, {
        "filings": int(stored["accession"].nunique()), "filings_with_ixbrl": int(df["accession"].nunique()),
        "read": len(jobs), "reused_filings": len(done), "facts": len(df), "numeric_facts": int(df["is_numeric"].sum()),
        "aligned_facts": int(df["section"].notna().sum()),
        "aligned_numeric_in_prose": int((visible_numeric["section"].notna() & ~visible_numeric["in_table"]).sum()),
        "numeric_in_data_tables": int(visible_numeric["in_table"].sum()),
        "flags": dg.MetadataValue.md(flag_counts.to_frame("facts").to_markdown() if len(flag_counts) else "none"),
        "aligned_by_section": dg.MetadataValue.md(by_section.to_frame("facts").to_markdown() if len(by_section) else "none"),
        "filings_without_ixbrl": md_list(without),
    })
    yield checks.spans_match_section_text(df, filing_sections)
    yield checks.facts_have_context_and_unit(df)
