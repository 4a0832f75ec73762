"""Loaded models: each wraps one published version and answers with the library function the graph uses.

Nothing here knows about HTTP. A loaded model is immutable once built; a new version is a new object,
so a request that started on the old one finishes on it while new requests get the new one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..settings import ServeSettings, Settings
from . import registry
from .registry import Published


class ModelInputError(ValueError):
    """A request the model cannot answer; ``field`` names the request field at fault (answered with 422)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# -- embeddings -------------------------------------------------------------------------------------


@dataclass
class Embedder:
    published: Published
    encoder: Any

    @classmethod
    def load(cls, settings: Settings, serve: ServeSettings, published: Published) -> Embedder:
        from ..ml.embeddings import DEFAULT_MODEL_NAME, load_encoder

        model = published.detail["model"]
        encoder = load_encoder(None if model == DEFAULT_MODEL_NAME else model, serve.device)
        encoder.embed_documents(["Warm-up sentence."])  # first call pays the lazy initialisation
        return cls(published, encoder)

    def embed(self, texts: list[str]) -> np.ndarray:
        """What ``pooled_embeddings`` stores for these texts: mean pooling, unit length."""
        return self.encoder.embed_documents(texts, pooling="mean").vectors


# -- generation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int
    num_return_sequences: int
    do_sample: bool
    seed: int | None

    def sampling_key(self) -> tuple:
        return (self.max_new_tokens, self.temperature, self.top_p, self.top_k, self.num_return_sequences, self.do_sample)


@dataclass
class Generator:
    """A causal LM from ``finetuned_checkpoint``, sampling the way ``clm_finetune.generate_texts`` does."""

    published: Published
    model: Any
    tokenizer: Any
    device: str
    positions: int | None

    @classmethod
    def load(cls, settings: Settings, serve: ServeSettings, published: Published) -> Generator:
        import torch
        from transformers import AutoTokenizer

        from ..ml.clm_finetune import load_causal_lm

        path = registry.fetch_checkpoint(settings, published)
        device = serve.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_causal_lm(path, torch.float16 if device.startswith("cuda") else torch.float32)
        model.to(device).eval()
        model.config.use_cache = True
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        positions = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)
        return cls(published, model, tokenizer, device, positions)

    def check(self, request: GenerationRequest) -> int:
        """Prompt tokens; refuses a prompt that leaves no room in the model's position table."""
        n_prompt = len(self.tokenizer(request.prompt)["input_ids"])
        if n_prompt == 0:
            raise ModelInputError("prompt", "prompt has no tokens")
        if self.positions and n_prompt + request.max_new_tokens > self.positions:
            raise ModelInputError(
                "max_new_tokens", f"prompt ({n_prompt} tokens) + max_new_tokens ({request.max_new_tokens}) exceeds the "
                f"model's {self.positions} positions")
        return n_prompt

    def _generate(self, prompts: list[str], r: GenerationRequest) -> list[list[dict]]:
        import torch

        self.tokenizer.padding_side = "left"
        enc = self.tokenizer(prompts, return_tensors="pt", padding=len(prompts) > 1).to(self.device)
        kwargs = dict(do_sample=r.do_sample, max_new_tokens=r.max_new_tokens, num_return_sequences=r.num_return_sequences,
                      pad_token_id=self.tokenizer.pad_token_id)
        if r.do_sample:
            kwargs.update(top_k=r.top_k, top_p=r.top_p, temperature=r.temperature)
        with torch.inference_mode():
            ids = self.model.generate(**enc, **kwargs)
        width = enc["input_ids"].shape[1]
        out = []
        for i, prompt in enumerate(prompts):
            rows = ids[i * r.num_return_sequences:(i + 1) * r.num_return_sequences]
            n_prompt = int(enc["attention_mask"][i].sum())
            texts = []
            for row in rows:
                new = row[width:]
                eos = (new == self.tokenizer.eos_token_id).nonzero()
                new_tokens = int(eos[0][0]) + 1 if len(eos) else len(new)  # padding after the end of text is not output
                new = new[:new_tokens]
                full = torch.cat([row[width - n_prompt:width], new])
                texts.append({"text": self.tokenizer.decode(full, skip_special_tokens=True), "new_tokens": new_tokens})
            out.append(texts)
        return out

    def generate(self, requests: list[GenerationRequest]) -> list[list[dict]]:
        """Answers for concurrent requests. A request with a seed runs alone after ``torch.manual_seed(seed)``
        (reproducible, and equal to ``generate_texts`` with that seed); requests without one that share sampling
        parameters are batched (left-padded) in one ``generate`` call."""
        import torch

        answers: list[list[dict] | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            if r.seed is not None:
                torch.manual_seed(r.seed)
                answers[i] = self._generate([r.prompt], r)[0]
            else:
                groups.setdefault(r.sampling_key(), []).append(i)
        for members in groups.values():
            results = self._generate([requests[i].prompt for i in members], requests[members[0]])
            for i, result in zip(members, results):
                answers[i] = result
        return answers  # type: ignore[return-value]


# -- credit ratings ---------------------------------------------------------------------------------

RATIO_FIELDS = ("A", "B", "C", "D", "E")


@dataclass
class Raters:
    """The ``rating_models`` rows, their bundles loaded: (variant, task) -> (RatingModel, bundle, row)."""

    published: Published
    models: dict

    @classmethod
    def load(cls, settings: Settings, serve: ServeSettings, published: Published) -> Raters:
        from ..ml.rating import RatingModel

        models = {}
        for row in published.detail["rows"]:
            bundle = registry.read_bundle(settings, row["uri"])
            models[(row["model_variant"], row["task"])] = (RatingModel.from_bytes(bundle["rating_model"].encode()), bundle, row)
        return cls(published, models)

    @property
    def variants(self) -> list[str]:
        return sorted({v for v, _ in self.models})

    def features(self, firms: list[dict], variant: str, embed) -> "pd.DataFrame":  # noqa: F821
        """Model inputs for the firms: ratios, industry code, Altman Z (computed when absent) and, for ``tabtext``,
        the 11 scores and the PCA of the pooled embedding of each firm's text, as ``tabtext_dataset`` builds them."""
        import pandas as pd

        from ..ml.altman import NLP_SCORES, altman_z
        from ..ml.rating import apply_embedding_pca
        from ..text.scoring import score_text

        rows = []
        for firm in firms:
            row = {"industry_code": firm.get("industry_code"), **{k: firm[k] for k in RATIO_FIELDS}}
            z = firm.get("altman_z")
            row["altman_z"] = float(altman_z(*(firm[k] for k in RATIO_FIELDS))) if z is None else z
            rows.append(row)
        df = pd.DataFrame(rows)
        if variant == "tabtext":
            texts = [f.get("text") for f in firms]
            missing = [i for i, t in enumerate(texts) if not t or not t.strip()]
            if missing:
                raise ModelInputError(f"firms.{missing[0]}.text", f"model_variant tabtext needs text for every firm; "
                                      f"firm(s) {missing[:10]} have none (or ask for model_variant tabular)")
            scores = pd.DataFrame([score_text(t) for t in texts])
            for name in NLP_SCORES:
                df[name] = scores[name]
            _, bundle, _ = self.models[(variant, "multiclass")]
            pca = bundle.get("embedding_pca")
            if pca is not None:
                vectors = embed(texts, pca["model"])
                reduced = apply_embedding_pca(vectors, pca)
                for i in range(reduced.shape[1]):
                    df[f"emb_{i}"] = reduced[:, i]
        return df

    def rate(self, firms: list[dict], variant: str, embed) -> list[dict]:
        if (variant, "multiclass") not in self.models or (variant, "binary") not in self.models:
            raise ModelInputError("model_variant", f"model_variant {variant!r} is not among the published rating models "
                                  f"({', '.join(self.variants)})")
        df = self.features(firms, variant, embed)
        multi, _, _ = self.models[(variant, "multiclass")]
        binary, _, _ = self.models[(variant, "binary")]
        proba = multi.predict_proba(df)
        grade = binary.predict_proba(df)
        out = []
        for i in range(len(df)):
            p = {c: _finite(proba.iloc[i][c]) for c in proba.columns}
            out.append({"rating": max(p, key=p.get), "probabilities": p,
                        "investment_grade_probability": _finite(grade.iloc[i][grade.columns[1]]),
                        "altman_z": _finite(df["altman_z"].iloc[i])})
        return out

    def versions(self, variant: str) -> dict:
        return {task: self.models[(variant, task)][2]["model_version"] for task in ("multiclass", "binary")
                if (variant, task) in self.models}


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
