"""Small real models published the way the graph publishes them, for the serving tests and benchmark.

* ``publish_causal_lm``: a tiny GPT-J with a BPE tokenizer trained on sample text (``clm_finetune``'s own
  tokenizer trainer), saved with ``manifest.json`` and published through ``CheckpointStore`` (versions/<v>/,
  then the pointer), as ``finetuned_checkpoint`` does;
* ``publish_rating_models``: LightGBM models from ``ml.rating.fit_and_evaluate`` on simulated firms paired
  with sample MD&A passages, stored as ``rating_models`` stores them: one bundle per (variant, task) in the
  object store and the registry table pointing at them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
TEN_KS = ("1045810/000104581024000029/nvda-20240128.htm.gz", "63908/000006390824000072/mcd-20231231.htm.gz",
          "200406/000020040624000013/jnj-20231231.htm.gz", "97476/000009747624000007/txn-20231231.htm.gz")


def sample_document(rel: str) -> bytes:
    return gzip.decompress((SAMPLE / rel).read_bytes())


@lru_cache(maxsize=1)
def sample_sections() -> tuple[tuple[str, str, str], ...]:
    """(document, item, text) for the MD&A (7) and Risk Factors (1A) of four bundled 10-Ks."""
    from finsec_assets.text.sections import extract_sections

    out = []
    for rel in TEN_KS:
        for s in extract_sections(sample_document(rel), "10-K"):
            if s.item in ("7", "1A") and s.text.strip():
                out.append((rel, s.item, s.text))
    return tuple(out)


@lru_cache(maxsize=1)
def _tokenizer():
    from finsec_assets.ml.clm_finetune import train_bpe_tokenizer

    return train_bpe_tokenizer([t for _, _, t in sample_sections()], 512, 100_000, 256)


def publish_causal_lm(object_store_url: str, seed: int, work: Path) -> str:
    """Publish a tiny GPT-J (weights from ``seed``) as finetuned_checkpoint; returns its version."""
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    from finsec_assets.ml.training import MANIFEST, CheckpointStore
    from finsec_assets.storage.object_store import ObjectStore

    tokenizer = _tokenizer()
    eos = tokenizer.eos_token_id
    config = GPTJConfig(vocab_size=-(-len(tokenizer) // 64) * 64, n_positions=256, n_embd=64, n_layer=2, n_head=4,
                        rotary_dim=8, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = GPTJForCausalLM(config)
    version = f"test-{seed}-{hashlib.sha256(str(time.time()).encode()).hexdigest()[:8]}"
    out = work / version
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / MANIFEST).write_text(json.dumps({
        "format": "finsec-checkpoint/1", "kind": "causal-lm", "version": version,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "company": {"cik": 104169, "ticker": "WMT"}, "code_version": "test", "metrics": {},
        "base": {"name": f"tiny GPT-J, random weights (seed {seed})", "model_type": "gptj", "parameters": 0},
    }))
    CheckpointStore(ObjectStore(object_store_url).uri("checkpoints/finetuned_checkpoint")).publish(out, version)
    return version


def rating_dataset(n_firms: int = 40, seed: int = 7, components: int = 4) -> tuple[pd.DataFrame, dict, list[str]]:
    """Simulated firms (JumpStart's generator) with real MD&A passages: ratios, industry, scores, embedding PCA."""
    from finsec_assets.ml.altman import INVESTMENT_GRADE, NLP_SCORES, ratios_from_jumpstart_columns, simulate_financials, split_passages
    from finsec_assets.ml.embeddings import DEFAULT_MODEL_NAME, embed_documents
    from finsec_assets.ml.rating import apply_embedding_pca, fit_embedding_pca
    from finsec_assets.text.scoring import score_texts

    passages = []
    for _, item, text in sample_sections():
        if item == "7":
            passages.extend(p["text"] if isinstance(p, dict) else p for p in split_passages(text, 60, 60))
    rng = np.random.default_rng(seed)
    texts = [passages[i] for i in rng.choice(len(passages), n_firms, replace=len(passages) < n_firms)]
    firms = simulate_financials(n_firms, seed)
    df = ratios_from_jumpstart_columns(firms, "TotalAssets").reset_index(drop=True)
    df.insert(0, "industry_code", rng.choice(list("DEIH"), n_firms))
    scores = pd.DataFrame(score_texts(texts, processes=1))
    for name in NLP_SCORES:
        df[name] = scores[name]
    vectors = embed_documents(texts)
    pca = fit_embedding_pca(vectors, components, seed)
    pca.update({"model": DEFAULT_MODEL_NAME, "level": "passage"})
    reduced = apply_embedding_pca(vectors, pca)
    for i in range(reduced.shape[1]):
        df[f"emb_{i}"] = reduced[:, i]
    df["rating"] = firms["Rating"].to_numpy()
    df["investment_grade"] = df["rating"].isin(INVESTMENT_GRADE)
    return df, pca, texts


def publish_rating_models(object_store_url: str) -> pd.DataFrame:
    """Train the four models on :func:`rating_dataset` and store them as the rating_models asset does."""
    from finsec_assets.ml.altman import NLP_SCORES
    from finsec_assets.ml.rating import fit_and_evaluate
    from finsec_assets.storage.object_store import ObjectStore
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake
    from finsec_assets.storage.tables import content_hash

    store = ObjectStore(object_store_url)
    df, pca, _ = rating_dataset()
    tabular = ["industry_code", "A", "B", "C", "D", "E", "altman_z"]
    variants = {"tabular": tabular, "tabtext": tabular + list(NLP_SCORES) + [c for c in df.columns if c.startswith("emb_")]}
    trained_on = content_hash(df)
    rows = []
    for variant, features in variants.items():
        for task, label in (("binary", "investment_grade"), ("multiclass", "rating")):
            model, m = fit_and_evaluate(df, label, task, features=features, n_trials=1, cv_repeats=0, n_jobs=1)
            bundle = json.dumps({"format": "finsec-rating-bundle/1", "model_variant": variant, "task": task,
                                 "trained_on": trained_on, "rating_model": model.to_bytes().decode(),
                                 "embedding_pca": pca if variant == "tabtext" else None}).encode()
            version = hashlib.sha256(bundle).hexdigest()[:12]
            uri = store.put_bytes(f"credit/rating_models/{variant}-{task}-{version}.json", bundle)
            rows.append({"model_variant": variant, "task": task, "label": label, "model_version": version, "uri": uri,
                         "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "features": ",".join(features),
                         "trained_on": trained_on})
    registry = pd.DataFrame(rows)
    home = str(Path(object_store_url).parent)  # the tests' object store is FINSEC_HOME/objects
    open_lake(Settings.from_env({"FINSEC_HOME": home, "FINSEC_OBJECT_STORE_URL": object_store_url})).replace_table(
        "rating_models", registry)
    return registry
