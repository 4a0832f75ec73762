"""Pooled document embeddings: parity with sentence-transformers, windows, pooling, models, bad input, DuckDB."""

import math

import numpy as np
import pytest

from finsec_assets.ml import embeddings as emb
from finsec_assets.text.sentences import split_sentences

SENTENCES = [
    "Net sales increased 5% compared to the prior year, driven by higher iPhone revenue.",
    "Gross margin decreased due to a different product mix and foreign currency headwinds.",
    "We recorded an impairment charge of $1.2 billion related to goodwill.",
    "Cash.",
    "The Company believes its existing balances of cash, cash equivalents and marketable securities will be "
    "sufficient to satisfy its working capital needs, capital asset purchases, dividends and share repurchases "
    "for at least the next 12 months.",
]
LONG_SENTENCE = " ".join(
    f"Segment {i} operating income rose on higher comparable sales, lower freight costs and favorable pricing"
    for i in range(40)
) + "."


@pytest.fixture(scope="module")
def encoder():
    return emb.load_encoder(device="cpu")


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def test_one_sentence_document_is_sentence_transformers_encode(encoder):
    vectors = emb.embed_documents([[s] for s in SENTENCES], device="cpu")
    reference = encoder.model.encode(SENTENCES)
    assert vectors.dtype == np.float32 and vectors.shape == (len(SENTENCES), 384)
    assert (1 - cosine(vectors, reference)).max() < 1e-5
    assert np.abs(np.linalg.norm(vectors, axis=1) - 1).max() < 1e-5


def test_text_documents_are_split_and_mean_pooled(encoder):
    text = " ".join(SENTENCES[:3]) + "\n\n" + SENTENCES[4]
    sentences = split_sentences(text)
    assert len(sentences) == 4
    vector = emb.embed_documents([text], model=encoder)[0]
    expected = unit(encoder.model.encode(sentences).mean(axis=0))
    assert 1 - cosine(vector, expected) < 1e-5
    weights = np.array([len(encoder._tokenizer.encode(s).ids) - 2 for s in sentences], float)
    weighted = emb.embed_documents([text], model=encoder, pooling="token_weighted")[0]
    expected_weighted = unit((encoder.model.encode(sentences) * weights[:, None]).sum(axis=0))
    assert 1 - cosine(weighted, expected_weighted) < 1e-5
    assert 1 - cosine(weighted, vector) > 1e-5  # the weighting really changes something


def test_repeated_sentences_are_encoded_once_but_counted_each_time(encoder):
    a, b = SENTENCES[0], SENTENCES[1]
    result = encoder.embed_documents([[a, a, b], [b], [a]])
    assert result.n_unique_sentences == 2 and result.n_windows == 2
    assert result.n_sentences.tolist() == [3, 1, 1]
    ea, eb = encoder.model.encode([a, b])
    assert 1 - cosine(result.vectors[0], 2 * ea + eb) < 1e-5
    assert result.sentences_per_second > 0 and result.documents_per_second > 0


def test_long_sentences_are_windowed_at_word_boundaries_not_truncated(encoder):
    ids = encoder._tokenizer.encode(LONG_SENTENCE).ids
    assert len(ids) > 2 * encoder.max_length  # three windows at least
    pieces = encoder.window_texts(LONG_SENTENCE)
    assert len(pieces) >= math.ceil((len(ids) - 2) / (encoder.max_length - 2)) >= 3
    lengths = [len(encoder._tokenizer.encode(p).ids) for p in pieces]
    assert max(lengths) <= encoder.max_length
    assert sum(n - 2 for n in lengths) == len(ids) - 2  # every token lands in exactly one window
    assert all(LONG_SENTENCE.find(p) >= 0 for p in pieces) and pieces[0].startswith("Segment 0")
    assert not any(p[0].isalnum() and LONG_SENTENCE[LONG_SENTENCE.find(p) - 1].isalnum() for p in pieces[1:])
    result = encoder.embed_documents([[LONG_SENTENCE]])
    assert result.n_windows == len(pieces)
    expected = unit(encoder.model.encode(pieces).mean(axis=0))
    assert 1 - cosine(result.vectors[0], expected) < 1e-5
    truncated = encoder.model.encode([LONG_SENTENCE])[0]  # what encode alone would give: the first window only
    assert 1 - cosine(result.vectors[0], truncated) > 1e-4


def test_batching_sorting_and_background_tokenizer_do_not_change_results(encoder):
    documents = [SENTENCES, SENTENCES[::-1][:3], [LONG_SENTENCE, SENTENCES[3]], SENTENCES[1:2]]
    plain = encoder.embed_documents(documents, batch_size=64, overlap=False).vectors
    threaded = encoder.embed_documents(documents, batch_size=2, overlap=True).vectors
    assert (1 - cosine(plain, threaded)).max() < 1e-5


def test_producer_errors_reach_the_caller():
    def broken():
        yield 1
        raise RuntimeError("tokenizer exploded")

    got = []
    with pytest.raises(RuntimeError, match="tokenizer exploded"):
        for item in emb._background(broken(), depth=2):
            got.append(item)
    assert got == [1]


def test_bfloat16_path_stays_close_to_float32(encoder):
    half = emb.load_encoder(device="cpu", dtype="bfloat16")
    assert half.dtype == "bfloat16" and half is not encoder
    vectors = half.embed_documents([SENTENCES, SENTENCES[:2]]).vectors
    reference = encoder.embed_documents([SENTENCES, SENTENCES[:2]]).vectors
    assert vectors.dtype == np.float32
    assert (1 - cosine(vectors, reference)).max() < 1e-2


def test_bad_documents_fail_clearly(encoder):
    with pytest.raises(ValueError, match=r"2 document\(s\) have no text.*positions 1, 3"):
        encoder.embed_documents(["Revenue grew.", "   ", ["Costs fell."], []])
    with pytest.raises(TypeError, match="single string"):
        emb.embed_documents("Revenue grew.", model=encoder)
    with pytest.raises(TypeError, match="document 1"):
        emb.embed_documents(["Revenue grew.", 42], model=encoder)
    with pytest.raises(ValueError, match="pooling 'max'"):
        encoder.embed_documents(["Revenue grew."], pooling="max")


def test_missing_model_and_dim_mismatch_name_the_model_and_the_dim(tmp_path, encoder):
    missing = tmp_path / "no-such-model"
    with pytest.raises(emb.EmbeddingModelError, match=r"no-such-model.*does not exist"):
        emb.embed_documents(["Revenue grew."], model=missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(emb.EmbeddingModelError, match="neither modules.json"):
        emb.load_encoder(tmp_path / "empty")
    with pytest.raises(emb.EmbeddingModelError, match="remote URI"):
        emb.load_encoder("s3://bucket/models/x")
    with pytest.raises(emb.EmbeddingModelError, match=r"all-MiniLM-L6-v2.*384-d.*quarter 2024-01-01 have dim 768"):
        emb.require_dim(encoder, 768, "the vectors of quarter 2024-01-01")
    emb.require_dim(encoder, 384)
    emb.require_dim(encoder, None)


def test_sentence_transformers_directory_and_plain_huggingface_encoder(tmp_path, encoder):
    import torch
    from transformers import AutoModel, BertConfig, BertForMaskedLM

    st_dir = tmp_path / "st"
    encoder.model.save(str(st_dir))
    copy = emb.load_encoder(st_dir, device="cpu")
    assert copy.kind == "sentence-transformers" and copy.dim == 384
    assert (1 - cosine(copy.embed_documents([SENTENCES]).vectors, encoder.embed_documents([SENTENCES]).vectors)).max() < 1e-6

    # a tiny MLM checkpoint like the project's pretrained_checkpoint: AutoModel + mean pooling over tokens
    hf_dir = tmp_path / "mlm"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=encoder.model.tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=40)
    BertForMaskedLM(config).save_pretrained(hf_dir)
    encoder.model.tokenizer.save_pretrained(hf_dir)
    mlm = emb.load_encoder(hf_dir, device="cpu")
    assert mlm.kind == "huggingface" and mlm.dim == 32 and mlm.max_length == 40 and not mlm.normalizes
    base = AutoModel.from_pretrained(hf_dir).eval()
    tokens = encoder.model.tokenizer([SENTENCES[0]], return_tensors="pt")
    with torch.no_grad():
        hidden = base(**tokens).last_hidden_state[0]
    expected = hidden.mean(dim=0).numpy()
    got = mlm.embed_documents([[SENTENCES[0]]]).vectors[0]
    assert 1 - cosine(got, expected) < 1e-5
    assert np.isclose(np.linalg.norm(got), 1.0, atol=1e-5)  # unit length even though the model does not normalise
    long = mlm.embed_documents([[SENTENCES[4]]])  # 40 tokens max: windowed
    assert long.n_windows >= 2
    with pytest.raises(emb.EmbeddingModelError, match=rf"{hf_dir.name}.*32-d.*dim 384"):
        emb.require_dim(mlm, 384)


def test_same_company_closer_share_and_projection():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    vectors = np.concatenate([centres[c] + 0.1 * rng.normal(size=(2, 16)) for c in range(3)])
    companies = [1, 1, 2, 2, 3, 3]
    share, judged = emb.same_company_closer_share(vectors, companies)
    assert (share, judged) == (1.0, 6)
    shuffled = np.concatenate([vectors[[0, 2]], vectors[[1, 4]], vectors[[3, 5]]])
    share, judged = emb.same_company_closer_share(shuffled, companies, block=4)
    assert judged == 6 and share < 1.0
    share, judged = emb.same_company_closer_share(vectors[:3], [1, 2, 3])  # no company has two documents
    assert math.isnan(share) and judged == 0
    coords, ratio = emb.project_2d(vectors)
    assert coords.shape == (6, 2) and 0 < ratio[1] <= ratio[0] <= 1
    with pytest.raises(ValueError, match="at least two"):
        emb.project_2d(vectors[:1])


def test_vectors_land_in_the_lake_as_fixed_size_arrays(tmp_path, encoder):
    import pandas as pd

    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake

    vectors = encoder.embed_documents([SENTENCES[:2], SENTENCES[2:4], [SENTENCES[4]]]).vectors
    df = pd.DataFrame({"accession": ["a", "b", "c"], "item": ["7", "7", "1A"], "dim": 384, "embedding": list(vectors)})
    lake = open_lake(Settings.from_env({"FINSEC_HOME": str(tmp_path)}))
    lake.replace_partition("pooled_embeddings", "2024-01-01", df)
    kind = lake.sql("select typeof(embedding) k from pooled_embeddings limit 1")["k"][0]
    sims = lake.sql("select x.accession, y.accession, array_cosine_similarity(x.embedding, y.embedding) "
                    "from pooled_embeddings x, pooled_embeddings y order by 1, 2").itertuples(index=False, name=None)
    assert kind == "FLOAT[384]"
    expected = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    got = np.array([s for _, _, s in sims]).reshape(3, 3)
    assert np.abs(got - expected).max() < 1e-5
    back = lake.read_partition("pooled_embeddings", "2024-01-01")
    assert np.allclose(np.stack(back["embedding"].to_numpy()), vectors)


# -- sections through the sentence-vector cache (issue 15: each sentence encoded once for summaries and embeddings)

SECTION_TEXTS = [
    " ".join(SENTENCES[:3]) + " " + SENTENCES[0] + "\n\n" + SENTENCES[4],  # a repeated sentence counts twice
    LONG_SENTENCE + " " + SENTENCES[1],  # a sentence cut into windows
    SENTENCES[2] + " " + SENTENCES[3],
]


@pytest.mark.parametrize("pooling", emb.POOLINGS)
def test_embed_sections_pools_as_embed_documents_does(encoder, pooling):
    expected = encoder.embed_documents(SECTION_TEXTS, pooling=pooling)
    got = encoder.embed_sections(SECTION_TEXTS, pooling=pooling, chunk_texts=2)
    assert (1 - cosine(got.vectors, expected.vectors)).max() < 1e-6
    assert got.n_sentences.tolist() == expected.n_sentences.tolist()
    assert got.n_cached_sentences == 0 and got.n_windows >= expected.n_windows


def test_section_sentence_vectors_are_what_one_sentence_documents_get(encoder):
    batch = encoder.section_vectors(SECTION_TEXTS)
    asked = [SENTENCES[4], SENTENCES[0], "A sentence that is not in the text at all."]
    got = batch.sentence_vectors(0, asked, encoder)
    expected = encoder.embed_documents([[s] for s in asked]).vectors
    assert (1 - cosine(got, expected)).max() < 1e-6
    long = batch.sentence_vectors(1, [LONG_SENTENCE], encoder)  # windows averaged, then unit length
    assert 1 - cosine(long, encoder.embed_documents([[LONG_SENTENCE]]).vectors)[0] < 1e-6


def test_cache_shares_sentences_between_calls_and_misses_for_another_model(tmp_path, encoder):
    from finsec_assets.storage.object_store import ObjectStore

    store = ObjectStore(str(tmp_path / "objects"))
    cache = emb.SentenceVectorCache(store)
    first = encoder.embed_sections(SECTION_TEXTS, cache=cache)
    assert first.n_cached_sentences == 0 and first.n_unique_sentences > 0
    keys = store.list(emb.SentenceVectorCache.PREFIX)
    assert len(keys) == len(SECTION_TEXTS) and not any("/.tmp-" in k for k in keys)
    # another step (summaries) asking for the same texts' sentences encodes nothing
    again = emb.SentenceVectorCache(store)
    batch = encoder.section_vectors(SECTION_TEXTS[:2], again)
    assert batch.n_encoded_sentences == 0 and batch.n_cached_sentences > 0 and again.hits == 2
    second = encoder.embed_sections(SECTION_TEXTS, cache=again)
    assert second.n_unique_sentences == 0 and np.abs(second.vectors - first.vectors).max() < 1e-7

    # the same model saved elsewhere has the same version (its files are equal); one changed file misses
    copy_dir = tmp_path / "st"
    encoder.model.save(str(copy_dir))
    copy = emb.SentenceEncoder(copy_dir, device="cpu")
    assert copy.version == emb.SentenceEncoder(copy_dir, device="cpu").version
    readme = copy_dir / "README.md"
    readme.write_text(readme.read_text() + "\nedited\n")
    edited = emb.SentenceEncoder(copy_dir, device="cpu")
    assert edited.version != copy.version
    assert edited.embed_sections(SECTION_TEXTS, cache=again).n_cached_sentences == 0
    assert emb.SentenceEncoder(None, device="cpu", dtype="bfloat16").version != encoder.version  # dtype too


def test_a_torn_or_foreign_cache_entry_is_a_miss_and_is_rewritten(tmp_path, encoder):
    from finsec_assets.storage.object_store import ObjectStore

    store = ObjectStore(str(tmp_path / "objects"))
    cache = emb.SentenceVectorCache(store)
    key = cache.key(encoder, SECTION_TEXTS[0])
    whole = encoder.section_vectors(SECTION_TEXTS[:1], cache).entries[0].to_bytes()
    store.put_bytes(key, whole[: len(whole) // 2])  # what a torn write would leave, were puts not atomic
    redo = encoder.section_vectors(SECTION_TEXTS[:1], cache)
    assert redo.n_cached_sentences == 0 and redo.n_encoded_sentences > 0
    assert store.get_bytes(key) == whole or emb.SectionVectors.from_bytes(store.get_bytes(key)).matches(redo.keys[0])
    # an entry of another text under this text's key (a hash collision, a copied file): its sentences do not match
    other = encoder.section_vectors(SECTION_TEXTS[2:], None).entries[0].to_bytes()
    store.put_bytes(key, other)
    assert encoder.section_vectors(SECTION_TEXTS[:1], cache).n_cached_sentences == 0


def test_loading_an_encoder_makes_glibc_return_large_freed_blocks(monkeypatch, encoder):
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt tuning is glibc's")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert emb.return_freed_memory_to_the_os() is True  # applied when the module's encoder loaded; idempotent
    monkeypatch.setattr(emb, "_MALLOC_TUNED", False)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert emb.return_freed_memory_to_the_os() is False  # the user's own malloc settings win


@pytest.mark.parametrize("pooling", emb.POOLINGS)
def test_passages_pool_from_their_texts_cached_sentences(tmp_path, encoder, pooling):
    from finsec_assets.ml.altman import split_passages
    from finsec_assets.storage.object_store import ObjectStore

    store = ObjectStore(str(tmp_path / "objects"))
    encoder.embed_sections(SECTION_TEXTS, cache=emb.SentenceVectorCache(store))  # what pooled_embeddings leaves
    text = " ".join(SENTENCES * 3) + " " + LONG_SENTENCE
    passages = split_passages(text, window_words=20, stride_words=10)
    assert len(passages) > 3
    expected = encoder.embed_documents(passages, pooling=pooling).vectors
    cache = emb.SentenceVectorCache(store)
    batch = encoder.section_vectors([SECTION_TEXTS[0], text], cache)
    got = np.stack([batch.passage_vector(1, p, encoder, pooling)[0] for p in passages])
    assert (1 - cosine(got, expected)).max() < 1e-6  # what embedding each passage on its own gives
    strangers = sum(batch.passage_vector(1, p, encoder, pooling)[1] for p in passages)
    assert strangers > 0  # the long sentence is cut into pieces by the passages: those pieces are encoded
    again = emb.SentenceVectorCache(store)
    cached = encoder.section_vectors([text], again)
    assert again.hits == 1 and cached.n_encoded_sentences == 0  # the text's sentences come from the cache now
    assert batch.passage_vector(0, SENTENCES[2], encoder, pooling)[1] == 0
