"""The transformer side of each task: building the model, turning rows into windowed features, and inference.

Inference here is the predictor's own code, so a test-split figure measures exactly what
``load_predictor`` serves. Every task windows long inputs with overlap:

- NER: words split into windows of ``max_length`` tokens with ``stride`` tokens of overlap; each word takes the
  prediction of the window where it has the most context on both sides.
- QA: the context is windowed (question repeated); the best span over all windows wins, and the question is
  unanswerable when the no-answer score of the windows beats it.
- Relations: a window of ``max_length`` tokens around the two marked entities.
- Classification: windows of the paragraph, probabilities averaged.
- Summarization: the document's windows are summarized and the most confident summary (mean token
  log-probability) is kept.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .words import FALLBACK_SHAPE, number_shape, shaped_words

TASK_FILE = "finsec_task.json"
RELATION_MARKERS = ("[e1]", "[/e1]", "[e2]", "[/e2]")
AUTO_CLASSES = {"ner": "AutoModelForTokenClassification", "qa": "AutoModelForQuestionAnswering",
                "relation": "AutoModelForSequenceClassification", "classification": "AutoModelForSequenceClassification",
                "summarization": "AutoModelForSeq2SeqLM"}


@dataclasses.dataclass
class TaskOptions:
    """What inference needs besides the weights; stored next to them as finsec_task.json."""

    task: str
    labels: list = dataclasses.field(default_factory=list)
    max_length: int = 128
    stride: int = 32
    number_shapes: bool = False
    shape_tokens: list = dataclasses.field(default_factory=list)
    max_answer_tokens: int = 30
    max_target_length: int = 32
    num_beams: int = 1
    max_windows: int = 4

    def save(self, directory: Path) -> None:
        (Path(directory) / TASK_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> "TaskOptions":
        path = Path(directory) / TASK_FILE
        if not path.is_file():
            raise ValueError(f"{str(directory)!r} holds no {TASK_FILE}: not a document-understanding checkpoint")
        raw = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


# ------------------------------------------------------------------------------------------ models


def build_model(task: str, base_dir: Path, options: TaskOptions, seq2seq: bool = False):
    """A fresh task model (head initialised) and its tokenizer from an encoder checkpoint."""
    import transformers
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if task == "summarization":
        if seq2seq:
            model = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(base_dir))
        else:
            model = transformers.EncoderDecoderModel.from_encoder_decoder_pretrained(str(base_dir), str(base_dir))
            cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
            sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
            for cfg in (model.config, model.generation_config):
                cfg.decoder_start_token_id, cfg.eos_token_id, cfg.pad_token_id = cls_id, sep_id, tokenizer.pad_token_id
            model.config.vocab_size = model.config.decoder.vocab_size
        model.generation_config.max_length = options.max_target_length
        model.generation_config.num_beams = options.num_beams
        return model, tokenizer
    auto = getattr(transformers, AUTO_CLASSES[task])
    kwargs = {}
    if options.labels:
        kwargs = {"num_labels": len(options.labels), "id2label": dict(enumerate(options.labels)),
                  "label2id": {label: i for i, label in enumerate(options.labels)}}
    model = auto.from_pretrained(str(base_dir), **kwargs)
    added = []
    if task == "ner" and options.number_shapes:
        added = tokenizer.add_tokens([FALLBACK_SHAPE, *options.shape_tokens])
    if task == "relation":
        added = tokenizer.add_tokens(list(RELATION_MARKERS), special_tokens=True)
    if added:
        model.resize_token_embeddings(len(tokenizer))
    return model, tokenizer


def collate(features: Sequence[dict], pad_id: int = 0) -> dict:
    """Pad a batch: ids with the pad token, masks with 0, label sequences with -100; scalars stacked."""
    import torch

    out = {}
    for key in features[0]:
        if key.startswith("_"):
            continue
        values = [f[key] for f in features]
        if isinstance(values[0], (list, tuple, np.ndarray)):
            width = max(len(v) for v in values)
            fill = pad_id if key == "input_ids" else (-100 if key == "labels" else 0)
            out[key] = torch.tensor([list(v) + [fill] * (width - len(v)) for v in values], dtype=torch.long)
        else:
            out[key] = torch.tensor(values)
    return out


def _forward_batches(model, features: Sequence[dict], pad_id: int, batch_size: int = 32):
    """Model outputs for features, batch by batch, on the model's device, without gradients."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(features), batch_size):
                batch = collate([{k: v for k, v in f.items() if k not in ("labels", "start_positions", "end_positions")}
                                 for f in features[i:i + batch_size]], pad_id)
                yield i, model(**{k: v.to(device) for k, v in batch.items()})
    finally:
        model.train(was_training)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _model_inputs(enc, i: int) -> dict:
    return {k: enc[k][i] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}


# ------------------------------------------------------------------------------------------ NER


def ner_features(tokenizer, word_lists: Sequence[Sequence[str]], options: TaskOptions,
                 tag_lists: Sequence[Sequence[str]] | None = None) -> list[dict]:
    """Windows of words; with tags, the first sub-token of each word carries its label (others -100)."""
    label_ids = {label: i for i, label in enumerate(options.labels)}
    shapes = frozenset(options.shape_tokens)
    words = [shaped_words(list(w), shapes) if options.number_shapes else list(w) for w in word_lists]
    keep = [i for i, w in enumerate(words) if w]
    if not keep:
        return []
    enc = tokenizer([words[i] for i in keep], is_split_into_words=True, truncation=True, max_length=options.max_length,
                    stride=options.stride, return_overflowing_tokens=True)
    features = []
    for j in range(len(enc["input_ids"])):
        sample = keep[enc["overflow_to_sample_mapping"][j]]
        word_ids = enc.word_ids(j)
        feature = {**_model_inputs(enc, j), "_sample": sample, "_word_ids": word_ids}
        if tag_lists is not None:
            tags, labels, previous = tag_lists[sample], [], None
            for w in word_ids:
                labels.append(-100 if w is None or w == previous else label_ids.get(tags[w], label_ids.get("O", 0)))
                previous = w
            feature["labels"] = labels
        features.append(feature)
    return features


def ner_predict_words(model, tokenizer, word_lists: Sequence[Sequence[str]], options: TaskOptions,
                      batch_size: int = 32) -> list[list[tuple[str, float]]]:
    """(tag, probability) for every word of every sentence; a word takes the window where it is most central."""
    features = ner_features(tokenizer, word_lists, options)
    best: dict[tuple[int, int], tuple[int, str, float]] = {}
    for start, out in _forward_batches(model, features, tokenizer.pad_token_id, batch_size):
        probs = _softmax(out.logits.float().cpu().numpy())
        for k in range(probs.shape[0]):
            f = features[start + k]
            word_ids = f["_word_ids"]
            content = [p for p, w in enumerate(word_ids) if w is not None]
            first, last = content[0], content[-1]
            previous = None
            for p, w in enumerate(word_ids):
                if w is None or w == previous:
                    previous = w
                    continue
                previous = w
                context = min(p - first, last - p)
                key = (f["_sample"], w)
                if key not in best or context > best[key][0]:
                    label = int(probs[k, p].argmax())
                    best[key] = (context, options.labels[label], float(probs[k, p, label]))
    return [[best.get((i, w), (0, "O", 0.0))[1:] for w in range(len(words))] for i, words in enumerate(word_lists)]


def ner_shape_vocabulary(word_lists: Sequence[Sequence[str]], limit: int = 200) -> list[str]:
    """The most frequent number shapes of the training words (each becomes one vocabulary entry)."""
    import collections

    counts = collections.Counter(s for words in word_lists for s in map(number_shape, words) if s is not None)
    return [s for s, _ in counts.most_common(limit)]


def entity_spans(words: Sequence[str], starts: Sequence[int], tagged: Sequence[tuple[str, float]], text: str) -> list[dict]:
    """IOB2 word tags as character-offset entities (an ``I-`` without its ``B-`` opens an entity)."""
    entities, current = [], None
    for word, start, (tag, score) in zip(words, starts, tagged):
        kind, _, label = tag.partition("-")
        if kind == "I" and current is not None and current["label"] == label:
            current["end"] = start + len(word)
            current["scores"].append(score)
            continue
        if current is not None:
            entities.append(current)
            current = None
        if kind in ("B", "I") and label:
            current = {"start": start, "end": start + len(word), "label": label, "scores": [score]}
    if current is not None:
        entities.append(current)
    return [{"start": e["start"], "end": e["end"], "label": e["label"], "text": text[e["start"]:e["end"]],
             "score": round(float(np.mean(e["scores"])), 4)} for e in entities]


# ------------------------------------------------------------------------------------------ QA


def qa_features(tokenizer, questions: Sequence[str], contexts: Sequence[str], options: TaskOptions,
                answers: Sequence[tuple[int, str]] | None = None) -> list[dict]:
    """Question + context windows; with answers (char start, text; start -1 = none), start/end token positions
    (0, the [CLS] token, when the window does not hold the answer)."""
    enc = tokenizer(list(questions), list(contexts), truncation="only_second", max_length=options.max_length,
                    stride=options.stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    features = []
    for j in range(len(enc["input_ids"])):
        sample = enc["overflow_to_sample_mapping"][j]
        seq = enc.sequence_ids(j)
        offsets = [o if s == 1 else None for o, s in zip(enc["offset_mapping"][j], seq)]
        feature = {**_model_inputs(enc, j), "_sample": sample, "_offsets": offsets}
        if answers is not None:
            start_char, text = answers[sample]
            start_tok = end_tok = 0
            if start_char is not None and start_char >= 0 and text:
                end_char = start_char + len(text)
                ctx = [p for p, o in enumerate(offsets) if o is not None]
                if ctx and offsets[ctx[0]][0] <= start_char and offsets[ctx[-1]][1] >= end_char:
                    start_tok = next(p for p in ctx if offsets[p][1] > start_char)
                    end_tok = next(p for p in reversed(ctx) if offsets[p][0] < end_char)
            feature["start_positions"], feature["end_positions"] = start_tok, end_tok
        features.append(feature)
    return features


def qa_predict(model, tokenizer, questions: Sequence[str], contexts: Sequence[str], options: TaskOptions,
               batch_size: int = 32, n_best: int = 20) -> list[dict]:
    """{answer, start, end, score} per question; an empty answer (start = end = -1) when unanswerable."""
    features = qa_features(tokenizer, questions, contexts, options)
    best: dict[int, tuple[float, int, int]] = {}
    null: dict[int, float] = {}
    for start, out in _forward_batches(model, features, tokenizer.pad_token_id, batch_size):
        s_logits, e_logits = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        for k in range(s_logits.shape[0]):
            f = features[start + k]
            sample, offsets = f["_sample"], f["_offsets"]
            s, e = s_logits[k][:len(offsets)], e_logits[k][:len(offsets)]
            null[sample] = min(null.get(sample, np.inf), float(s[0] + e[0]))
            for i in np.argsort(s)[::-1][:n_best]:
                if offsets[i] is None:
                    continue
                for j in np.argsort(e)[::-1][:n_best]:
                    if offsets[j] is None or j < i or j - i + 1 > options.max_answer_tokens:
                        continue
                    score = float(s[i] + e[j])
                    if sample not in best or score > best[sample][0]:
                        best[sample] = (score, offsets[i][0], offsets[j][1])
    results = []
    for n, context in enumerate(contexts):
        null_score = null.get(n, 0.0)
        if n in best and best[n][0] > null_score:
            score, a, b = best[n]
            results.append({"answer": context[a:b], "start": int(a), "end": int(b),
                            "score": round(float(1 / (1 + np.exp(null_score - score))), 4)})
        else:
            margin = null_score - best[n][0] if n in best else 10.0
            results.append({"answer": "", "start": -1, "end": -1, "score": round(float(1 / (1 + np.exp(-margin))), 4)})
    return results


# ------------------------------------------------------------------------------------------ relations


def mark_entities(text: str, head: tuple[int, int], tail: tuple[int, int]) -> str:
    """The sentence with ``[e1] head [/e1]`` and ``[e2] tail [/e2]`` inserted at their character offsets."""
    inserts = sorted([(head[0], 0, "[e1] "), (head[1], 1, " [/e1]"), (tail[0], 0, "[e2] "), (tail[1], 1, " [/e2]")],
                     key=lambda x: (x[0], x[1]), reverse=True)
    for pos, _, marker in inserts:
        text = text[:pos] + marker + text[pos:]
    return text


def relation_features(tokenizer, items: Sequence[dict], options: TaskOptions, labels: Sequence[str] | None = None) -> list[dict]:
    """One window of ``max_length`` tokens per entity pair, centred on the pair (the middle is cut when the
    two entities are further apart than a window)."""
    label_ids = {label: i for i, label in enumerate(options.labels)}
    marker_ids = set(tokenizer.convert_tokens_to_ids(list(RELATION_MARKERS)))
    budget = options.max_length - 2
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    texts = [mark_entities(it["text"], (it["head_start"], it["head_end"]), (it["tail_start"], it["tail_end"])) for it in items]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    features = []
    for n, ids in enumerate(encoded):
        if len(ids) > budget:
            marks = [p for p, t in enumerate(ids) if t in marker_ids] or [0, len(ids) - 1]
            lo, hi = min(marks), max(marks)
            if hi - lo + 1 <= budget:
                start = max(0, min(lo - (budget - (hi - lo + 1)) // 2, len(ids) - budget))
                ids = ids[start:start + budget]
            else:
                half = budget // 2
                ids = ids[lo:lo + half] + ids[hi + 1 - (budget - half):hi + 1]
        ids = [cls_id, *ids, sep_id]
        feature = {"input_ids": ids, "attention_mask": [1] * len(ids), "_sample": n}
        if labels is not None:
            feature["labels"] = label_ids[str(labels[n])]
        features.append(feature)
    return features


def sequence_probabilities(model, tokenizer, features: Sequence[dict], n_samples: int, batch_size: int = 32) -> np.ndarray:
    """Class probabilities per sample, averaged over its windows."""
    n_labels = model.config.num_labels
    total, count = np.zeros((n_samples, n_labels)), np.zeros(n_samples)
    for start, out in _forward_batches(model, features, tokenizer.pad_token_id, batch_size):
        probs = _softmax(out.logits.float().cpu().numpy())
        for k in range(probs.shape[0]):
            s = features[start + k]["_sample"]
            total[s] += probs[k]
            count[s] += 1
    return total / np.maximum(count, 1)[:, None]


# ------------------------------------------------------------------------------------------ classification


def classification_features(tokenizer, texts: Sequence[str], options: TaskOptions, labels: Sequence[str] | None = None,
                            max_windows: int | None = None) -> list[dict]:
    """Overlapping windows of each paragraph (at most ``max_windows`` per paragraph), each with the label."""
    label_ids = {label: i for i, label in enumerate(options.labels)}
    enc = tokenizer(list(texts), truncation=True, max_length=options.max_length, stride=options.stride,
                    return_overflowing_tokens=True)
    limit = max_windows or options.max_windows
    features, seen = [], {}
    for j in range(len(enc["input_ids"])):
        sample = enc["overflow_to_sample_mapping"][j]
        seen[sample] = seen.get(sample, 0) + 1
        if seen[sample] > limit:
            continue
        feature = {**_model_inputs(enc, j), "_sample": sample}
        if labels is not None:
            feature["labels"] = label_ids[str(labels[sample])]
        features.append(feature)
    return features


# ------------------------------------------------------------------------------------------ summarization


def summarization_features(tokenizer, documents: Sequence[str], options: TaskOptions,
                           summaries: Sequence[str] | None = None) -> list[dict]:
    """Training pairs: the document's lead window and its heading; without summaries, every window (at most
    ``max_windows``) for generation."""
    if summaries is not None:
        enc = tokenizer(list(documents), truncation=True, max_length=options.max_length)
        target = tokenizer(list(summaries), truncation=True, max_length=options.max_target_length)["input_ids"]
        if tokenizer.cls_token_id is not None and tokenizer.bos_token_id is None:
            # A BERT-style tokenizer opens every target with [CLS], which the warm-started decoder is also
            # given as its start token: keeping it taught the decoder to echo [CLS] (and, at demo size, to
            # generate nothing but special tokens). T5/BART targets keep their own conventions.
            target = [t[1:] if t and t[0] == tokenizer.cls_token_id else t for t in target]
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": target[i],
                 "_sample": i} for i in range(len(documents))]
    enc = tokenizer(list(documents), truncation=True, max_length=options.max_length, stride=options.stride,
                    return_overflowing_tokens=True)
    features, seen = [], {}
    for j in range(len(enc["input_ids"])):
        sample = enc["overflow_to_sample_mapping"][j]
        seen[sample] = seen.get(sample, 0) + 1
        if seen[sample] <= options.max_windows:
            features.append({"input_ids": enc["input_ids"][j], "attention_mask": enc["attention_mask"][j], "_sample": sample})
    return features


def summarize(model, tokenizer, documents: Sequence[str], options: TaskOptions, batch_size: int = 16) -> list[str]:
    """One summary per document: the window summary with the highest mean token log-probability."""
    import torch

    features = summarization_features(tokenizer, documents, options)
    device = next(model.parameters()).device
    best: dict[int, tuple[float, str]] = {}
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(features), batch_size):
            chunk = features[i:i + batch_size]
            batch = {k: v.to(device) for k, v in collate(chunk, tokenizer.pad_token_id).items()}
            out = model.generate(**batch, max_length=options.max_target_length, num_beams=options.num_beams,
                                 do_sample=False, return_dict_in_generate=True, output_scores=True)
            scores = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True).float().cpu().numpy()
            texts = tokenizer.batch_decode(out.sequences, skip_special_tokens=True)
            for k, f in enumerate(chunk):
                finite = scores[k][np.isfinite(scores[k]) & (scores[k] != 0)]
                confidence = float(finite.mean()) if finite.size else -np.inf
                if f["_sample"] not in best or confidence > best[f["_sample"]][0]:
                    best[f["_sample"]] = (confidence, texts[k].strip())
    return [best.get(n, (0.0, ""))[1] for n in range(len(documents))]
