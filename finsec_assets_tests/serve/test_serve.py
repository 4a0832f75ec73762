"""The service over real sockets: a uvicorn server started with `python -m finsec_assets.serve`, real HTTP clients.

Answers are compared with the offline library functions the graph uses; every error code is provoked; a
client keeps sending requests while a new checkpoint version is published; auth and the bind rule.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from .conftest import REPO, TOKEN
from .publish import TEN_KS, publish_causal_lm, sample_document, sample_sections


def texts(n: int, max_chars: int = 20_000) -> list[str]:
    return [t[:max_chars] for _, _, t in sample_sections()[:n]]


def no_trace(response: httpx.Response) -> None:
    assert "Traceback" not in response.text and 'File "' not in response.text


# -- equality with the offline functions ----------------------------------------------------------


def test_embeddings_equal_embed_documents_under_concurrency(server, client):
    from finsec_assets.ml.embeddings import embed_documents

    docs = texts(5, 6000)
    with ThreadPoolExecutor(5) as pool:  # five one-text requests at once: they share batches
        answers = list(pool.map(lambda t: client.post("/v1/embeddings", json={"texts": [t]}), docs))
    together = client.post("/v1/embeddings", json={"texts": docs})
    offline = embed_documents(docs)
    for r in [*answers, together]:
        assert r.status_code == 200, r.text
        assert r.json()["model"]["asset"] == "pooled_embeddings"
        assert r.json()["model"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
        assert r.json()["model"]["version"].startswith("all-MiniLM-L6-v2@")
    served = np.array([r.json()["embeddings"][0] for r in answers])
    np.testing.assert_allclose(served, offline, atol=1e-5)
    np.testing.assert_allclose(np.array(together.json()["embeddings"]), offline, atol=1e-5)
    assert together.json()["dim"] == 384
    stats = client.get("/v1/models").json()["batching"]["embeddings"]
    assert stats["requests"] >= 6 and stats["batches"] <= stats["requests"]


def test_scores_equal_score_text(client):
    from finsec_assets.text.scoring import score_text

    docs = texts(2) + [""]
    r = client.post("/v1/scores", json={"texts": docs, "with_counts": True})
    assert r.status_code == 200, r.text
    for served, doc in zip(r.json()["scores"], docs):
        expected = score_text(doc, with_counts=True)
        assert served.keys() == expected.keys()
        for k, v in expected.items():
            if isinstance(v, float) and np.isnan(v):
                assert served[k] is None  # JSON has no NaN: empty text's readability is null
            else:
                assert served[k] == v, k
    assert r.json()["model"]["asset"] == "nlp_scores" and len(r.json()["model"]["version"]) == 12


def test_summaries_equal_the_summarizers(client):
    from finsec_assets.ml.embeddings import load_encoder
    from finsec_assets.text.summarize import jaccard_summary, kmedoids_summary

    doc = texts(1, 6000)[0]
    r = client.post("/v1/summaries", json={"texts": [doc], "method": "jaccard", "sentences": 3})
    assert r.status_code == 200, r.text
    assert r.json()["summaries"] == [jaccard_summary(doc, size=3)]
    r = client.post("/v1/summaries", json={"texts": [doc], "method": "kmedoids", "sentences": 3})
    encoder = load_encoder(None)
    expected = kmedoids_summary(doc, size=3, embed=lambda s: encoder.embed_documents([[x] for x in s]).vectors, metric="cosine")
    assert r.status_code == 200, r.text
    assert r.json()["summaries"] == [expected]


def test_sections_equal_extract_sections(client):
    from finsec_assets.text.sections import extract_sections

    raw = (REPO / "finsec_assets/data/edgar/Archives/edgar/data" / TEN_KS[1]).read_bytes()  # gzip, as stored
    r = client.post("/v1/sections", json={"form": "10-K", "document_base64": base64.b64encode(raw).decode()})
    assert r.status_code == 200, r.text
    expected = extract_sections(sample_document(TEN_KS[1]), "10-K")
    assert [(s["item"], s["text"], s["start"], s["end"]) for s in r.json()["sections"]] == \
           [(s.item, s.text, s.start, s.end) for s in expected]
    html = sample_document(TEN_KS[1]).decode("utf-8", errors="replace")
    r2 = client.post("/v1/sections", json={"form": "10-K", "document": html})
    assert [s["item"] for s in r2.json()["sections"]] == [s.item for s in expected]


def test_generate_with_a_seed_equals_generate_texts(server, client):
    from transformers import AutoTokenizer

    from finsec_assets.ml.clm_finetune import GenerationSettings, generate_texts, load_causal_lm

    prompt = "This Form 10-K report shows that"
    body = {"prompt": prompt, "max_new_tokens": 20, "seed": 3, "top_k": 50, "top_p": 0.9, "temperature": 0.8}
    r = client.post("/v1/generate", json=body)
    assert r.status_code == 200, r.text
    version = r.json()["model"]["version"]
    from finsec_assets.ml.training import CheckpointStore
    from finsec_assets.storage.object_store import ObjectStore

    store = ObjectStore(str(server.home / "objects"))
    checkpoints = CheckpointStore(store.uri("checkpoints/finetuned_checkpoint"))
    path = checkpoints.store.local_path(checkpoints.publication_dir(version))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = load_causal_lm(path, "float32")
    n_prompt = len(tokenizer(prompt)["input_ids"])
    offline = generate_texts(model, tokenizer, GenerationSettings(prompts=[prompt], max_length=n_prompt + 20, top_k=50,
                                                                  top_p=0.9, temperature=0.8, seed=3), device="cpu")[0]
    (served,) = r.json()["generations"]
    assert served["text"] == offline["text"] and served["new_tokens"] == offline["new_tokens"]
    assert client.post("/v1/generate", json=body).json()["generations"] == r.json()["generations"]  # reproducible


def test_generate_without_seed_batches_concurrent_requests(client):
    body = {"prompt": "We serve consumers through", "max_new_tokens": 12, "num_return_sequences": 2}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda p: client.post("/v1/generate", json={**body, "prompt": p}),
                                ["We serve consumers through", "Net sales increased", "Our risk factors include", "In fiscal"]))
    for r, prompt in zip(answers, ["We serve consumers through", "Net sales increased", "Our risk factors include", "In fiscal"]):
        assert r.status_code == 200, r.text
        gens = r.json()["generations"]
        assert len(gens) == 2 and all(1 <= g["new_tokens"] <= 12 for g in gens)
        assert all(g["text"].startswith(prompt) for g in gens)
        assert r.json()["parameters"]["top_k"] == 250  # JumpStart's defaults


def test_ratings_equal_the_models_offline(server, client):
    from finsec_assets.ml.altman import NLP_SCORES, altman_z
    from finsec_assets.ml.embeddings import embed_documents
    from finsec_assets.ml.rating import RatingModel, apply_embedding_pca
    from finsec_assets.storage.object_store import ObjectStore
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake
    from finsec_assets.text.scoring import score_text

    docs = texts(3, 3000)
    firms = [{"industry_code": c, "A": a, "B": 1.1, "C": 0.8, "D": 0.1, "E": 0.2 + a, "text": t}
             for c, a, t in zip("DIH", (0.02, 0.1, -0.05), docs)]
    r = client.post("/v1/ratings", json={"firms": firms})
    assert r.status_code == 200, r.text
    assert r.json()["model_variant"] == "tabtext"
    store = ObjectStore(str(server.home / "objects"))
    registry = (open_lake(Settings.from_env({"FINSEC_HOME": str(server.home)})).read_partition("rating_models", None)
                .set_index(["model_variant", "task"]))
    bundle = json.loads(store.get_bytes(registry.loc[("tabtext", "multiclass"), "uri"]))
    binary = json.loads(store.get_bytes(registry.loc[("tabtext", "binary"), "uri"]))
    import pandas as pd

    df = pd.DataFrame([{k: f[k] for k in ("industry_code", "A", "B", "C", "D", "E")} for f in firms])
    df["altman_z"] = altman_z(df["A"], df["B"], df["C"], df["D"], df["E"])
    for name in NLP_SCORES:
        df[name] = [score_text(t)[name] for t in docs]
    reduced = apply_embedding_pca(embed_documents(docs), bundle["embedding_pca"])
    for i in range(reduced.shape[1]):
        df[f"emb_{i}"] = reduced[:, i]
    proba = RatingModel.from_bytes(bundle["rating_model"].encode()).predict_proba(df)
    grade = RatingModel.from_bytes(binary["rating_model"].encode()).predict_proba(df)
    for i, served in enumerate(r.json()["ratings"]):
        np.testing.assert_allclose([served["probabilities"][c] for c in proba.columns], proba.iloc[i].to_numpy(), atol=1e-6)
        assert served["rating"] == proba.columns[int(np.argmax(proba.iloc[i].to_numpy()))]
        assert served["investment_grade_probability"] == pytest.approx(grade.iloc[i, 1], abs=1e-6)
    assert r.json()["model"]["models"]["multiclass"] == registry.loc[("tabtext", "multiclass"), "model_version"]
    tabular = client.post("/v1/ratings", json={"firms": [{k: v for k, v in f.items() if k != "text"} for f in firms]})
    assert tabular.status_code == 200 and tabular.json()["model_variant"] == "tabular"


def test_models_lists_every_model_with_version_and_provenance(client):
    models = {m["asset"]: m for m in client.get("/v1/models").json()["models"]}
    assert {"pooled_embeddings", "finetuned_checkpoint", "rating_models", "nlp_scores", "filing_summaries",
            "filing_sections", "ner_model", "qa_model"} <= set(models)
    for asset in ("finetuned_checkpoint", "rating_models"):
        m = models[asset]
        assert m["state"] == "loaded" and m["version"] and m["published_at"] and m["materialization"], m
    # nothing of pooled_embeddings stored here: its default, the bundled all-MiniLM-L6-v2, answers
    assert models["pooled_embeddings"]["detail"]["chosen_by"] == "pooled_embeddings default (nothing stored yet)"
    assert models["finetuned_checkpoint"]["materialization"]["data_version"] == models["finetuned_checkpoint"]["version"]
    assert len(models["rating_models"]["detail"]["models"]) == 4


# -- errors ---------------------------------------------------------------------------------------


def test_too_large_is_413_with_a_message(client):
    r = client.post("/v1/embeddings", json={"texts": ["a sentence."] * 9})
    assert r.status_code == 413 and "at most 8" in r.json()["detail"] and r.json()["field"] == "texts"
    r = client.post("/v1/scores", json={"texts": ["ok.", "x" * 400_001]})
    assert r.status_code == 413 and r.json()["field"] == "texts.1" and "400,001 characters" in r.json()["detail"]
    r = client.post("/v1/generate", json={"prompt": "We", "max_new_tokens": 65})
    assert r.status_code == 413 and r.json()["field"] == "max_new_tokens"
    r = client.post("/v1/scores", content=b'{"texts": ["' + b"a" * 20_000_000 + b'"]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    no_trace(r)

    def streamed():  # no Content-Length: counted while it arrives
        yield b'{"texts": ["'
        for _ in range(20):
            yield b"a" * 1_000_000
        yield b'"]}'

    r = client.post("/v1/scores", content=streamed(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


@pytest.mark.parametrize("path, body, field", [
    ("/v1/embeddings", {}, "texts"),
    ("/v1/embeddings", {"texts": []}, "texts"),
    ("/v1/embeddings", {"texts": ["fine.", 7]}, "texts.1"),
    ("/v1/embeddings", {"texts": ["fine."], "pooling": "max"}, "pooling"),
    ("/v1/embeddings", {"texts": ["fine.", "   "]}, "texts.1"),
    ("/v1/summaries", {"texts": ["a."], "method": "lexrank"}, "method"),
    ("/v1/generate", {"prompt": "x", "top_p": 1.5}, "top_p"),
    ("/v1/ratings", {"firms": [{"A": 1, "B": 1, "C": 1, "D": 1}]}, "firms.0.E"),
    ("/v1/ratings", {"firms": [{"A": 1, "B": 1, "C": 1, "D": 1, "E": 1}], "model_variant": "tabtext"}, "firms.0.text"),
    ("/v1/sections", {"form": "10-K"}, "document"),
    ("/v1/sections", {"form": "10-K", "document_base64": "***"}, "document_base64"),
    ("/v1/understanding/sentiment", {"inputs": []}, "task"),
])
def test_bad_body_is_422_naming_the_field(client, path, body, field):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["fields"]], r.json()
    no_trace(r)


def test_not_json_is_422(client):
    r = client.post("/v1/scores", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid request"
    no_trace(r)


def test_token_required(server, client):
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        r = anonymous.post("/v1/scores", json={"texts": ["Revenue grew."]})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = anonymous.post("/v1/scores", json={"texts": ["Revenue grew."]}, headers={"Authorization": "Bearer wrong-token-123456789"})
        assert r.status_code == 401
        r = anonymous.get("/v1/models")
        assert r.status_code == 401
        assert anonymous.get("/healthz").status_code == 200  # probes need no token
        assert anonymous.get("/readyz").status_code == 200
    assert client.post("/v1/scores", json={"texts": ["Revenue grew."]}).status_code == 200


def test_unpublished_models_are_503_naming_the_asset_and_slow_requests_504(bare_server):
    with httpx.Client(base_url=bare_server.url, timeout=60) as c:
        ready = c.get("/readyz").json()
        assert ready["models"] == {"pooled_embeddings": "loaded", "finetuned_checkpoint": "not_published",
                                   "rating_models": "not_published"}
        for path, body, asset in [("/v1/generate", {"prompt": "We serve"}, "finetuned_checkpoint"),
                                  ("/v1/ratings", {"firms": [{"A": 1, "B": 1, "C": 1, "D": 1, "E": 1}]}, "rating_models"),
                                  ("/v1/understanding/ner", {"inputs": ["Apple Inc. reported revenue."]}, "ner_model"),
                                  ("/v1/understanding/qa", {"inputs": []}, "qa_model")]:
            r = c.post(path, json=body)
            assert r.status_code == 503, r.text
            assert r.json()["asset"] == asset and f"materialize {asset}" in r.json()["detail"]
            assert r.headers["retry-after"]
            no_trace(r)
        r = c.post("/v1/scores", json={"texts": [texts(1, 80_000)[0] * 10]})
        assert r.status_code == 504 and "FINSEC_SERVE_TIMEOUT_SECONDS" in r.json()["detail"]
        no_trace(r)
        assert c.get("/healthz").json() == {"status": "ok"}  # still alive after the timeout
        models = {m["asset"]: m for m in c.get("/v1/models").json()["models"]}
        assert models["finetuned_checkpoint"]["hint"] == "materialize finetuned_checkpoint"


def test_refuses_to_bind_a_public_address_without_a_token():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "FINSEC_HOME": "/nonexistent-serve-test"}
    r = subprocess.run([sys.executable, "-m", "finsec_assets.serve", "--host", "0.0.0.0", "--port", "1"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "FINSEC_SERVE_TOKEN" in r.stderr
    r = subprocess.run([sys.executable, "-m", "finsec_assets.serve", "--host", "127.0.0.1"], capture_output=True, text=True,
                       env={**env, "FINSEC_SERVE_TOKEN": "short"}, timeout=120)
    assert r.returncode == 2 and "at least 16 characters" in r.stderr


def test_inputs_are_never_written_to_disk(server, client, tmp_path_factory):
    marker = "Zyxquorble" + str(time.time_ns())
    doc = f"{marker} revenue increased due to strong demand. {marker} margins fell."
    assert client.post("/v1/embeddings", json={"texts": [doc]}).status_code == 200
    assert client.post("/v1/scores", json={"texts": [doc]}).status_code == 200
    assert client.post("/v1/generate", json={"prompt": doc}).status_code == 200
    assert client.post("/v1/sections", json={"form": "10-K", "document": f"<p>Item 7. {doc}</p>"}).status_code == 200
    needle = marker.encode()
    for root in (server.home, tmp_path_factory.getbasetemp()):
        for f in root.rglob("*"):
            if f.is_file() and f.stat().st_size < 200_000_000:
                assert needle not in f.read_bytes(), f"request text found in {f}"


# -- reload under load (last: it publishes a new version) ------------------------------------------


def test_new_version_is_served_without_a_failed_request(server, published_home, tmp_path):
    _, first = published_home
    seen, failures, stop = [], [], threading.Event()

    def keep_asking(kind: str):
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
            while not stop.is_set():
                if kind == "generate":
                    r = c.post("/v1/generate", json={"prompt": "We serve consumers through", "max_new_tokens": 8, "seed": 1})
                else:
                    r = c.post("/v1/embeddings", json={"texts": ["Net sales increased 5 percent."]})
                if r.status_code != 200:
                    failures.append((r.status_code, r.text))
                elif kind == "generate":
                    seen.append(r.json()["model"]["version"])

    clients = [threading.Thread(target=keep_asking, args=(k,)) for k in ("generate", "generate", "embeddings")]
    for t in clients:
        t.start()
    try:
        time.sleep(1.0)
        second = publish_causal_lm(str(server.home / "objects"), seed=2, work=tmp_path)
        deadline = time.time() + 120
        while time.time() < deadline and (not seen or seen[-1] != second):
            time.sleep(0.2)
        time.sleep(1.0)  # keep asking after the switch
    finally:
        stop.set()
        for t in clients:
            t.join(60)
    assert not failures, failures[:3]
    assert seen and seen[0] == first and seen[-1] == second
    switch = seen.index(second)
    assert set(seen[:switch]) == {first} and set(seen[switch:]) == {second}  # one switch, never back
    models = {m["asset"]: m for m in httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"}).json()["models"]}
    assert models["finetuned_checkpoint"]["version"] == second and models["finetuned_checkpoint"]["switches"] == 1
