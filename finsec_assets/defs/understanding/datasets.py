"""xbrl_facts, filing_sections (, pooled_embeddings, company_universe) -> the five document-understanding datasets.

Labels are the filers' own: inline-XBRL tags, section items, SIC codes, risk-factor headings. Each dataset is
split by company (no CIK in two splits) and carries a data card in its metadata.
"""

import json

import dagster as dg
import pandas as pd
from pydantic import Field

from ...xbrl import datasets as ds
from ..common import figure, md_list, png_metadata, source_version, table_output

DATASETS_VERSION = source_version(ds)
ALL_QUARTERS = dg.AssetIn(partition_mapping=dg.AllPartitionMapping())
FACTS_AND_SECTIONS = {"xbrl_facts": ALL_QUARTERS, "filing_sections": ALL_QUARTERS}


def _card_metadata(df: pd.DataFrame, card: dict) -> dict:
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
    if len(df):
        leaked = df.groupby("cik")["split"].nunique()
        meta["ciks_in_two_splits"] = int((leaked > 1).sum())
    return meta


def _facts(xbrl_facts: pd.DataFrame) -> pd.DataFrame:
    if xbrl_facts.empty:
        raise dg.Failure("no xbrl_facts rows: materialize xbrl_facts for at least one quarter with inline-XBRL filings")
    return xbrl_facts


class NerDatasetConfig(dg.Config):
    top_k: int = Field(default=40, ge=1, description="Tag the K most frequent us-gaap concepts; others are O.")
    items: list[str] = Field(default=list(ds.NUMERIC_TEXT_ITEMS), description="Section items whose sentences are used.")


@dg.asset(group_name="understanding", ins=FACTS_AND_SECTIONS, kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def ner_dataset(config: NerDatasetConfig, xbrl_facts: pd.DataFrame, filing_sections: pd.DataFrame) -> dg.Output:
    """FiNER-style NER: sentences of MD&A and the notes tagged IOB2 with the us-gaap concept of each numeric fact."""
    df, card = ds.ner_dataset(_facts(xbrl_facts), filing_sections, top_k=config.top_k, items=config.items)
    return table_output(df, _card_metadata(df, card))


class QaDatasetConfig(dg.Config):
    impossible_share: float = Field(default=1 / 3, gt=0, lt=1, description="Share of unanswerable questions.")
    seed: int = Field(default=0, description="Seed choosing the unanswerable pairs.")


@dg.asset(group_name="understanding", ins=FACTS_AND_SECTIONS, kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def qa_dataset(config: QaDatasetConfig, xbrl_facts: pd.DataFrame, filing_sections: pd.DataFrame) -> dg.Output:
    """SQuAD 2.0 extractive QA: questions from a tagged fact's concept and period, answers its span; a third unanswerable."""
    df, card = ds.qa_dataset(_facts(xbrl_facts), filing_sections, impossible_share=config.impossible_share, seed=config.seed)
    return table_output(df, _card_metadata(df, card))


@dg.asset(group_name="understanding", ins=FACTS_AND_SECTIONS, kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def relation_dataset(xbrl_facts: pd.DataFrame, filing_sections: pd.DataFrame) -> dg.Output:
    """Relation extraction: (numeric fact, time expression or member mention) pairs in a sentence, labelled from contexts."""
    df, card = ds.relation_dataset(_facts(xbrl_facts), filing_sections)
    return table_output(df, _card_metadata(df, card))


class ClassificationDatasetConfig(dg.Config):
    max_paragraphs_per_section: int = Field(default=30, ge=1, description="Paragraphs sampled per section.")
    min_words: int = Field(default=20, ge=1, description="Shorter paragraphs are left out.")


@dg.asset(group_name="understanding",
          ins={"filing_sections": ALL_QUARTERS, "pooled_embeddings": ALL_QUARTERS, "company_universe": dg.AssetIn()},
          kinds={"python", "parquet"}, code_version=DATASETS_VERSION)
def classification_dataset(config: ClassificationDatasetConfig, filing_sections: pd.DataFrame,
                           pooled_embeddings: pd.DataFrame, company_universe: pd.DataFrame) -> dg.Output:
    """Paragraph -> section item, and filing (mean pooled embedding) -> SIC division."""
    df, card = ds.classification_dataset(filing_sections, pooled_embeddings, company_universe,
                                         max_paragraphs_per_section=config.max_paragraphs_per_section,
                                         min_words=config.min_words)
    return table_output(df, _card_metadata(df, card))


@dg.asset(group_name="understanding", ins={"filing_sections": ALL_QUARTERS}, kinds={"python", "parquet"},
          code_version=DATASETS_VERSION)
def summarization_dataset(filing_sections: pd.DataFrame) -> dg.Output:
    """Abstractive summarization: each risk factor's body with its own heading as the summary."""
    df, card = ds.summarization_dataset(filing_sections)
    return table_output(df, _card_metadata(df, card))
