"""One adapter per task: which rows it trains on, its labels, its baselines, how predictions are scored,
and the evaluation picture. The training pipeline (``train.py``) is the same for all five."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd

from . import baselines, metrics, tasks
from .tasks import TaskOptions

OUTSIDE = "O"


def _plot_bars(path: Path, names, values, title: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n if len(n) <= 48 else n[:46] + "…" for n in map(str, names)]  # us-gaap names run to 100+ characters
    fig, ax = plt.subplots(figsize=(9, max(2.4, 0.28 * len(names) + 1)))
    ax.barh(names[::-1], list(values)[::-1])
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_confusion(path: Path, gold, pred, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(map(str, gold)) | set(map(str, pred)))
    cm = confusion_matrix(list(map(str, gold)), list(map(str, pred)), labels=labels)
    size = max(3.2, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


class Adapter(ABC):
    """What differs between the five tasks; the training loop, study and publishing are shared."""

    task: str = ""
    dataset: str = ""  # the dataset table this task reads (its contract name in data.TASK_COLUMNS)
    uses_labels = True

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        return df

    def labels(self, train: pd.DataFrame) -> list[str]:
        return sorted(set(map(str, train["label"])))

    def options(self, base: TaskOptions, hp, train: pd.DataFrame) -> TaskOptions:
        return base

    @abstractmethod
    def train_features(self, tokenizer, options: TaskOptions, df: pd.DataFrame) -> list[dict]:
        raise NotImplementedError

    @abstractmethod
    def predict(self, model, tokenizer, options: TaskOptions, df: pd.DataFrame) -> list:
        raise NotImplementedError

    @abstractmethod
    def score(self, df: pd.DataFrame, predictions: list) -> dict:
        raise NotImplementedError

    @abstractmethod
    def baselines(self, train: pd.DataFrame, evaluate: dict[str, pd.DataFrame]) -> dict[str, dict[str, list]]:
        """{variant: {split: predictions}} for the non-neural baselines, trained on ``train`` only."""
        raise NotImplementedError

    @abstractmethod
    def picture(self, df: pd.DataFrame, predictions: list, path: Path, title: str) -> None:
        raise NotImplementedError

    @property
    def primary(self) -> str:
        return metrics.PRIMARY[self.task]


class NerAdapter(Adapter):
    task = dataset = "ner"

    def labels(self, train):
        tags = sorted({t for tags in train["tags"] for t in tags} - {OUTSIDE})
        return [OUTSIDE, *tags]

    def options(self, base, hp, train):
        shapes = tasks.ner_shape_vocabulary(list(train["tokens"])) if hp.number_shapes else []
        return dataclasses.replace(base, number_shapes=bool(hp.number_shapes), shape_tokens=shapes)

    def train_features(self, tokenizer, options, df):
        return tasks.ner_features(tokenizer, [list(t) for t in df["tokens"]], options, [list(t) for t in df["tags"]])

    def predict(self, model, tokenizer, options, df):
        tagged = tasks.ner_predict_words(model, tokenizer, [list(t) for t in df["tokens"]], options)
        return [[tag for tag, _ in sentence] for sentence in tagged]

    def score(self, df, predictions):
        return metrics.ner_metrics([list(t) for t in df["tags"]], predictions)

    def baselines(self, train, evaluate):
        crf = baselines.train_crf([list(t) for t in train["tokens"]], [list(t) for t in train["tags"]])
        return {"baseline": {s: baselines.predict_crf(crf, [list(t) for t in d["tokens"]]) for s, d in evaluate.items()}}

    def picture(self, df, predictions, path, title):
        f1 = metrics.ner_per_label_f1([list(t) for t in df["tags"]], predictions)
        names = sorted(f1, key=lambda k: -f1[k])[:30]
        _plot_bars(path, names or ["(no entities)"], [f1[n] for n in names] or [0.0], title, "entity F1 (seqeval)")


class QaAdapter(Adapter):
    task = dataset = "qa"
    uses_labels = False

    def labels(self, train):
        return []

    def _answers(self, df):
        return [(-1, "") if bool(imp) else (int(s), str(a))
                for imp, s, a in zip(df["is_impossible"], df["answer_start"], df["answer_text"])]

    def train_features(self, tokenizer, options, df):
        return tasks.qa_features(tokenizer, list(df["question"]), list(df["context"]), options, self._answers(df))

    def predict(self, model, tokenizer, options, df):
        return [r["answer"] for r in tasks.qa_predict(model, tokenizer, list(df["question"]), list(df["context"]), options)]

    def score(self, df, predictions):
        gold = ["" if bool(imp) else str(a) for imp, a in zip(df["is_impossible"], df["answer_text"])]
        return metrics.squad_v2_metrics(gold, predictions)

    def baselines(self, train, evaluate):
        gold = ["" if bool(imp) else str(a) for imp, a in zip(train["is_impossible"], train["answer_text"])]
        qa = baselines.LexicalQA().fit(list(train["question"]), list(train["context"]), gold)
        return {"baseline": {s: qa.predict(list(d["question"]), list(d["context"])) for s, d in evaluate.items()}}

    def picture(self, df, predictions, path, title):
        gold = ["no answer" if bool(imp) else "answerable" for imp in df["is_impossible"]]
        pred = ["no answer" if not p else "answered" for p in predictions]
        _plot_confusion(path, gold, pred, title)


class RelationAdapter(Adapter):
    task = dataset = "relation"

    def labels(self, train):
        return sorted(set(map(str, train["label"])) | {"no_relation"})

    def _items(self, df):
        return df[["text", "head_start", "head_end", "tail_start", "tail_end"]].to_dict("records")

    def train_features(self, tokenizer, options, df):
        return tasks.relation_features(tokenizer, self._items(df), options, list(df["label"]))

    def predict(self, model, tokenizer, options, df):
        feats = tasks.relation_features(tokenizer, self._items(df), options)
        probs = tasks.sequence_probabilities(model, tokenizer, feats, len(df))
        return [options.labels[i] for i in probs.argmax(axis=1)]

    def score(self, df, predictions):
        return metrics.label_metrics(list(df["label"]), predictions)

    def baselines(self, train, evaluate):
        return {"baseline": {s: baselines.nearest_tail_rule(d) for s, d in evaluate.items()},
                "majority": {s: baselines.majority_label(train["label"], len(d)) for s, d in evaluate.items()}}

    def picture(self, df, predictions, path, title):
        _plot_confusion(path, list(df["label"]), predictions, title)


class ClassificationAdapter(Adapter):
    """Paragraph -> section item. The filing-level industry rows are handled by :class:`IndustryClassifier`."""

    task = "classification"
    dataset = "classification"

    def prepare(self, df):
        return df[df["task"] == "paragraph_item"].reset_index(drop=True)

    def train_features(self, tokenizer, options, df):
        return tasks.classification_features(tokenizer, list(df["text"]), options, list(df["label"]))

    def predict(self, model, tokenizer, options, df):
        feats = tasks.classification_features(tokenizer, list(df["text"]), options)
        probs = tasks.sequence_probabilities(model, tokenizer, feats, len(df))
        return [options.labels[i] for i in probs.argmax(axis=1)]

    def score(self, df, predictions):
        return metrics.label_metrics(list(df["label"]), predictions)

    def baselines(self, train, evaluate):
        clf = baselines.train_tfidf_logreg(list(train["text"]), list(train["label"]))
        return {"baseline": {s: list(clf.predict(list(d["text"]))) for s, d in evaluate.items()},
                "majority": {s: baselines.majority_label(train["label"], len(d)) for s, d in evaluate.items()}}

    def picture(self, df, predictions, path, title):
        _plot_confusion(path, list(df["label"]), predictions, title)


class SummarizationAdapter(Adapter):
    task = dataset = "summarization"
    uses_labels = False

    def labels(self, train):
        return []

    def train_features(self, tokenizer, options, df):
        return tasks.summarization_features(tokenizer, list(df["document"]), options, list(df["summary"]))

    def predict(self, model, tokenizer, options, df):
        return tasks.summarize(model, tokenizer, list(df["document"]), options)

    def score(self, df, predictions):
        return metrics.rouge_metrics(list(df["summary"]), predictions)

    def baselines(self, train, evaluate):
        return {"baseline": {s: [baselines.lead_sentence(d) for d in f["document"]] for s, f in evaluate.items()},
                "baseline_jaccard": {s: [baselines.jaccard_sentence(d) for d in f["document"]] for s, f in evaluate.items()}}

    def picture(self, df, predictions, path, title):
        m = self.score(df, predictions)
        _plot_bars(path, list(m), list(m.values()), title, "F-measure")


ADAPTERS = {a.task: a for a in (NerAdapter(), QaAdapter(), RelationAdapter(), ClassificationAdapter(), SummarizationAdapter())}


# ------------------------------------------------------------------------------------------ filing industry


INDUSTRY_WEIGHTS = "industry_mlp.npz"


def industry_rows(df: pd.DataFrame) -> pd.DataFrame:
    rows = df[df["task"] == "filing_industry"]
    return rows[rows["embedding"].map(lambda v: v is not None and len(v) > 0)].reset_index(drop=True)


def industry_variants(frames: dict[str, pd.DataFrame], seed: int = 0) -> tuple[dict, dict | None]:
    """Filing-level industry from pooled embeddings: {variant: {split: predictions}} for a logistic-regression
    baseline, a majority control and the MLP; plus the MLP's arrays and labels (None when too few filings)."""
    train = frames["train"]
    if len(train) < 2 or train["label"].nunique() < 2:
        return {}, None
    x = np.stack(train["embedding"].map(np.asarray).to_list()).astype(np.float32)
    y = list(map(str, train["label"]))
    logreg = baselines.train_embedding_logreg(x, y)
    mlp = baselines.train_embedding_mlp(x, y, seed=seed)
    out: dict[str, dict[str, list]] = {"baseline": {}, "majority": {}, "mlp": {}}
    for split in ("validation", "test"):
        d = frames[split]
        if d.empty:
            continue
        xs = np.stack(d["embedding"].map(np.asarray).to_list()).astype(np.float32)
        out["baseline"][split] = list(logreg.predict(xs))
        out["majority"][split] = baselines.majority_label(y, len(d))
        out["mlp"][split] = list(mlp.predict(xs))
    return out, {"arrays": baselines.mlp_arrays(mlp), "labels": [str(c) for c in mlp.classes_], "dim": int(x.shape[1])}
