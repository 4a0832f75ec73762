"""Serving load test on loopback: latency and throughput of /v1/embeddings, /v1/scores and /v1/generate.

    .venv/bin/python benchmarks/serving.py [--home $FINSEC_HOME] [--chars 4000] [--texts 32]
        [--rounds 2] [--concurrency 1,8,32] [--max-new-tokens 32] [--port 0]

Starts ``python -m finsec_assets.serve`` on 127.0.0.1 over ``--home`` (default: $FINSEC_HOME, else
./.finsec, e.g. after ``make demo``), waits until /readyz, then for each endpoint and each concurrency c
runs c clients that each send one text per request (one prompt for generation) until every text was
sent ``--rounds`` times. Texts: the MD&A and Risk Factors sections of the bundled sample's 10-Ks, cut to
``--chars`` characters each, ``--texts`` of them.

Offline baselines, measured in this process while the server idles, on the same texts:
embeddings = ``embed_documents(texts)`` in one batch (the issue's goal: 32 one-text clients reach
>= 80% of it), scores = ``score_text`` over the texts in one process, generation = ``generate_texts``
one prompt at a time with the checkpoint the server answers with.

Prints p50 / p95 / p99 latency, requests/s, texts/s and the ratio to the offline texts/s. Client and
server share this machine's cores, as they would on one host; nothing here is a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402
import numpy as np  # noqa: E402

SAMPLE = REPO / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
PROMPTS = ("This Form 10-K report shows that", "We serve consumers through", "This year we particularly focus on",
           "Net sales increased", "Our results of operations", "Risks related to our business include")


def sample_texts(n: int, chars: int) -> list[str]:
    import gzip

    from finsec_assets.text.sections import extract_sections

    out = []
    for path in sorted(SAMPLE.rglob("*.htm.gz")):
        for s in extract_sections(gzip.decompress(path.read_bytes()), "10-K"):
            if s.item in ("7", "1A") and len(s.text) > chars // 2:
                for start in range(0, len(s.text) - chars // 2, chars):
                    out.append(s.text[start:start + chars])
                    if len(out) == n:
                        return out
    if not out:
        raise SystemExit("no MD&A / Risk Factors text found in the bundled sample")
    return (out * (n // len(out) + 1))[:n]


def start_server(home: Path, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    if port == 0:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    env = {**os.environ, "FINSEC_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("FINSEC_SERVE_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "finsec_assets.serve", "--host", "127.0.0.1", "--port", str(port),
                             "--no-access-log", "--log-level", "warning"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the server was not ready within 600 s; see {log}")


async def load(url: str, path: str, bodies: list[dict], concurrency: int, texts_per_request: int) -> dict:
    """``concurrency`` clients take bodies from one queue until it is empty; latency per request."""
    queue: asyncio.Queue = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies, errors = [], []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def worker():
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t = time.perf_counter()
                r = await client.post(path, json=body)
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"requests": len(bodies), "errors": len(errors), "first_error": errors[0] if errors else "",
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99)),
            "rps": len(bodies) / seconds, "tps": len(bodies) * texts_per_request / seconds, "seconds": seconds}


def offline_embeddings(texts: list[str]) -> float:
    from finsec_assets.ml.embeddings import embed_documents

    embed_documents(texts[:2])  # warm-up
    best = 0.0
    for _ in range(2):
        t = time.perf_counter()
        embed_documents(texts)
        best = max(best, len(texts) / (time.perf_counter() - t))
    return best


def offline_scores(texts: list[str]) -> float:
    from finsec_assets.text.scoring import score_text

    score_text(texts[0])
    t = time.perf_counter()
    for text in texts:
        score_text(text)
    return len(texts) / (time.perf_counter() - t)


def offline_generation(home: Path, version: str, prompts: list[str], max_new_tokens: int) -> float:
    from transformers import AutoTokenizer

    from finsec_assets.ml.clm_finetune import GenerationSettings, generate_texts, load_causal_lm
    from finsec_assets.serve import registry
    from finsec_assets.settings import Settings

    settings = Settings.from_env(FINSEC_HOME=str(home))
    published = registry.checkpoint_published(settings, "finetuned_checkpoint")
    if published is None or published.version != version:
        return float("nan")
    path = registry.fetch_checkpoint(settings, published)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = load_causal_lm(path, "float32")
    model.config.use_cache = True  # as clm_finetune sets it before its own generations, and as the server does
    t = time.perf_counter()
    for i, prompt in enumerate(prompts):
        n_prompt = len(tokenizer(prompt)["input_ids"])
        generate_texts(model, tokenizer, GenerationSettings(prompts=[prompt], max_length=n_prompt + max_new_tokens, seed=i),
                       device="cpu")
    return len(prompts) / (time.perf_counter() - t)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("FINSEC_HOME", str(REPO / ".finsec")))
    parser.add_argument("--chars", type=int, default=4000)
    parser.add_argument("--texts", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--endpoints", default="embeddings,scores,generate")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    endpoints = args.endpoints.split(",")
    home = Path(args.home).expanduser().resolve()
    texts = sample_texts(args.texts, args.chars)
    log = Path(tempfile.mkdtemp(prefix="finsec-serving-bench-")) / "server.log"
    print(f"FINSEC_HOME={home}; {len(texts)} texts of <= {args.chars} chars (mean {np.mean([len(t) for t in texts]):.0f}); "
          f"{args.rounds} rounds per level; server log {log}", flush=True)
    proc, url = start_server(home, args.port, log)
    try:
        models = {m["asset"]: m for m in httpx.get(f"{url}/v1/models").json()["models"]}
        generator = models.get("finetuned_checkpoint", {})
        print("models: " + "; ".join(f"{a} {models[a].get('version') or models[a]['state']}"
                                      for a in ("pooled_embeddings", "finetuned_checkpoint")), flush=True)
        offline, plans = {}, {}
        if "embeddings" in endpoints:
            offline["embeddings"] = offline_embeddings(texts)
            plans["embeddings"] = ("/v1/embeddings", [{"texts": [t]} for t in texts])
        if "scores" in endpoints:
            offline["scores"] = offline_scores(texts)
            plans["scores"] = ("/v1/scores", [{"texts": [t]} for t in texts])
        if "generate" in endpoints and generator.get("state") == "loaded":
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(max(levels))]
            offline["generate"] = offline_generation(home, generator["version"], prompts, args.max_new_tokens)
            plans["generate"] = ("/v1/generate", [{"prompt": p, "max_new_tokens": args.max_new_tokens} for p in prompts])
        elif "generate" in endpoints:
            print(f"generate: skipped, finetuned_checkpoint is {generator.get('state')} in {home}", flush=True)
        rows = []
        for name, (path, bodies) in plans.items():
            asyncio.run(load(url, path, bodies[:2], 1, 1))  # warm-up
            for c in levels:
                result = asyncio.run(load(url, path, bodies * args.rounds, c, 1))
                result.update(endpoint=name, concurrency=c, ratio=result["tps"] / offline[name])
                rows.append(result)
                print(f"  {name} c={c}: {result['tps']:.2f} texts/s, p50 {result['p50']:.0f} ms"
                      + (f", {result['errors']} errors ({result['first_error']})" if result["errors"] else ""), flush=True)
        batching = httpx.get(f"{url}/v1/models").json()["batching"]
    finally:
        proc.terminate()
        proc.wait(30)
    print()
    print("| endpoint | concurrency | requests | p50 ms | p95 ms | p99 ms | requests/s | texts/s | offline texts/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['endpoint']} | {r['concurrency']} | {r['requests']} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | "
              f"{r['rps']:.2f} | {r['tps']:.2f} | {offline[r['endpoint']]:.2f} | {r['ratio']:.2f} |")
    print(f"\nbatches: {batching}")
    goal = [r for r in rows if r["endpoint"] == "embeddings" and r["concurrency"] == 32]
    if goal:
        print(f"goal (32 one-text clients >= 80% of embed_documents on the same texts in one batch): "
              f"{goal[0]['ratio']:.0%} -> {'met' if goal[0]['ratio'] >= 0.8 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
