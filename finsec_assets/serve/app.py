"""The FastAPI application: endpoints, limits, errors and auth over the loaded models.

``create_app()`` builds it from the environment (``Settings`` and ``ServeSettings``); ``python -m
finsec_assets.serve`` runs it under uvicorn. Every answer names the model version that produced it.
Errors are JSON ``{"error", "detail", ...}``: 401 (token), 413 (too large), 422 (bad body, the field
named), 503 (model not published or still loading, the asset named), 504 (timeout), 500 (never with a
stack trace; the log has it, keyed by the request id). Request bodies live in memory only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import importlib
import importlib.util
import inspect
import logging
import math
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..settings import ServeSettings, Settings
from . import registry
from .batching import MicroBatcher
from .manager import ModelManager, ModelSlot, ModelUnavailable
from .models import Embedder, GenerationRequest, Generator, ModelInputError, Raters

log = logging.getLogger("finsec_assets.serve")

UNDERSTANDING_TASKS = ("ner", "qa", "relation", "classification", "summarization")
UNDERSTANDING_MODULE = "finsec_assets.ml.understanding"


class TooLarge(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class RequestTimeout(Exception):
    pass


def code_version(*modules) -> str:
    """The asset's code version for code-only endpoints (the same hash ``defs.common.source_version`` makes)."""
    h = hashlib.sha256()
    for module in modules:
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:12]


def clean(value):
    """JSON-safe: NaN and infinities become null, numpy scalars and arrays become Python values."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# -- request bodies --------------------------------------------------------------------------------


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextsRequest(Body):
    texts: list[str] = Field(..., min_length=1, description="Documents (e.g. MD&A sections), one string each.")


class ScoresRequest(TextsRequest):
    with_counts: bool = Field(False, description="Add n_words, n_sentences and flags (as nlp_scores stores them).")


class SummariesRequest(TextsRequest):
    method: Literal["jaccard", "kmedoids"] = "jaccard"
    sentences: int = Field(5, ge=1, le=100, description="Sentences per summary.")


class GenerateRequest(Body):
    """JumpStart's text-generation parameters; defaults are the ones finetuned_checkpoint validates with."""

    prompt: str = Field(..., min_length=1)
    max_new_tokens: int = Field(50, ge=1)
    temperature: float = Field(1.0, gt=0, le=100)
    top_p: float = Field(0.8, gt=0, le=1)
    top_k: int = Field(250, ge=0)
    num_return_sequences: int = Field(1, ge=1, le=16)
    do_sample: bool = True
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Reproducible sampling: same seed, same text.")


class FirmRow(Body):
    industry_code: str | None = Field(None, max_length=8, description="SIC division letter (A-J) as in company_universe.")
    A: float = Field(..., description="EBIT / total assets")
    B: float = Field(..., description="sales / total assets")
    C: float = Field(..., description="market value of equity / total liabilities")
    D: float = Field(..., description="working capital / total assets")
    E: float = Field(..., description="retained earnings / total assets")
    altman_z: float | None = Field(None, description="computed from A-E when absent")
    text: str | None = Field(None, description="MD&A text (needed by the tabtext models)")


class RatingsRequest(Body):
    firms: list[FirmRow] = Field(..., min_length=1)
    model_variant: Literal["tabular", "tabtext"] | None = Field(
        None, description="default: tabtext when every firm has text, else tabular")


class UnderstandingRequest(Body):
    inputs: Any = Field(..., description="what load_predictor(task).predict takes")


class SectionsRequest(Body):
    form: str = Field(..., min_length=2, max_length=16, pattern=r"^[0-9A-Za-z][0-9A-Za-z/\- ]*$",
                      description="10-K, 10-Q (amendments and old variants accepted)")
    document: str | None = Field(None, description="the filing document as text (HTML, inline XBRL, SGML, plain)")
    document_base64: str | None = Field(None, description="or its bytes, base64 (gzip accepted)")


# -- the application -------------------------------------------------------------------------------


class Service:
    """What the endpoints share: settings, model slots, batchers and the thread pool for CPU work."""

    def __init__(self, settings: Settings, serve: ServeSettings):
        self.settings, self.serve = settings, serve
        self.embeddings = ModelSlot(
            "pooled_embeddings", "/v1/embeddings",
            probe=lambda: registry.embedding_model_published(settings, serve.embedding_model),
            load=lambda p: Embedder.load(settings, serve, p))
        self.generator = ModelSlot(
            "finetuned_checkpoint", "/v1/generate",
            probe=lambda: registry.checkpoint_published(settings, "finetuned_checkpoint"),
            load=lambda p: Generator.load(settings, serve, p))
        self.raters = ModelSlot(
            "rating_models", "/v1/ratings",
            probe=lambda: registry.rating_models_published(settings),
            load=lambda p: Raters.load(settings, serve, p))
        self.manager = ModelManager([self.embeddings, self.generator, self.raters], serve.poll_seconds)
        wait = serve.batch_wait_ms / 1000
        self.embed_batcher = MicroBatcher("embeddings", self._embed_batch, serve.batch_max_texts, wait)
        self.generate_batcher = MicroBatcher("generate", self._generate_batch, serve.batch_max_texts, wait)
        # Text work (scores, summaries, sections, ratings) is pure Python: one thread runs it in arrival order, since
        # more threads only fight over the GIL with the event loop (measured: 8 threads gave a third of the texts/s).
        self.cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serve-text")
        self.understanding_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="serve-understanding")
        self.predictors: dict[str, Any] = {}
        self._publications: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._predictor_lock = threading.Lock()
        from ..text import html, scoring, sections, sentences, summarize

        self.versions = {"nlp_scores": code_version(scoring, sentences), "filing_summaries": code_version(summarize, sentences),
                         "filing_sections": code_version(html, sections)}

    # batches (run on the batcher's thread)
    def _embed_batch(self, texts: list[str]):
        embedder: Embedder = self.embeddings.get()
        try:
            return list(embedder.embed(texts)), embedder.published
        except ValueError:  # one text without sentences: answer the others, fail only its request
            out = []
            for text in texts:
                try:
                    out.append(embedder.embed([text])[0])
                except ValueError as exc:
                    out.append(exc)
            return out, embedder.published

    def _generate_batch(self, requests: list[GenerationRequest]):
        generator: Generator = self.generator.get()
        return generator.generate(requests), generator.published

    async def within_timeout(self, awaitable):
        try:
            return await asyncio.wait_for(awaitable, self.serve.timeout_seconds)
        except TimeoutError as exc:
            raise RequestTimeout(f"the request took longer than {self.serve.timeout_seconds:g} s "
                                 "(FINSEC_SERVE_TIMEOUT_SECONDS)") from exc

    async def on_cpu(self, fn, *args, pool: ThreadPoolExecutor | None = None):
        return await self.within_timeout(asyncio.get_running_loop().run_in_executor(pool or self.cpu, fn, *args))

    def check_texts(self, texts: list[str], field: str = "texts") -> None:
        if len(texts) > self.serve.max_texts:
            raise TooLarge(field, f"{len(texts)} texts in one request; at most {self.serve.max_texts} "
                                  "(FINSEC_SERVE_MAX_TEXTS): split the request")
        for i, text in enumerate(texts):
            if len(text) > self.serve.max_chars:
                raise TooLarge(f"{field}.{i}", f"{field}[{i}] has {len(text):,} characters; at most "
                                               f"{self.serve.max_chars:,} (FINSEC_SERVE_MAX_CHARS)")

    def embed_with(self, texts: list[str], model_name: str) -> np.ndarray:
        """Pooled vectors from the named encoder (the served one when it is that model)."""
        current = self.embeddings.current
        if current is not None and current.published.detail.get("model") == model_name:
            return current.embed(texts)
        from ..ml.embeddings import DEFAULT_MODEL_NAME, embed_documents

        return embed_documents(texts, model=None if model_name == DEFAULT_MODEL_NAME else model_name, device=self.serve.device)

    def understanding_publication(self, task: str) -> tuple[str, str] | None:
        """(version, directory URI) that the ``<task>_model`` root's LATEST names now, read at most once per
        FINSEC_SERVE_POLL_SECONDS per task; None before the first publication."""
        import time

        now = time.monotonic()
        seen = self._publications.get(task)
        if seen is not None and now - seen[0] < self.serve.poll_seconds:
            return seen[1]
        from ..ml.training import CheckpointStore

        checkpoints = CheckpointStore(registry.object_store(self.settings).uri(f"checkpoints/{task}_model"))
        try:
            pointer = checkpoints.pointer()
        except Exception:  # noqa: BLE001 - an unreadable pointer: keep what is loaded, try again next poll
            pointer = None
        current = None if not pointer else (pointer["version"], f"{checkpoints.root_uri}/{pointer['directory']}")
        self._publications[task] = (now, current)
        return current

    def predictor(self, task: str):
        """The task's predictor, reloaded when its checkpoint root's LATEST names a new publication (a new
        version, or a republished older one); while the new one loads, requests queue on the lock, and a
        publication that fails to load leaves the loaded predictor serving."""
        asset = f"{task}_model"
        publication = self.understanding_publication(task)
        with self._predictor_lock:
            cached = self.predictors.get(task)
            if cached is not None and (publication is None or getattr(cached, "publication", None) == publication[1]):
                return cached
            try:
                module = importlib.import_module(UNDERSTANDING_MODULE)
            except ModuleNotFoundError as exc:
                if exc.name and UNDERSTANDING_MODULE.startswith(exc.name):
                    raise ModelUnavailable(asset, f"document understanding is not installed in this build "
                                                  f"({UNDERSTANDING_MODULE} is missing): materialize {asset} with a "
                                                  "version that has it") from exc
                raise
            try:
                predictor = module.load_predictor(task, publication[1] if publication else None)
            except Exception as exc:  # noqa: BLE001 - not published or unreadable: the client is told which asset
                if cached is not None:
                    log.warning("serve: %s publication %s does not load (%s); still serving %s", asset,
                                   publication, exc, getattr(cached, "version", None))
                    return cached
                raise ModelUnavailable(asset, f"no usable {asset}: {exc}; materialize {asset}") from exc
            predictor.version, predictor.publication = (publication or (None, None))
            if cached is not None:
                log.info("serve: %s reloaded: %s -> %s", asset, getattr(cached, "version", None), predictor.version)
            self.predictors[task] = predictor
            return predictor


def _model(published) -> dict:
    return {"asset": published.asset, "version": published.version}


def _error(status: int, error: str, detail: str, **extra) -> JSONResponse:
    headers = extra.pop("headers", None)
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: a body over the limit gets 413 before anything parses it (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = _error(413, "request too large", f"the body is larger than {self.max_bytes:,} bytes "
                                                     "(FINSEC_SERVE_MAX_CHARS / FINSEC_SERVE_MAX_DOCUMENT_BYTES)")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await too_large(scope, receive, send)
        seen, exceeded, replaced = 0, False, False

        async def counting_receive():
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message):
            # FastAPI turns an error while reading the body into its own 400: answer 413 instead
            nonlocal replaced
            if not exceeded:
                return await send(message)
            if message["type"] == "http.response.start" and not replaced:
                replaced = True
                await too_large(scope, receive, send)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not replaced:
                await too_large(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def create_app(settings: Settings | None = None, serve: ServeSettings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    serve = serve or ServeSettings.from_env()
    service = Service(settings, serve)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        service.embed_batcher.start()
        service.generate_batcher.start()
        service.manager.start()
        yield
        service.manager.stop()
        await service.embed_batcher.stop()
        await service.generate_batcher.stop()
        service.cpu.shutdown(wait=False, cancel_futures=True)
        service.understanding_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="finsec-assets serving", version="1", lifespan=lifespan,
                  description="HTTP endpoints over the models the finsec-assets graph publishes. "
                              "Every answer names the model version that produced it.")
    app.state.service = service

    # -- errors ---------------------------------------------------------------------------------
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        fields = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ())]
            if loc and loc[0] in ("body", "path", "query", "header"):
                loc = loc[1:]
            fields.append({"field": ".".join(loc) or "body", "message": e.get("msg", "invalid")})
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return _error(422, "invalid request", detail, fields=fields)

    @app.exception_handler(ModelInputError)
    async def bad_input(request: Request, exc: ModelInputError):
        return _error(422, "invalid request", f"{exc.field}: {exc}", fields=[{"field": exc.field, "message": str(exc)}])

    @app.exception_handler(TooLarge)
    async def too_large(request: Request, exc: TooLarge):
        return _error(413, "request too large", str(exc), field=exc.field)

    @app.exception_handler(ModelUnavailable)
    async def unavailable(request: Request, exc: ModelUnavailable):
        return _error(503, "model not available", str(exc), asset=exc.asset, headers={"Retry-After": "10"})

    @app.exception_handler(RequestTimeout)
    async def timed_out(request: Request, exc: RequestTimeout):
        return _error(504, "timeout", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, "http error", str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        request_id = uuid.uuid4().hex[:12]
        log.error("request %s %s failed (id %s)", request.method, request.url.path, request_id, exc_info=exc)
        return _error(500, "internal error", f"the server could not answer; its log has the reason under request id "
                                             f"{request_id}", request_id=request_id)

    app.add_middleware(BodyLimit, max_bytes=serve.max_body_bytes)

    # -- auth -----------------------------------------------------------------------------------
    def require_token(request: Request) -> None:
        if serve.token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), serve.token.encode()):
            raise StarletteHTTPException(401, "missing or wrong bearer token: send 'Authorization: Bearer <FINSEC_SERVE_TOKEN>'",
                                         headers={"WWW-Authenticate": "Bearer"})

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])

    # -- endpoints ------------------------------------------------------------------------------
    @v1.post("/embeddings", summary="Pooled document embeddings, as pooled_embeddings computes them")
    async def embeddings(body: TextsRequest):
        service.check_texts(body.texts)
        service.embeddings.get()  # 503 before queueing when there is no model
        vectors, published = await service.within_timeout(service.embed_batcher.submit(body.texts))
        for i, v in enumerate(vectors):
            if isinstance(v, Exception):
                raise ModelInputError(f"texts.{i}", f"texts[{i}]: {v}")
        return {"embeddings": [v.tolist() for v in vectors], "dim": int(len(vectors[0])),
                "model": {**_model(published), "name": published.detail["model"]}}

    @v1.post("/scores", summary="The 11 JumpStart scores, equal to text.scoring.score_text")
    async def scores(body: ScoresRequest):
        service.check_texts(body.texts)
        from ..text.scoring import score_text

        result = await service.on_cpu(lambda: [score_text(t, with_counts=body.with_counts) for t in body.texts])
        return {"scores": clean(result), "model": {"asset": "nlp_scores", "version": service.versions["nlp_scores"]}}

    @v1.post("/summaries", summary="Extractive summaries, as filing_summaries makes them")
    async def summaries(body: SummariesRequest):
        service.check_texts(body.texts)
        from ..text.summarize import jaccard_summary, kmedoids_summary

        def run():
            if body.method == "jaccard":
                return [jaccard_summary(t, size=body.sentences) for t in body.texts], "jaccard"
            from ..ml.embeddings import load_encoder

            encoder = load_encoder(None, serve.device)  # filing_summaries' default k-medoids encoder
            embed = lambda sentences: encoder.embed_documents([[s] for s in sentences]).vectors  # noqa: E731
            return [kmedoids_summary(t, size=body.sentences, embed=embed, metric="cosine") for t in body.texts], "kmedoids"

        texts, method = await service.on_cpu(run)
        return {"summaries": texts, "method": method,
                "model": {"asset": "filing_summaries", "version": service.versions["filing_summaries"]}}

    @v1.post("/generate", summary="Text from the latest finetuned_checkpoint")
    async def generate(body: GenerateRequest):
        if len(body.prompt) > serve.max_chars:
            raise TooLarge("prompt", f"the prompt has {len(body.prompt):,} characters; at most {serve.max_chars:,} "
                                     "(FINSEC_SERVE_MAX_CHARS)")
        if body.max_new_tokens > serve.max_new_tokens:
            raise TooLarge("max_new_tokens", f"max_new_tokens={body.max_new_tokens}; at most {serve.max_new_tokens} "
                                             "(FINSEC_SERVE_MAX_NEW_TOKENS)")
        request = GenerationRequest(body.prompt, body.max_new_tokens, body.temperature, body.top_p, body.top_k,
                                    body.num_return_sequences, body.do_sample, body.seed)
        service.generator.get().check(request)
        (answer,), published = await service.within_timeout(service.generate_batcher.submit([request]))
        return {"generations": answer, "model": _model(published),
                "parameters": body.model_dump()}

    @v1.post("/ratings", summary="Credit rating class and probabilities from rating_models")
    async def ratings(body: RatingsRequest):
        texts = [f.text or "" for f in body.firms]
        service.check_texts(texts, "firms")
        raters: Raters = service.raters.get()
        variant = body.model_variant or ("tabtext" if all(t.strip() for t in texts) else "tabular")
        firms = [f.model_dump() for f in body.firms]
        result = await service.on_cpu(raters.rate, firms, variant, service.embed_with)
        return {"ratings": clean(result), "model_variant": variant,
                "model": {**_model(raters.published), "models": raters.versions(variant)}}

    @v1.post("/understanding/{task}", summary="Document understanding: ner, qa, relation, classification, summarization")
    async def understanding(task: Literal["ner", "qa", "relation", "classification", "summarization"],
                            body: UnderstandingRequest):
        predictor = await service.on_cpu(service.predictor, task, pool=service.understanding_pool)
        outputs = await service.on_cpu(predictor.predict, body.inputs, pool=service.understanding_pool)
        version = getattr(predictor, "version", None)
        return {"outputs": clean(outputs), "model": {"asset": f"{task}_model", "version": version}}

    @v1.post("/sections", summary="Items of a 10-K / 10-Q document, as filing_sections extracts them")
    async def sections(body: SectionsRequest):
        if (body.document is None) == (body.document_base64 is None):
            raise ModelInputError("document", "give exactly one of document (text) or document_base64 (bytes)")
        if body.document is not None:
            size = len(body.document.encode())
            document: bytes | str = body.document
        else:
            try:
                document = base64.b64decode(body.document_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ModelInputError("document_base64", f"document_base64 is not valid base64: {exc}") from exc
            size = len(document)
        if size > serve.max_document_bytes:
            raise TooLarge("document", f"the document has {size:,} bytes; at most {serve.max_document_bytes:,} "
                                       "(FINSEC_SERVE_MAX_DOCUMENT_BYTES)")
        from ..text.sections import extract_sections_with_report

        report = await service.on_cpu(extract_sections_with_report, document, body.form)
        return {"sections": [{"item": s.item, "title": s.title, "text": s.text, "start": s.start, "end": s.end,
                              "flags": list(s.flags)} for s in report.sections],
                "form": report.form, "detected_form": report.detected_form, "format": report.format,
                "flags": list(report.flags), "warnings": list(report.warnings),
                "model": {"asset": "filing_sections", "version": service.versions["filing_sections"]}}

    @v1.get("/models", summary="Every model: asset, version, when published, which materialization made it")
    async def models():
        out = [slot.describe() for slot in service.manager.slots.values()]
        for asset, version in service.versions.items():
            out.append({"asset": asset, "endpoint": {"nlp_scores": "/v1/scores", "filing_summaries": "/v1/summaries",
                                                     "filing_sections": "/v1/sections"}[asset],
                        "state": "loaded", "version": version, "kind": "code (no trained weights)"})
        installed = importlib.util.find_spec(UNDERSTANDING_MODULE) is not None
        for task in UNDERSTANDING_TASKS:
            predictor = service.predictors.get(task)
            state = "loaded" if predictor is not None else "loaded on first request" if installed else "not_published"
            entry = {"asset": f"{task}_model", "endpoint": f"/v1/understanding/{task}", "state": state,
                     "version": getattr(predictor, "version", None)}
            if not installed:
                entry["hint"] = f"materialize {task}_model ({UNDERSTANDING_MODULE} is not in this build)"
            out.append(entry)
        return {"models": out, "batching": {"embeddings": service.embed_batcher.stats.as_dict(),
                                            "generate": service.generate_batcher.stats.as_dict()}}

    app.include_router(v1)

    @app.get("/healthz", summary="Liveness")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Ready once the first load of every published model finished")
    async def readyz():
        states = {a: s.state for a, s in service.manager.slots.items()}
        body = {"ready": service.manager.ready, "models": states}
        return JSONResponse(body, status_code=200 if service.manager.ready else 503)

    return app
