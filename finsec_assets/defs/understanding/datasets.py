"""xbrl_facts, filing_sections (, pooled_embeddings, company_universe) -> the five document-understanding datasets.

Labels are the filers' own: inline-XBRL tags, section items, SIC codes, risk-factor headings. Each dataset is
split by company (no CIK in two splits) and carries a data card in its metadata.

The quarter-partitioned inputs are ``deps``: each asset asks the lake for only the columns and sections it uses
(filters and projection pushed down to the Parquet files), instead of loading every column of every quarter.
The NER, QA and relation datasets read only the sections that hold an aligned numeric fact.

All five are streamed: FILINGS_PER_CHUNK filings at a time, written through one lake transaction, so memory does not
grow with the filings. A chunk never crosses a quarter (quarters in order, then accessions in order within one) and its
queries name that quarter as a literal, so the lake opens only that quarter's files: reading every quarter's files per
chunk made the file opens grow as chunks x quarters. What needs every filing (splits by company, the top-K concepts,
the seeded draw of unanswerable questions, median lengths) takes a first pass that keeps only keys and counts; the rows
are those the whole-frame functions give for the chunks concatenated (see xbrl/datasets.py).
"""

import json

import dagster as dg
import pandas as pd
import pyarrow as pa
from pydantic import Field

import sys

from ...storage.lake import PARTITION_COLUMN, LakeError, quote_ident, sql_literal
from ...storage.tables import ContentHasher
from ...xbrl import datasets as ds
from ..common import FinsecResource, figure, lake_table_metadata, md_list, png_metadata, source_version

DATASETS_VERSION = source_version(ds, sys.modules[__name__])  # the queries below choose the rows: part of the version
FACTS_AND_SECTIONS = ["xbrl_facts", "filing_sections"]  # every quarter: read through the lake, see _facts/_sections
SECTION_COLUMNS = ["accession", "cik", "item", "start", "text"]
FILINGS_PER_CHUNK = 16  # filings whose facts and sections are in memory at once
# Paragraph rows carry no vector and filing rows no text: the stream's types are set here, not by its first batch.
CLASSIFICATION_SCHEMA = pa.schema([("id", pa.string()), ("cik", pa.int64()), ("accession", pa.string()), ("task", pa.string()),
                                   ("text", pa.string()), ("embedding", pa.list_(pa.float32())), ("label", pa.string()),
                                   ("source_item", pa.string()), ("split", pa.string())])


def _in_list(values) -> str:
    return ", ".join("?" for _ in values)


def _in_quarter(quarter: str, alias: str = "") -> str:
    """The partition filter the lake prunes files by: the quarter as a literal, not a parameter."""
    return f"{alias}{PARTITION_COLUMN} = {sql_literal(quarter)}"


def _read(finsec: FinsecResource, table: str, columns: list[str] | None, quarter: str, where: str = "", params=None,
          order: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows of one quarter of ``table``: only ``columns`` (all but the partition key when None), only ``where``,
    in a stable order (``order``) when ``order`` is given, so seeded choices downstream do not depend on file layout.
    Sections are not ordered here (a sort would hold every text twice): the dataset functions sort them by
    (accession, start) or look them up by key."""
    lake = finsec.lake()
    if not lake.has_table(table):
        return pd.DataFrame(columns=columns or [])
    available = [c for c, _ in lake.columns(table) if c != PARTITION_COLUMN]
    chosen = [c for c in (columns or available) if c in available]
    query = f"select {', '.join(quote_ident(c) for c in chosen)} from {quote_ident(table)}"
    ordering = [c for c in order if c in available]
    frame = lake.sql(query + f" where {_in_quarter(quarter)}" + (f" and {where}" if where else "")
                     + (f" order by {', '.join(map(quote_ident, ordering))}" if ordering else ""), params or None)
    for c in columns or []:
        if c not in frame:
            frame[c] = None
    return frame


def _fact_sections(finsec: FinsecResource, items, quarter: str, accessions: list[str]) -> pd.DataFrame:
    """Sections of ``items`` of these filings of ``quarter`` in which at least one numeric fact is placed: the only
    text NER, QA and relations read. The facts looked up are that quarter's too (their files alone are opened)."""
    lake = finsec.lake()
    if not lake.has_table("xbrl_facts") or "section" not in dict(lake.columns("xbrl_facts")):
        return pd.DataFrame(columns=SECTION_COLUMNS)
    items = [str(i) for i in items]
    return _read(finsec, "filing_sections", SECTION_COLUMNS, quarter,
                 f"cast(item as varchar) in ({_in_list(items)}) and accession in ({_in_list(accessions)}) and exists "
                 f"(select 1 from xbrl_facts f where {_in_quarter(quarter, 'f.')} and f.accession = "
                 "filing_sections.accession and f.section = filing_sections.item and f.is_numeric and f.start is not "
                 "null)", [*items, *accessions])


def _keys(finsec: FinsecResource, table: str, where: str = "", params=None) -> pd.DataFrame:
    """The (quarter, accession) pairs of ``table``'s rows matching ``where``, quarters in order, then accessions."""
    return finsec.lake().sql(f"select distinct {PARTITION_COLUMN} as quarter, accession from {quote_ident(table)}"
                             + (f" where {where}" if where else "") + " order by 1, 2", params or None)


def _in_chunks(keys: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """(quarter, accessions) chunks of at most FILINGS_PER_CHUNK filings, none crossing a quarter: each chunk's
    queries then read one quarter's files."""
    chunks = []
    for quarter, accessions in keys.groupby("quarter", sort=True)["accession"]:
        accessions = sorted(accessions)
        chunks += [(str(quarter), accessions[i:i + FILINGS_PER_CHUNK]) for i in range(0, len(accessions), FILINGS_PER_CHUNK)]
    return chunks


def _fact_chunks(finsec: FinsecResource, items):
    """A callable giving, chunk by chunk (quarter, then accession order), every fact of the filings that have a numeric
    fact placed in ``items`` (in accession, doc_start, fact_id order) and their sections."""
    lake = finsec.lake()
    if not lake.has_table("xbrl_facts") or not int(lake.sql("select count(*) n from xbrl_facts")["n"][0]):
        _facts(pd.DataFrame())
    items = [str(i) for i in items]
    keys = _keys(finsec, "xbrl_facts", f"is_numeric and start is not null and cast(section as varchar) in "
                                       f"({_in_list(items)})", items)

    def chunks():
        for quarter, group in _in_chunks(keys):
            facts = _read(finsec, "xbrl_facts", None, quarter, f"accession in ({_in_list(group)})", group,
                          order=("accession", "doc_start", "fact_id"))
            yield facts, _fact_sections(finsec, items, quarter, group)

    return chunks


def _section_chunks(finsec: FinsecResource, items):
    """A callable giving, chunk by chunk (quarter, then accession order), the sections of ``items``."""
    lake = finsec.lake()
    items = [str(i) for i in items]
    if not lake.has_table("filing_sections"):
        return lambda: iter([])
    keys = _keys(finsec, "filing_sections", f"cast(item as varchar) in ({_in_list(items)})", items)

    def chunks():
        for quarter, group in _in_chunks(keys):
            yield _read(finsec, "filing_sections", SECTION_COLUMNS, quarter,
                        f"cast(item as varchar) in ({_in_list(items)}) and accession in ({_in_list(group)})",
                        [*items, *group])

    return chunks


def _streamed_output(finsec: FinsecResource, asset: str, batches, card: dict, schema=None) -> dg.Output:
    """Write a dataset's batches as its table in one lake transaction; its data version is the hash of the rows
    in order, its metadata the data card (filled in as the batches run out) and the lake table's."""
    lake = finsec.lake()
    hasher = None

    def hashed():
        nonlocal hasher
        for df in batches:
            if hasher is None:
                hasher = ContentHasher(df.columns)
            hasher.update(df)
            yield df

    try:
        written = lake.replace_table_batches(asset, hashed(), schema=schema)
    except LakeError as exc:
        raise dg.Failure(f"asset {asset!r}: {exc}") from exc
    leaked = int(lake.sql(f"select count(*) n from (select cik from {quote_ident(asset)} group by cik "
                          "having count(distinct split) > 1)")["n"][0]) if written.rows else None
    metadata = {**_card_metadata(None, card, leaked),
                **lake_table_metadata(lake, asset, None, written.snapshot_id, written.rows)}
    return dg.Output(None, metadata=metadata, data_version=dg.DataVersion(hasher.hexdigest()))


def _card_metadata(df: pd.DataFrame | None, card: dict, leaked: int | None = None) -> dict:
    """The data card as metadata: sizes per split, label distribution (table and chart), derivation, known noise."""
    labels = pd.Series(card["labels"], dtype="float64").sort_values(ascending=False) if card["labels"] else pd.Series(dtype="float64")
    sizes = pd.DataFrame({"rows": card["sizes"], "companies": card["companies"]})
    meta = {
        "rows": card["rows"], "filings": card["filings"], "split_method": card["split_method"],
        "sizes": dg.MetadataValue.md(sizes.to_markdown()),
        "label_distribution": dg.MetadataValue.md(labels.head(60).to_frame("count").to_markdown() if len(labels) else "none"),
        "how_labels_were_derived": dg.MetadataValue.md(card["derived"]),
        "known_noise": md_list(card["noise"]),
        "data_card": dg.MetadataValue.json(json.loads(json.dumps(card, default=str))),
    }
    if len(labels):
        fig, ax = figure(7, 0.5 + 0.22 * min(25, len(labels)))
        top = labels.head(25)[::-1]
        ax.barh([str(k)[:45] for k in top.index], top.values, color="#3b6ea5")
        ax.set_title(f"{card['dataset']}: label distribution ({card['rows']} rows)")
        ax.tick_params(labelsize=7)
        meta["label_chart"] = png_metadata(fig, "label distribution")
    if df is not None and len(df):
        leaked = int((df.groupby("cik")["split"].nunique() > 1).sum())
    if leaked is not None:  # a streamed dataset: counted in the lake table just written
        meta["ciks_in_two_splits"] = leaked
    return meta


def _facts(xbrl_facts: pd.DataFrame) -> pd.DataFrame:
    if xbrl_facts.empty:
        raise dg.Failure("no xbrl_facts rows: materialize xbrl_facts for at least one quarter with inline-XBRL filings")
    return xbrl_facts


class NerDatasetConfig(dg.Config):
    top_k: int = Field(default=40, ge=1, description="Tag the K most frequent us-gaap concepts; others are O.")
    items: list[str] = Field(default=list(ds.NUMERIC_TEXT_ITEMS), description="Section items whose sentences are used.")


@dg.asset(group_name="understanding", deps=FACTS_AND_SECTIONS, kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def ner_dataset(config: NerDatasetConfig, finsec: FinsecResource) -> dg.Output:
    """FiNER-style NER: sentences of MD&A and the notes tagged IOB2 with the us-gaap concept of each numeric fact."""
    card = {}
    batches = ds.ner_dataset_batches(_fact_chunks(finsec, config.items), card, top_k=config.top_k, items=config.items)
    return _streamed_output(finsec, "ner_dataset", batches, card)


class QaDatasetConfig(dg.Config):
    impossible_share: float = Field(default=1 / 3, gt=0, lt=1, description="Share of unanswerable questions.")
    seed: int = Field(default=0, description="Seed choosing the unanswerable pairs.")


@dg.asset(group_name="understanding", deps=FACTS_AND_SECTIONS, kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def qa_dataset(config: QaDatasetConfig, finsec: FinsecResource) -> dg.Output:
    """SQuAD 2.0 extractive QA: questions from a tagged fact's concept and period, answers its span; a third unanswerable."""
    card = {}
    batches = ds.qa_dataset_batches(_fact_chunks(finsec, ds.NUMERIC_TEXT_ITEMS), card,
                                    impossible_share=config.impossible_share, seed=config.seed)
    return _streamed_output(finsec, "qa_dataset", batches, card)


@dg.asset(group_name="understanding", deps=FACTS_AND_SECTIONS, kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def relation_dataset(finsec: FinsecResource) -> dg.Output:
    """Relation extraction: (numeric fact, time expression or member mention) pairs in a sentence, labelled from contexts."""
    card = {}
    batches = ds.relation_dataset_batches(_fact_chunks(finsec, ds.NUMERIC_TEXT_ITEMS), card)
    return _streamed_output(finsec, "relation_dataset", batches, card)


class ClassificationDatasetConfig(dg.Config):
    max_paragraphs_per_section: int = Field(default=30, ge=1, description="Paragraphs sampled per section.")
    min_words: int = Field(default=20, ge=1, description="Shorter paragraphs are left out.")


@dg.asset(group_name="understanding", deps=["filing_sections", "pooled_embeddings"],
          ins={"company_universe": dg.AssetIn()}, kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def classification_dataset(config: ClassificationDatasetConfig, finsec: FinsecResource,
                           company_universe: pd.DataFrame) -> dg.Output:
    """Paragraph -> section item, and filing (mean pooled embedding) -> SIC division."""
    # Sections too short to hold one paragraph of min_words never reach pandas; a chunk of filings at a time.
    lake = finsec.lake()
    where = "coalesce(n_words, 0) >= ?"
    has_sections, has_vectors = lake.has_table("filing_sections"), lake.has_table("pooled_embeddings")
    no_keys = pd.DataFrame(columns=["quarter", "accession"])
    section_keys = _keys(finsec, "filing_sections", where, [config.min_words]) if has_sections else no_keys
    vector_keys = _keys(finsec, "pooled_embeddings") if has_vectors else no_keys

    def section_chunks():
        for quarter, group in _in_chunks(section_keys):
            yield _read(finsec, "filing_sections", SECTION_COLUMNS, quarter,
                        f"{where} and accession in ({_in_list(group)})", [config.min_words, *group])

    def embedding_chunks():
        for quarter, group in _in_chunks(vector_keys):
            yield _read(finsec, "pooled_embeddings", ["accession", "cik", "item", "embedding"], quarter,
                        f"accession in ({_in_list(group)})", group, order=("accession", "item"))

    card = {}
    batches = ds.classification_dataset_batches(section_chunks, embedding_chunks, company_universe, card,
                                                max_paragraphs_per_section=config.max_paragraphs_per_section,
                                                min_words=config.min_words)
    return _streamed_output(finsec, "classification_dataset", batches, card, schema=CLASSIFICATION_SCHEMA)


@dg.asset(group_name="understanding", deps=["filing_sections"], kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def summarization_dataset(finsec: FinsecResource) -> dg.Output:
    """Abstractive summarization: each risk factor's body with its own heading as the summary."""
    card = {}
    batches = ds.summarization_dataset_batches(_section_chunks(finsec, ds.RISK_FACTOR_ITEMS), card)
    return _streamed_output(finsec, "summarization_dataset", batches, card)
