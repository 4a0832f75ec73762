"""The figures each task is judged by: seqeval entity F1, SQuAD 2.0 EM/F1, macro-F1 and accuracy, ROUGE."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

import numpy as np

PRIMARY = {"ner": "micro_f1", "qa": "f1", "relation": "macro_f1", "classification": "macro_f1",
           "filing_industry": "macro_f1", "summarization": "rougeL"}


def ner_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level (seqeval, IOB2) micro and macro F1 over the given sentences."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    gold, pred = [list(g) for g in gold], [list(p) for p in pred]
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted tags")
    if not gold:
        return {"micro_f1": 0.0, "macro_f1": 0.0, "precision": 0.0, "recall": 0.0}
    kw = {"zero_division": 0}
    return {"micro_f1": float(f1_score(gold, pred, average="micro", **kw)),
            "macro_f1": float(f1_score(gold, pred, average="macro", **kw)),
            "precision": float(precision_score(gold, pred, average="micro", **kw)),
            "recall": float(recall_score(gold, pred, average="micro", **kw))}


def ner_per_label_f1(gold, pred) -> dict[str, float]:
    from seqeval.metrics import classification_report

    report = classification_report([list(g) for g in gold], [list(p) for p in pred], output_dict=True, zero_division=0)
    return {k: float(v["f1-score"]) for k, v in report.items() if not k.endswith(" avg")}


def _normalize_answer(s: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _f1(gold: str, pred: str) -> float:
    g, p = _normalize_answer(gold).split(), _normalize_answer(pred).split()
    if not g or not p:
        return float(g == p)
    common = collections.Counter(g) & collections.Counter(p)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_v2_metrics(gold_answers: Sequence[str], predictions: Sequence[str]) -> dict:
    """SQuAD 2.0 exact match and F1 in percent; an unanswerable question has gold ``''`` and scores 1 only
    for an empty prediction. Also split by answerable / unanswerable."""
    gold_answers, predictions = list(gold_answers), list(predictions)
    if len(gold_answers) != len(predictions):
        raise ValueError(f"{len(gold_answers)} gold answers but {len(predictions)} predictions")
    if not gold_answers:
        return {"exact": 0.0, "f1": 0.0, "has_answer_f1": 0.0, "no_answer_accuracy": 0.0}
    em = np.array([float(_normalize_answer(g) == _normalize_answer(p)) for g, p in zip(gold_answers, predictions)])
    f1 = np.array([_f1(g, p) for g, p in zip(gold_answers, predictions)])
    has = np.array([bool(_normalize_answer(g)) for g in gold_answers])
    out = {"exact": 100 * float(em.mean()), "f1": 100 * float(f1.mean())}
    out["has_answer_f1"] = 100 * float(f1[has].mean()) if has.any() else float("nan")
    out["no_answer_accuracy"] = 100 * float(em[~has].mean()) if (~has).any() else float("nan")
    return out


def label_metrics(gold: Sequence[str], pred: Sequence[str]) -> dict:
    """Macro-F1 over the labels present in gold or prediction, and accuracy."""
    from sklearn.metrics import accuracy_score, f1_score

    gold, pred = [str(g) for g in gold], [str(p) for p in pred]
    if not gold:
        return {"macro_f1": 0.0, "accuracy": 0.0}
    return {"macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
            "accuracy": float(accuracy_score(gold, pred))}


def rouge_metrics(references: Sequence[str], summaries: Sequence[str]) -> dict:
    """Mean ROUGE-1/2/L F-measure (rouge-score, Porter stemming)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    if len(references) != len(summaries):
        raise ValueError(f"{len(references)} references but {len(summaries)} summaries")
    if not references:
        return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    scores = [scorer.score(r, s) for r, s in zip(references, summaries)]
    return {k: float(np.mean([sc[k].fmeasure for sc in scores])) for k in ("rouge1", "rouge2", "rougeL")}
