"""``load_predictor(task, uri=None)``: the latest published model of a task (or the one at ``uri``) behind
``predict(inputs)``. Pure Python objects in and out; long inputs windowed; bad input a ValueError naming it.

- ``ner``: ``list[str]`` -> per text a list of ``{start, end, label, text, score}`` (character offsets).
- ``qa``: ``list[{question, context}]`` -> ``{answer, start, end, score}`` each (``answer == ''``: no answer).
- ``relation``: ``list[{text, head_start, head_end, tail_start, tail_end}]`` -> ``{label, probabilities}`` each.
- ``classification``: ``list[str]`` (paragraphs) -> ``{label, probabilities}`` each (the section item).
- ``filing_industry``: ``list[vector]`` (pooled filing embeddings) -> ``{label, probabilities}`` each.
- ``summarization``: ``list[str]`` -> ``list[str]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from . import tasks
from .words import split_words

PREDICTOR_TASKS = ("ner", "qa", "relation", "classification", "filing_industry", "summarization")


def _check_list(inputs, what: str) -> list:
    if isinstance(inputs, (str, bytes, Mapping)) or not isinstance(inputs, Sequence):
        raise ValueError(f"inputs must be a list of {what}, got {type(inputs).__name__}")
    return list(inputs)


def _check_texts(inputs, what: str = "texts") -> list[str]:
    items = _check_list(inputs, what)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise ValueError(f"inputs[{i}] must be a string, got {type(t).__name__}")
    return items


class _Predictor:
    def __init__(self, model_dir: Path, device: str | None = None):
        import torch
        import transformers

        self.model_dir = Path(model_dir)
        self.options = tasks.TaskOptions.load(self.model_dir)
        auto = getattr(transformers, tasks.AUTO_CLASSES[self.options.task])
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.model_dir))
        self.model = auto.from_pretrained(str(self.model_dir))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()

    @property
    def labels(self) -> list[str]:
        return list(self.options.labels)


class NerPredictor(_Predictor):
    def predict(self, inputs: Sequence[str]) -> list[list[dict]]:
        texts = _check_texts(inputs)
        split = [split_words(t) for t in texts]
        tagged = tasks.ner_predict_words(self.model, self.tokenizer, [w for w, _ in split], self.options)
        return [tasks.entity_spans(w, s, tg, t) for (w, s), tg, t in zip(split, tagged, texts)]


class QaPredictor(_Predictor):
    def predict(self, inputs: Sequence[Mapping]) -> list[dict]:
        items = _check_list(inputs, "{question, context} mappings")
        for i, it in enumerate(items):
            if not isinstance(it, Mapping) or not isinstance(it.get("question"), str) or not isinstance(it.get("context"), str):
                raise ValueError(f"inputs[{i}] must be a mapping with string 'question' and 'context'")
            if not it["question"].strip():
                raise ValueError(f"inputs[{i}].question is empty")
            n = len(self.tokenizer(it["question"], add_special_tokens=False)["input_ids"])
            if n > self.options.max_length // 2:
                raise ValueError(f"inputs[{i}].question has {n} tokens; at most {self.options.max_length // 2} "
                                 "leave room for the context window")
        return tasks.qa_predict(self.model, self.tokenizer, [it["question"] for it in items],
                                [it["context"] for it in items], self.options)


def _probabilities(labels: Sequence[str], probs: np.ndarray) -> list[dict]:
    return [{"label": labels[int(p.argmax())], "probabilities": {label: round(float(x), 4) for label, x in zip(labels, p)}}
            for p in probs]


class RelationPredictor(_Predictor):
    FIELDS = ("head_start", "head_end", "tail_start", "tail_end")

    def predict(self, inputs: Sequence[Mapping]) -> list[dict]:
        items = _check_list(inputs, "{text, head_start, head_end, tail_start, tail_end} mappings")
        for i, it in enumerate(items):
            if not isinstance(it, Mapping) or not isinstance(it.get("text"), str):
                raise ValueError(f"inputs[{i}] must be a mapping with a string 'text'")
            for f in self.FIELDS:
                if not isinstance(it.get(f), (int, np.integer)) or isinstance(it.get(f), bool):
                    raise ValueError(f"inputs[{i}].{f} must be an integer character offset, got {it.get(f)!r}")
            n = len(it["text"])
            for a, b in (("head_start", "head_end"), ("tail_start", "tail_end")):
                if not 0 <= it[a] < it[b] <= n:
                    raise ValueError(f"inputs[{i}]: {a}={it[a]}, {b}={it[b]} is not a span inside the {n}-character text")
        feats = tasks.relation_features(self.tokenizer, items, self.options)
        return _probabilities(self.labels, tasks.sequence_probabilities(self.model, self.tokenizer, feats, len(items)))


class ClassificationPredictor(_Predictor):
    def predict(self, inputs: Sequence[str]) -> list[dict]:
        texts = _check_texts(inputs, "paragraph texts")
        feats = tasks.classification_features(self.tokenizer, texts, self.options)
        return _probabilities(self.labels, tasks.sequence_probabilities(self.model, self.tokenizer, feats, len(texts)))


class SummarizationPredictor(_Predictor):
    def predict(self, inputs: Sequence[str]) -> list[str]:
        texts = _check_texts(inputs, "documents")
        out = [""] * len(texts)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        if todo:
            for i, s in zip(todo, tasks.summarize(self.model, self.tokenizer, [texts[i] for i in todo], self.options)):
                out[i] = s
        return out


class IndustryPredictor:
    """The MLP on pooled filing embeddings stored with the classification checkpoint."""

    def __init__(self, model_dir: Path):
        import json

        meta_path = Path(model_dir) / "industry.json"
        if not meta_path.is_file():
            raise ValueError(f"{str(model_dir)!r} has no filing-industry classifier (the dataset had too few industries)")
        meta = json.loads(meta_path.read_text())
        self.labels, self.dim = meta["labels"], int(meta["dim"])
        with np.load(Path(model_dir) / meta["weights"]) as z:
            self.arrays = {k: z[k] for k in z.files}

    def predict(self, inputs) -> list[dict]:
        from .baselines import mlp_probabilities

        items = _check_list(inputs, "embedding vectors") if not isinstance(inputs, np.ndarray) else list(inputs)
        rows = []
        for i, v in enumerate(items):
            try:
                a = np.asarray(v, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"inputs[{i}] is not a numeric vector: {exc}") from exc
            if a.shape != (self.dim,) or not np.isfinite(a).all():
                raise ValueError(f"inputs[{i}] must be a finite vector of length {self.dim}, got shape {a.shape}")
            rows.append(a)
        if not rows:
            return []
        return _probabilities(self.labels, mlp_probabilities(self.arrays, np.stack(rows)))


PREDICTORS = {"ner": NerPredictor, "qa": QaPredictor, "relation": RelationPredictor,
              "classification": ClassificationPredictor, "summarization": SummarizationPredictor}


def load_predictor(task: str, uri: str | None = None, device: str | None = None):
    """The predictor of ``task`` from ``uri`` (a checkpoint directory, a version URI, or a checkpoint root whose
    ``LATEST`` is used), by default the task's latest published checkpoint in the project's object store."""
    from ..training import TrainingInputError, default_checkpoint_root, resolve_model_source
    from .train import MODEL_ASSETS

    if task not in PREDICTOR_TASKS:
        raise ValueError(f"task {task!r}: use one of {list(PREDICTOR_TASKS)}")
    asset = MODEL_ASSETS["classification" if task == "filing_industry" else task]
    source = uri or default_checkpoint_root(asset)
    try:
        model_dir = resolve_model_source(str(source))
    except TrainingInputError as exc:
        raise ValueError(f"no {task} model at {source!r} ({exc}); materialize {asset} first") from exc
    if task == "filing_industry":
        return IndustryPredictor(model_dir)
    options = tasks.TaskOptions.load(model_dir)
    if options.task != task:
        raise ValueError(f"{str(source)!r} holds a {options.task} model, not a {task} model")
    return PREDICTORS[task](model_dir, device)
