"""Fine-tuning one task model (Hugging Face Trainer, DeepSpeed when CUDA is present), the shared cache of
tokenized features, and the Optuna study that tunes on the validation split and resumes when rerun."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from ..training import select_deepspeed_config, single_process_distributed_env


@dataclasses.dataclass
class TaskHyperparameters:
    """The fine-tuning knobs the study searches (defaults = the ``fine_tuned`` variant).

    The defaults suit a 22M-parameter MiniLM on a few hundred optimizer steps at most: BERT's 5e-5 with
    two epochs of 64 examples (8 steps) left the heads near their random start, and an NER model at the
    prior (every token ``O``, 98% of them). ``class_weighting`` is the power p of the inverse-frequency
    class weights of the cross-entropy (w_c proportional to freq_c^-p, normalised to mean 1 over the training
    targets; 0 = unweighted): without it a token classifier on ~2% entity tokens never leaves ``O``."""

    learning_rate: float = 3e-4
    epochs: int = 3
    batch_size: int = 8
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    class_weighting: float = 0.5  # classification, relations, NER; ignored by QA and summarization
    number_shapes: bool = False  # NER only: FiNER's number-shape pseudo-tokens
    seed: int = 42


@dataclasses.dataclass
class FitResult:
    seconds: float
    examples_per_second: float
    steps: int
    loss_history: list  # (step, training loss)
    eval_history: list  # (epoch, validation metric)
    pruned: bool = False


def feature_cache_dir() -> Path:
    home = Path(os.environ.get("FINSEC_HOME") or "./.finsec").expanduser().resolve()
    return home / "cache" / "understanding_features"


def tokenizer_identity(tokenizer) -> str:
    """A hash of the vocabulary (added tokens included) and the tokenizer class: same hash, same ids."""
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps([type(tokenizer).__name__, vocab]).encode()).hexdigest()[:16]


def cached_features(key: dict, build: Callable[[], list], cache_dir: Path | None = None) -> list:
    """Tokenized features shared by every variant, trial and rerun that asks for the same key
    (task, data hash, tokenizer vocabulary, window settings); written atomically."""
    cache_dir = Path(cache_dir or feature_cache_dir())
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    path = cache_dir / f"{key.get('task', 'features')}-{digest}.pkl"
    if path.is_file():
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError):
            path.unlink(missing_ok=True)
    features = build()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    with open(tmp, "wb") as f:
        pickle.dump(features, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return features


class _Features:
    """A list of feature dicts as a torch-style dataset (model inputs only)."""

    def __init__(self, features: Sequence[dict]):
        self.features = [{k: v for k, v in f.items() if not k.startswith("_")} for f in features]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


def class_weights(features: Sequence[dict], n_labels: int, power: float):
    """Cross-entropy weights per label id, freq^-power normalised so the mean weight over the training
    targets is 1 (labels that never occur get 1); None when ``power <= 0`` or there are no labels."""
    import numpy as np

    if power <= 0 or n_labels < 2:
        return None
    counts = np.zeros(n_labels)
    for f in features:
        value = f.get("labels")
        values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
        for v in values:
            if v is not None and 0 <= int(v) < n_labels:
                counts[int(v)] += 1
    if counts.sum() == 0:
        return None
    freq = counts / counts.sum()
    w = np.where(counts > 0, np.power(np.maximum(freq, 1e-12), -float(power)), 0.0)
    w = w / float((freq * w).sum())
    return [float(x) if c > 0 else 1.0 for x, c in zip(w, counts)]


def weighted_cross_entropy(weights: Sequence[float]):
    """A Trainer ``compute_loss_func``: class-weighted cross-entropy over ``logits`` (sequence or token level;
    label -100 ignored), the weighted mean over the batch."""
    import torch

    table = torch.tensor(list(weights), dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        w = table.to(logits.device)
        return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 weight=w, ignore_index=-100)

    return loss


def fit(model, tokenizer, features: Sequence[dict], hp: TaskHyperparameters, work_dir: Path, *,
        eval_fn: Callable[[object], float] | None = None, trial=None, deepspeed: str = "auto",
        precision: str = "auto", logger=None, label: str = "train", weights: Sequence[float] | None = None) -> FitResult:
    """Train ``model`` on ``features`` for ``hp.epochs``; after every epoch ``eval_fn(model)`` scores the
    validation split (learning curve, and the Optuna pruner's input when ``trial`` is given). With ``weights``
    (per label id) the loss is the class-weighted cross-entropy."""
    import torch
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    from .tasks import collate

    if not features:
        raise ValueError(f"{label}: no training features (the training split is empty after tokenization)")
    cuda = torch.cuda.is_available()
    ds_config = select_deepspeed_config(deepspeed, sum(p.numel() for p in model.parameters()))
    if ds_config is not None:
        single_process_distributed_env()
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    steps_per_epoch = max(1, -(-len(features) // hp.batch_size))
    args = TrainingArguments(
        output_dir=str(work_dir), num_train_epochs=hp.epochs, per_device_train_batch_size=hp.batch_size,
        learning_rate=hp.learning_rate, weight_decay=hp.weight_decay,
        warmup_steps=float(hp.warmup_ratio) if hp.warmup_ratio else 0, lr_scheduler_type="linear", seed=hp.seed,
        data_seed=hp.seed, logging_steps=max(1, steps_per_epoch * hp.epochs // 20), logging_first_step=True,
        save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True, log_level="warning",
        use_cpu=not cuda, bf16=precision == "bf16", fp16=precision == "fp16", dataloader_num_workers=0,
        dataloader_pin_memory=cuda, remove_unused_columns=False, deepspeed=str(ds_config) if ds_config else None,
    )
    history: list = []
    state = {"pruned": False, "eval_seconds": 0.0}

    class EpochEval(TrainerCallback):
        def on_log(self, args, st, control, logs=None, **kwargs):
            if logger is not None and logs and "loss" in logs:
                logger.info(f"{label}: step {st.global_step}/{st.max_steps} loss {logs['loss']:.4f}")

        def on_epoch_end(self, args, st, control, **kwargs):
            if eval_fn is None:
                return
            epoch = int(round(st.epoch or 0))
            t0 = time.perf_counter()
            value = float(eval_fn(kwargs["model"]))
            state["eval_seconds"] += time.perf_counter() - t0
            history.append((epoch, value))
            if logger is not None:
                logger.info(f"{label}: epoch {epoch} validation {value:.4f}")
            if trial is not None:
                trial.report(value, epoch)
                if trial.should_prune():
                    state["pruned"] = True
                    control.should_training_stop = True

    torch.manual_seed(hp.seed)
    trainer = Trainer(model=model, args=args, train_dataset=_Features(features),
                      data_collator=lambda batch: collate(batch, tokenizer.pad_token_id), callbacks=[EpochEval()],
                      compute_loss_func=weighted_cross_entropy(weights) if weights is not None else None)
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    losses = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]
    epochs_done = float(trainer.state.epoch or hp.epochs)
    train_seconds = max(seconds - state["eval_seconds"], 1e-9)  # the per-epoch validation runs inside train()
    result = FitResult(seconds=round(seconds, 3), examples_per_second=round(len(features) * epochs_done / train_seconds, 2),
                       steps=int(trainer.state.global_step), loss_history=losses, eval_history=history, pruned=state["pruned"])
    trainer.optimizer = trainer.lr_scheduler = None
    model.eval()
    return result


# ------------------------------------------------------------------------------------------ Optuna


@dataclasses.dataclass
class SearchSpace:
    """The study's ranges; ``trials`` is how many finished trials the study should hold in total."""

    trials: int = 3
    learning_rate_min: float = 1e-4
    learning_rate_max: float = 6e-4
    min_epochs: int = 2
    max_epochs: int = 4
    batch_sizes: list = dataclasses.field(default_factory=lambda: [8, 16])
    warmup_max: float = 0.2
    weight_decay_max: float = 0.1
    class_weighting_max: float = 1.0
    storage: str = ""  # "" = SQLite next to the checkpoints; or any Optuna RDB URL (postgresql://...)
    seed: int = 0

    def fingerprint_fields(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("trials")
        d.pop("storage")
        return d


def suggest(trial, space: SearchSpace, defaults: TaskHyperparameters, with_number_shapes: bool,
            with_class_weights: bool = False) -> TaskHyperparameters:
    return dataclasses.replace(
        defaults,
        learning_rate=trial.suggest_float("learning_rate", space.learning_rate_min, space.learning_rate_max, log=True),
        epochs=trial.suggest_int("epochs", max(1, min(space.min_epochs, space.max_epochs)), max(1, space.max_epochs)),
        batch_size=int(trial.suggest_categorical("batch_size", [int(b) for b in space.batch_sizes])),
        warmup_ratio=trial.suggest_float("warmup_ratio", 0.0, space.warmup_max),
        weight_decay=trial.suggest_float("weight_decay", 0.0, space.weight_decay_max),
        class_weighting=trial.suggest_float("class_weighting", 0.0, space.class_weighting_max)
        if with_class_weights else defaults.class_weighting,
        number_shapes=bool(trial.suggest_categorical("number_shapes", [False, True])) if with_number_shapes else defaults.number_shapes,
    )


def finished_trials(study) -> list:
    import optuna

    return [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


def open_study(storage_url: str, study_name: str, space: SearchSpace):
    """The named study (created, or loaded to resume): TPE sampler, median pruner, maximising.

    The sampler's seed moves on with the number of trials already stored, so a resumed study does not
    replay its first suggestions."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url, engine_kwargs={"connect_args": {"timeout": 60}}
                                         if storage_url.startswith("sqlite") else {})
    existing = 0
    try:
        existing = len(optuna.load_study(study_name=study_name, storage=storage).trials)
    except KeyError:
        pass
    sampler = optuna.samplers.TPESampler(seed=space.seed + existing, n_startup_trials=max(2, space.trials // 3))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    return optuna.create_study(study_name=study_name, storage=storage, direction="maximize", sampler=sampler,
                               pruner=pruner, load_if_exists=True)


def plot_study(study, history_path: Path, importance_path: Path, metric: str) -> None:
    """Optimisation history (each trial, best so far) and parameter importances (fANOVA-style, when the
    study has enough finished trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    trials = finished_trials(study)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    xs = [t.number for t in trials]
    ys = [t.value if t.value is not None else (list(t.intermediate_values.values()) or [float("nan")])[-1] for t in trials]
    pruned = [t.state == optuna.trial.TrialState.PRUNED for t in trials]
    ax.scatter([x for x, p in zip(xs, pruned) if not p], [y for y, p in zip(ys, pruned) if not p], label="complete")
    if any(pruned):
        ax.scatter([x for x, p in zip(xs, pruned) if p], [y for y, p in zip(ys, pruned) if p], marker="x", label="pruned")
    best, best_so_far = float("-inf"), []
    for y, p in zip(ys, pruned):
        if not p and y is not None:
            best = max(best, y)
        best_so_far.append(best if best > float("-inf") else float("nan"))
    ax.plot(xs, best_so_far, color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title(f"Optuna study {study.study_name[:40]}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(history_path, dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    complete = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if len(set(complete)) < 2:  # fANOVA on equal (or too few) values spreads the importance evenly: meaningless
        importances, reason = {}, f"{len(complete)} finished trial(s), {len(set(complete))} distinct value(s)"
    else:
        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError, ZeroDivisionError) as exc:
            importances, reason = {}, str(exc)
        else:
            reason = ""
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel("importance (share of the objective's variance)")
    else:
        ax.text(0.5, 0.5, f"parameter importances need at least two finished trials\nwith different values"
                          f"{(': ' + reason[:80]) if reason else ''}", ha="center", va="center", fontsize=9, wrap=True)
        ax.set_axis_off()
    ax.set_title("parameter importances")
    fig.tight_layout()
    fig.savefig(importance_path, dpi=90)
    plt.close(fig)
