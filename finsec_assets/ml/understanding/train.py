"""Train and judge one document-understanding task: baseline, fine_tuned, fine_tuned_domain, tuned.

JumpStart's four steps on SEC-native labels, with company-held-out evaluation:

1. ``baseline``: a non-neural model (see ``baselines.py``), trained on the training companies.
2. ``fine_tuned``: the generic all-MiniLM-L6-v2 encoder + a task head, default hyperparameters.
3. ``fine_tuned_domain``: the same from ``pretrained_checkpoint`` (the filing-adapted encoder).
4. ``tuned``: an Optuna study (TPE sampler, median pruner) over learning rate, epochs, batch size, warmup,
   weight decay and, for NER, number-shape tokens, scored on the *validation* companies only. The study is
   stored (SQLite next to the checkpoints, or any RDB URL), so a rerun resumes it instead of restarting.

Every variant is then scored once on the *test* companies. The neural variant with the best validation
score is published as a versioned checkpoint (``versions/<v>/`` then ``LATEST``) that loads with the task's
``transformers`` Auto class; its ``manifest.json`` holds every (task, variant, split, metric, value) row.
Finished variants are kept in the work directory, so a run that dies resumes at the next variant.

Run it by hand::

    python -m finsec_assets.ml.understanding.train --set task=ner --set dataset_uri=ner.parquet --set hpo.trials=2

or let the ``<task>_model`` asset launch it through Dagster Pipes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..training import (CHECKPOINT_FORMAT, MANIFEST, CheckpointStore, TrainingInputError, config_from,
                               default_checkpoint_root, entry_point_session, environment_info, finsec_home,
                               fingerprint, minilm_path, model_identity, quiet_libraries, resolve_model_source,
                               write_json)
from . import data
from .adapters import ADAPTERS, INDUSTRY_WEIGHTS, industry_rows, industry_variants
from .metrics import label_metrics
from .neural import (SearchSpace, TaskHyperparameters, cached_features, class_weights, finished_trials, fit, open_study,
                     plot_study, suggest, tokenizer_identity)
from .tasks import AUTO_CLASSES, TaskOptions, build_model

ENTRY_MODULE = "finsec_assets.ml.understanding.train"
TASKS = tuple(ADAPTERS)
MODEL_ASSETS = {task: f"{task}_model" for task in TASKS}
DOMAIN_ASSET = "pretrained_checkpoint"
NEURAL_VARIANTS = ("fine_tuned", "fine_tuned_domain", "tuned")
PICTURES = {"evaluation": "evaluation.png", "variants": "variants.png", "learning_curves": "learning_curves.png",
            "optimisation_history": "optuna_history.png", "parameter_importances": "optuna_importances.png"}
STUDY_DB = "studies.sqlite3"

# Demo-size defaults: the five tasks together within ~5 minutes on two idle CPU cores (measured 260 s wall,
# benchmarks/understanding.py; 4 trainings each:
# fine_tuned, fine_tuned_domain and two trials of 2-3 epochs; ~100 training windows per epoch at ~25 examples/s),
# with enough optimizer steps at a MiniLM-sized learning rate (TaskHyperparameters) for every head to fit its
# training rows. Scale them up on a GPU (0 = every row).
_DEMO_HPO = {"trials": 2, "min_epochs": 2, "max_epochs": 3}
TASK_DEFAULTS = {
    "ner": {"max_length": 48, "stride": 12, "max_train_examples": 64, "max_validation_examples": 32,
            "max_test_examples": 64, "hpo": _DEMO_HPO},
    "qa": {"max_length": 128, "stride": 32, "max_train_examples": 48, "max_validation_examples": 32,
           "max_test_examples": 64, "hpo": _DEMO_HPO},
    "relation": {"max_length": 48, "max_train_examples": 96, "max_validation_examples": 32, "max_test_examples": 96,
                 "hpo": _DEMO_HPO},
    "classification": {"max_length": 64, "max_windows": 1, "max_train_examples": 96, "max_validation_examples": 32,
                       "max_test_examples": 96, "hpo": _DEMO_HPO},
    "summarization": {"max_length": 64, "max_target_length": 32, "max_windows": 1, "max_train_examples": 48, "max_validation_examples": 12,
                      "max_test_examples": 32, "hpo": _DEMO_HPO},
}


@dataclasses.dataclass
class UnderstandingConfig:
    task: str
    dataset_uri: str
    checkpoint_root: str = ""  # default: checkpoints/<task>_model in the project's object store
    work_dir: str = ""  # local scratch (default FINSEC_HOME/work)
    base: str = ""  # "" = bundled all-MiniLM-L6-v2; or a model path / URI
    domain_base: str = ""  # "" = pretrained_checkpoint's latest version; "none" = skip fine_tuned_domain
    seq2seq_base: str = ""  # summarization: a local seq2seq checkpoint (e.g. T5) instead of warm-starting the encoder
    tune_from: str = "generic"  # the study fine-tunes the generic encoder ("generic") or the domain one ("domain")
    max_length: int = 128
    stride: int = 16  # tokens of overlap between windows of a long input
    max_target_length: int = 24
    num_beams: int = 1
    max_windows: int = 4
    max_train_examples: int = 0  # 0 = all; a stable subset by id hash otherwise
    max_validation_examples: int = 0
    max_test_examples: int = 0
    training: TaskHyperparameters = dataclasses.field(default_factory=TaskHyperparameters)
    hpo: SearchSpace = dataclasses.field(default_factory=SearchSpace)
    deepspeed: str = "auto"
    precision: str = "auto"
    data_versions: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: dict) -> "UnderstandingConfig":
        from ..training import deep_merge

        task = raw.get("task")
        if task not in ADAPTERS:
            raise TrainingInputError(f"understanding config.task={task!r}: use one of {list(ADAPTERS)}")
        cfg = config_from(cls, deep_merge(TASK_DEFAULTS.get(task, {}), raw), "understanding config")
        if cfg.max_length < 16 or cfg.stride < 0 or cfg.stride > cfg.max_length // 2:
            raise TrainingInputError(f"understanding config: max_length={cfg.max_length}, stride={cfg.stride}: "
                                     "need max_length >= 16 and 0 <= stride <= max_length / 2")
        if cfg.hpo.trials < 0 or cfg.hpo.max_epochs < 1 or not cfg.hpo.batch_sizes or cfg.hpo.min_epochs < 1:
            raise TrainingInputError(f"understanding config.hpo: trials={cfg.hpo.trials} (>= 0), min_epochs="
                                     f"{cfg.hpo.min_epochs} and max_epochs={cfg.hpo.max_epochs} (>= 1), "
                                     f"batch_sizes={cfg.hpo.batch_sizes} (non-empty)")
        if cfg.training.epochs < 1 or cfg.training.batch_size < 1 or cfg.training.learning_rate <= 0:
            raise TrainingInputError(f"understanding config.training: {cfg.training}: epochs, batch_size and "
                                     "learning_rate must be positive")
        if cfg.training.class_weighting < 0 or cfg.hpo.class_weighting_max < 0:
            raise TrainingInputError(f"understanding config: training.class_weighting={cfg.training.class_weighting}, "
                                     f"hpo.class_weighting_max={cfg.hpo.class_weighting_max}: must be >= 0 (0 = unweighted)")
        if cfg.tune_from not in ("generic", "domain"):
            raise TrainingInputError(f"understanding config.tune_from={cfg.tune_from!r}: use generic or domain")
        return cfg

    def base_options(self, labels: list[str]) -> TaskOptions:
        return TaskOptions(task=self.task, labels=list(labels), max_length=self.max_length, stride=self.stride,
                           max_target_length=self.max_target_length, num_beams=self.num_beams,
                           max_windows=self.max_windows)


def code_version() -> str:
    """Hash of this package and the shared training helpers: a code change means a new checkpoint version."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for f in [*sorted(here.glob("*.py")), *sorted((here.parent / "training").glob("*.py"))]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def resolve_domain_base(spec: str) -> Path | None:
    if spec.strip().lower() == "none":
        return None
    root = spec or default_checkpoint_root(DOMAIN_ASSET)
    try:
        return resolve_model_source(root)
    except TrainingInputError as exc:
        raise TrainingInputError(
            f"fine_tuned_domain needs the domain encoder at {root!r} ({exc}); materialize {DOMAIN_ASSET} first, "
            "or set domain_base to a model path, or to 'none' to skip the variant") from exc


class _Logger:
    def __init__(self, logger):
        self.info = logger.info if logger is not None else (lambda *_: None)
        self.warning = getattr(logger, "warning", self.info) if logger is not None else (lambda *_: None)


def _rows(task: str, variant: str, split: str, values: dict) -> list[dict]:
    return [{"task": task, "variant": variant, "split": split, "metric": k, "value": float(v)}
            for k, v in values.items() if v is not None and np.isfinite(v)]


class TaskRun:
    """One task's pipeline over its four variants (state on disk, so a rerun continues)."""

    def __init__(self, cfg: UnderstandingConfig, logger=None):
        self.cfg, self.log = cfg, _Logger(logger)
        self.adapter = ADAPTERS[cfg.task]
        table = data.read_dataset(self.adapter.dataset, cfg.dataset_uri)
        self.dataset_sha = data.frame_sha256(table)
        self.full = data.split_frames(table)
        prepared = data.split_frames(self.adapter.prepare(table))
        limits = {"train": cfg.max_train_examples, "validation": cfg.max_validation_examples, "test": cfg.max_test_examples}
        self.frames = {s: data.stable_subset(prepared[s], limits[s], seed=cfg.training.seed) for s in data.SPLITS}
        for split, df in self.frames.items():
            if df.empty:
                raise TrainingInputError(f"{data.DATASET_ASSETS[self.adapter.dataset]} ({cfg.dataset_uri}): the {split} split "
                                         f"has no rows for task {cfg.task}; the dataset needs companies in every split")
        self.labels = self.adapter.labels(self.frames["train"]) if self.adapter.uses_labels else []
        if self.adapter.uses_labels and len(self.labels) < 2:
            raise TrainingInputError(f"{data.DATASET_ASSETS[self.adapter.dataset]}: the training split has "
                                     f"{len(self.labels)} label(s) {self.labels}; a classifier needs at least two")
        self.companies = {s: sorted(int(c) for c in df["cik"].unique()) for s, df in self.frames.items()}
        self.generic = resolve_model_source(cfg.seq2seq_base or cfg.base or str(minilm_path()))
        self.domain = resolve_domain_base(cfg.domain_base)
        self.seq2seq = bool(cfg.seq2seq_base)
        self.version = fingerprint({
            "kind": "document-understanding", "task": cfg.task, "code": code_version(), "data": self.dataset_sha,
            "base": model_identity(self.generic), "domain": model_identity(self.domain) if self.domain else None,
            "config": self._config_fields(with_trials=True)})
        self.study_name = f"{cfg.task}-" + fingerprint({
            "code": code_version(), "data": self.dataset_sha, "base": model_identity(self.tune_base),
            "config": self._config_fields(with_trials=False)})
        self.checkpoints = CheckpointStore(cfg.checkpoint_root or default_checkpoint_root(MODEL_ASSETS[cfg.task]))
        self.work = Path(cfg.work_dir or finsec_home() / "work") / f"understanding-{cfg.task}-{self.version}"
        self._live: dict = {}

    @property
    def tune_base(self) -> Path:
        return self.domain if self.cfg.tune_from == "domain" and self.domain is not None else self.generic

    def _config_fields(self, with_trials: bool) -> dict:
        d = dataclasses.asdict(self.cfg)
        for k in ("dataset_uri", "checkpoint_root", "work_dir", "data_versions", "base", "domain_base", "deepspeed"):
            d.pop(k)
        d["hpo"] = self.cfg.hpo.fingerprint_fields() | ({"trials": self.cfg.hpo.trials} if with_trials else {})
        return d

    # ---------------------------------------------------------------------------------- pieces

    def _features(self, tokenizer, options: TaskOptions, split: str) -> list[dict]:
        key = {"task": self.cfg.task, "split": split, "data": data.frame_sha256(self.frames[split]),
               "tokenizer": tokenizer_identity(tokenizer), "options": dataclasses.asdict(options), "code": code_version()}
        return cached_features(key, lambda: self.adapter.train_features(tokenizer, options, self.frames[split]))

    def evaluate(self, model, tokenizer, options: TaskOptions, split: str) -> tuple[dict, list, float]:
        df = self.frames[split]
        start = time.perf_counter()
        predictions = self.adapter.predict(model, tokenizer, options, df)
        seconds = time.perf_counter() - start
        return self.adapter.score(df, predictions), predictions, len(df) / max(seconds, 1e-9)

    def train_variant(self, name: str, base: Path, hp: TaskHyperparameters, out_dir: Path, trial=None) -> dict:
        """Fine-tune from ``base`` with ``hp``; validation after every epoch; the model saved to ``out_dir``.
        The test split is not touched here."""
        import transformers

        transformers.set_seed(hp.seed)
        options = self.adapter.options(self.cfg.base_options(self.labels), hp, self.frames["train"])
        model, tokenizer = build_model(self.cfg.task, base, options, seq2seq=self.seq2seq and base == self.generic)
        features = self._features(tokenizer, options, "train")
        last: dict = {}

        def validate(m) -> float:
            last["metrics"], last["predictions"], _ = self.evaluate(m, tokenizer, options, "validation")
            return last["metrics"][self.adapter.primary]

        weights = class_weights(features, len(options.labels), hp.class_weighting) if self.adapter.uses_labels else None
        scratch = self.work / "trainer" / name
        result = fit(model, tokenizer, features, hp, scratch, eval_fn=validate, trial=trial, weights=weights,
                     deepspeed=self.cfg.deepspeed, precision=self.cfg.precision, logger=self.log, label=name)
        shutil.rmtree(scratch, ignore_errors=True)
        if "metrics" not in last:
            validate(model)
        tmp = out_dir.with_name(f".tmp-{out_dir.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_pretrained(str(tmp / "model"))
        tokenizer.save_pretrained(str(tmp / "model"))
        options.save(tmp / "model")
        info = {"variant": name, "base": str(base), "hyperparameters": dataclasses.asdict(hp),
                "validation": last["metrics"], "fit": dataclasses.asdict(result), "train_features": len(features),
                "trial": None if trial is None else trial.number}
        write_json(tmp / "result.json", info)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
        self._live[out_dir] = (model, tokenizer, options)  # scored on test from memory, not reloaded
        return info

    def load_variant(self, out_dir: Path):
        import transformers

        options = TaskOptions.load(out_dir / "model")
        auto = getattr(transformers, AUTO_CLASSES[self.cfg.task])
        model = auto.from_pretrained(str(out_dir / "model"))
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(out_dir / "model"))
        return model, tokenizer, options

    def finished(self, out_dir: Path) -> dict | None:
        f = out_dir / "result.json"
        return json.loads(f.read_text()) if f.is_file() and (out_dir / "model").is_dir() else None

    def test_variant(self, out_dir: Path) -> dict:
        """The variant's test-split score (computed once, kept in test.json)."""
        f = out_dir / "test.json"
        if f.is_file():
            return json.loads(f.read_text())
        live = self._live.pop(out_dir, None)
        model, tokenizer, options = live if live is not None else self.load_variant(out_dir)
        test, predictions, speed = self.evaluate(model, tokenizer, options, "test")
        out = {"test": test, "predictions": predictions, "inference_examples_per_second": round(speed, 2)}
        write_json(f, out)
        return out

    # ---------------------------------------------------------------------------------- study

    def study_storage(self) -> tuple[str, callable]:
        """The study's RDB URL and a function that saves it (a no-op unless the checkpoint root is remote)."""
        if self.cfg.hpo.storage:
            return self.cfg.hpo.storage, lambda: None
        store = self.checkpoints.store
        if self.checkpoints.is_local:
            path = store.local_path(STUDY_DB)
            path.parent.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{path}", lambda: None
        local = self.work.parent / f"studies-{self.cfg.task}-{hashlib.sha256(self.checkpoints.root_uri.encode()).hexdigest()[:8]}.sqlite3"
        local.parent.mkdir(parents=True, exist_ok=True)
        if store.exists(STUDY_DB):
            local.write_bytes(store.get_bytes(STUDY_DB))
        return f"sqlite:///{local}", lambda: store.put_file(STUDY_DB, local)

    def tune(self) -> tuple[object, dict | None]:
        """Run (or resume) the study to ``hpo.trials`` finished trials; the best trial's model is kept."""
        import optuna

        space = self.cfg.hpo
        url, save = self.study_storage()
        study = open_study(url, self.study_name, space)
        done = finished_trials(study)
        remaining = max(0, space.trials - len(done))
        self.log.info(f"study {self.study_name}: {len(done)} finished trial(s) stored, running {remaining} more")
        best_dir = self.work / "tuned"

        def objective(trial):
            hp = suggest(trial, space, self.cfg.training, with_number_shapes=self.cfg.task == "ner",
                         with_class_weights=self.adapter.uses_labels)
            trial_dir = self.work / f"trial-{trial.number}"
            info = self.train_variant(f"trial {trial.number}", self.tune_base, hp, trial_dir, trial=trial)
            trial.set_user_attr("loss_history", info["fit"]["loss_history"])
            trial.set_user_attr("eval_history", info["fit"]["eval_history"])
            trial.set_user_attr("examples_per_second", info["fit"]["examples_per_second"])
            value = info["validation"][self.adapter.primary]
            current = self.finished(best_dir)
            if not info["fit"]["pruned"] and (current is None or value > current["validation"][self.adapter.primary]):
                shutil.rmtree(best_dir, ignore_errors=True)
                trial_dir.rename(best_dir)
                self._live[best_dir] = self._live.pop(trial_dir)
            else:
                shutil.rmtree(trial_dir, ignore_errors=True)
                self._live.pop(trial_dir, None)
            save()
            if info["fit"]["pruned"]:
                raise optuna.TrialPruned()
            return value

        if remaining:
            study.optimize(objective, n_trials=remaining, catch=(), gc_after_trial=True)
        save()
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            return study, None
        best = study.best_trial
        current = self.finished(best_dir)
        if current is None or current.get("trial") != best.number:
            # the best trial's model is not here (another machine ran it, or the run died): retrain it
            self.log.info(f"retraining the best trial {best.number} with {best.params}")
            hp = dataclasses.replace(self.cfg.training, **{k: v for k, v in best.params.items()})
            current = self.train_variant(f"trial {best.number}", self.tune_base, hp, best_dir)
            current["trial"] = best.number
            write_json(best_dir / "result.json", current)
        return study, current

    # ---------------------------------------------------------------------------------- all of it

    def run(self) -> dict:
        task, log = self.cfg.task, self.log
        if self.checkpoints.is_published(self.version):
            log.info(f"{task}: checkpoint {self.version} already published for these inputs; pointing LATEST at it")
            self.checkpoints.republish(self.version)
            return summary(self.checkpoints.version_uri(self.version), self.checkpoints.read_manifest(self.version), True)
        self.work.mkdir(parents=True, exist_ok=True)
        log.info(f"{task}: {', '.join(f'{s} {len(d)} rows / {len(self.companies[s])} companies' for s, d in self.frames.items())}")
        rows: list[dict] = []
        results: dict[str, dict] = {}

        start = time.perf_counter()
        evaluate = {s: self.frames[s] for s in ("validation", "test")}
        for variant, per_split in self.adapter.baselines(self.frames["train"], evaluate).items():
            for split, predictions in per_split.items():
                rows += _rows(task, variant, split, self.adapter.score(self.frames[split], predictions))
            results[variant] = {"predictions": per_split["test"]}
        log.info(f"{task}: baselines in {time.perf_counter() - start:.1f}s")

        plan = [("fine_tuned", self.generic, self.cfg.training), ("fine_tuned_domain", self.domain, self.cfg.training)]
        for variant, base, hp in plan:
            if base is None:
                log.warning(f"{task}: {variant} skipped (domain_base=none)")
                continue
            out = self.work / variant
            info = self.finished(out) or self.train_variant(variant, base, hp, out)
            results[variant] = {**info, **self.test_variant(out)}
        study, tuned = (None, None)
        if self.cfg.hpo.trials > 0:
            study, tuned = self.tune()
            if tuned is not None:
                results["tuned"] = {**tuned, **self.test_variant(self.work / "tuned")}
        for variant in NEURAL_VARIANTS:
            if variant in results:
                rows += _rows(task, variant, "validation", results[variant]["validation"])
                rows += _rows(task, variant, "test", results[variant]["test"])

        primary = self.adapter.primary
        published = max((v for v in NEURAL_VARIANTS if v in results), key=lambda v: results[v]["validation"][primary])
        final = self.work / "final"
        shutil.rmtree(final, ignore_errors=True)
        shutil.copytree(self.work / published / "model", final)

        industry = {}
        if task == "classification":
            industry = self._industry(final, rows)
        self._pictures(final, results, published, study)
        manifest = self._manifest(rows, results, published, study, industry)
        write_json(final / MANIFEST, manifest)
        uri = self.checkpoints.publish(final, self.version).uri
        log.info(f"{task}: published {published} as {uri}")
        shutil.rmtree(self.work, ignore_errors=True)
        return summary(uri, manifest, False)

    def _industry(self, final: Path, rows: list[dict]) -> dict:
        frames = {s: industry_rows(self.full[s]) for s in data.SPLITS}
        variants, mlp = industry_variants(frames, seed=self.cfg.training.seed)
        if mlp is None:
            self.log.warning("classification: filing_industry skipped: fewer than two industries among training filings")
            return {"skipped": "fewer than two industries among the training filings"}
        for variant, per_split in variants.items():
            for split, predictions in per_split.items():
                rows += _rows("filing_industry", variant, split, label_metrics(list(frames[split]["label"]), predictions))
        np.savez(final / INDUSTRY_WEIGHTS, **mlp["arrays"])
        write_json(final / "industry.json", {"labels": mlp["labels"], "dim": mlp["dim"], "weights": INDUSTRY_WEIGHTS})
        return {"filings": {s: int(len(d)) for s, d in frames.items()}, "labels": mlp["labels"], "dim": mlp["dim"]}

    def _pictures(self, final: Path, results: dict, published: str, study) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        primary = self.adapter.primary
        test = self.frames["test"]
        self.adapter.picture(test, results[published]["predictions"], final / PICTURES["evaluation"],
                             f"{self.cfg.task} test companies, {published}")
        names = [v for v in results if "predictions" in results[v]]
        values = [self.adapter.score(test, results[v]["predictions"])[primary] for v in names]
        fig, ax = plt.subplots(figsize=(6.4, 0.4 * len(names) + 1.5))
        ax.barh(names[::-1], values[::-1])
        ax.set_xlabel(f"test {primary}")
        ax.set_title(f"{self.cfg.task}: variants on the test companies")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(final / PICTURES["variants"], dpi=90)
        plt.close(fig)

        fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
        for v in NEURAL_VARIANTS:
            if v in results:
                fit_info = results[v]["fit"]
                if fit_info["loss_history"]:
                    loss_ax.plot(*zip(*fit_info["loss_history"]), marker=".", label=v)
                if fit_info["eval_history"]:
                    val_ax.plot(*zip(*fit_info["eval_history"]), marker="o", label=v)
        loss_ax.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
        val_ax.set(xlabel="epoch", ylabel=f"validation {primary}", title="validation after each epoch")
        for ax in (loss_ax, val_ax):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(final / PICTURES["learning_curves"], dpi=90)
        plt.close(fig)
        if study is not None:
            plot_study(study, final / PICTURES["optimisation_history"], final / PICTURES["parameter_importances"], primary)

    def _manifest(self, rows, results, published, study, industry) -> dict:
        import optuna

        trials = []
        if study is not None:
            for t in study.trials:
                trials.append({"number": t.number, "state": t.state.name, "value": t.value, "params": t.params})
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": "document-understanding",
            "task": self.cfg.task,
            "version": self.version,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "auto_class": AUTO_CLASSES[self.cfg.task],
            "published_variant": published,
            "selection": f"the neural variant with the best validation {self.adapter.primary}",
            "base": {"generic": str(self.generic), "domain": str(self.domain) if self.domain else None,
                     "seq2seq": self.seq2seq, "tune_from": self.cfg.tune_from},
            "training_data": {"dataset_uri": self.cfg.dataset_uri, "dataset_sha256": self.dataset_sha,
                              "data_versions": self.cfg.data_versions,
                              "rows": {s: int(len(d)) for s, d in self.frames.items()},
                              "rows_before_subsetting": {s: int(len(self.adapter.prepare(d))) for s, d in self.full.items()},
                              "companies": self.companies, "labels": self.labels},
            "metrics": rows,
            "variants": {v: {k: results[v].get(k) for k in ("hyperparameters", "validation", "test", "train_features", "trial")}
                         for v in NEURAL_VARIANTS if v in results},
            "throughput": {v: {"train_examples_per_second": results[v]["fit"]["examples_per_second"],
                               "train_seconds": results[v]["fit"]["seconds"],
                               "inference_examples_per_second": results[v]["inference_examples_per_second"]}
                           for v in NEURAL_VARIANTS if v in results},
            "study": None if study is None else {
                "name": study.study_name, "sampler": "TPESampler", "pruner": "MedianPruner", "trials": trials,
                "best_params": study.best_trial.params if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) else None,
                "objective": f"validation {self.adapter.primary}"},
            "industry": industry,
            "pictures": PICTURES,
            "code_version": code_version(),
            "environment": environment_info(None),
        }


def summary(uri: str, manifest: dict, reused: bool) -> dict:
    return {"checkpoint_uri": uri, "version": manifest["version"], "task": manifest["task"],
            "published_variant": manifest["published_variant"], "metrics": manifest["metrics"], "reused": reused,
            "manifest": manifest}


def metrics_markdown(rows: Sequence[dict], split: str = "test") -> str:
    """A task x variant table of the test figures."""
    import pandas as pd

    df = pd.DataFrame([r for r in rows if r["split"] == split])
    if df.empty:
        return "no metrics"
    table = df.pivot_table(index=["task", "metric"], columns="variant", values="value", aggfunc="first")
    cols = list(table.columns)
    lines = ["| task | metric | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for (task, metric), row in table.iterrows():
        lines.append(f"| {task} | {metric} | " + " | ".join("" if pd.isna(row[c]) else f"{row[c]:.4g}" for c in cols) + " |")
    return "\n".join(lines)


def train_task(cfg: UnderstandingConfig, logger=None) -> dict:
    return TaskRun(cfg, logger).run()


def main(argv: Sequence[str] | None = None) -> int:
    quiet_libraries()
    with entry_point_session(__doc__.splitlines()[0], argv) as (raw, reporter):
        cfg = UnderstandingConfig.from_mapping(raw)
        result = train_task(cfg, logger=reporter.log)
        manifest = result["manifest"]
        uri = result["checkpoint_uri"]
        reporter.report({
            "checkpoint_uri": {"raw_value": uri, "type": "url" if uri.startswith("s3://") else "path"},
            "version": result["version"],
            "published_variant": result["published_variant"],
            "reused_published_checkpoint": bool(result["reused"]),
            "test_metrics": {"raw_value": metrics_markdown(result["metrics"]), "type": "md"},
            "metrics": result["metrics"],
            "rows": manifest["training_data"]["rows"],
            "companies": manifest["training_data"]["companies"],
            "throughput": manifest["throughput"],
            "study": manifest["study"] or {},
            "auto_class": manifest["auto_class"],
        }, data_version=result["version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
