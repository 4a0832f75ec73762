"""Train tiny models on the sample-cut datasets: the published checkpoints, the predictors, the company split,
and the Optuna study's resume. Sizes are minimal (a few optimizer steps), so scores are not asserted."""

import json

import numpy as np
import pandas as pd
import pytest

from finsec_assets.ml.training import CheckpointStore, TrainingInputError
from finsec_assets.ml.understanding import load_predictor, metrics
from finsec_assets.ml.understanding.train import TaskRun, UnderstandingConfig, train_task
from finsec_assets_tests.ml.understanding import frames

TINY = {"max_length": 32, "max_train_examples": 16, "max_validation_examples": 6, "max_test_examples": 8,
        "domain_base": "none", "training": {"epochs": 1, "batch_size": 8}, "hpo": {"trials": 0}}


def _config(task, tmp_path, **extra):
    uri = frames.write_frame(task, tmp_path)
    raw = {**TINY, "task": task, "dataset_uri": str(uri), "checkpoint_root": str(tmp_path / "checkpoints" / task),
           "work_dir": str(tmp_path / "work"), **extra}
    return UnderstandingConfig.from_mapping(raw)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FINSEC_HOME", str(tmp_path / "home"))


def _auto_loads(task, uri):
    import transformers

    from finsec_assets.ml.training import resolve_model_source
    from finsec_assets.ml.understanding.tasks import AUTO_CLASSES

    model = getattr(transformers, AUTO_CLASSES[task]).from_pretrained(str(resolve_model_source(uri)))
    assert model is not None


def test_classification_end_to_end_predictor_matches_reported_test_figure(tmp_path):
    cfg = _config("classification", tmp_path, hpo={"trials": 1, "max_epochs": 1, "batch_sizes": [8]})
    result = train_task(cfg)
    manifest = result["manifest"]
    uri = result["checkpoint_uri"]
    _auto_loads("classification", uri)

    # test companies were never trained on, and every reported row is on validation or test
    companies = manifest["training_data"]["companies"]
    assert set(companies["test"]).isdisjoint(companies["train"]) and set(companies["test"]).isdisjoint(companies["validation"])
    rows = pd.DataFrame(manifest["metrics"])
    assert set(rows["split"]) == {"validation", "test"}
    assert {"baseline", "majority", "fine_tuned", "tuned"} <= set(rows["variant"])
    assert {"classification", "filing_industry"} <= set(rows["task"])
    assert set(rows[rows.task == "filing_industry"]["variant"]) == {"baseline", "majority", "mlp"}

    # the predictor on the held-out companies' paragraphs gives the figure the manifest reports
    run = TaskRun(cfg)
    test = run.frames["test"]
    predictor = load_predictor("classification", uri)
    out = predictor.predict(list(test["text"]))
    assert all(set(o["probabilities"]) == set(predictor.labels) and o["label"] in predictor.labels for o in out)
    assert all(abs(sum(o["probabilities"].values()) - 1) < 1e-3 for o in out)
    figure = metrics.label_metrics(list(test["label"]), [o["label"] for o in out])["macro_f1"]
    published = manifest["published_variant"]
    reported = rows[(rows.task == "classification") & (rows.variant == published) & (rows.split == "test")
                    & (rows.metric == "macro_f1")]["value"].item()
    assert figure == pytest.approx(reported, abs=1e-6)

    industry = load_predictor("filing_industry", uri)
    vec = np.zeros(16, dtype=np.float32)
    assert industry.predict([vec])[0]["label"] in industry.labels
    with pytest.raises(ValueError, match=r"inputs\[0\] must be a finite vector of length 16"):
        industry.predict([np.zeros(3)])
    with pytest.raises(ValueError, match=r"inputs\[1\] must be a string"):
        predictor.predict(["ok", 3])
    with pytest.raises(ValueError, match="inputs must be a list"):
        predictor.predict("a bare string")

    # the same inputs again: the published version is reused, nothing retrained
    again = train_task(cfg)
    assert again["reused"] and again["version"] == result["version"]


def test_study_resumes_instead_of_restarting(tmp_path):
    import optuna

    cfg = _config("relation", tmp_path, hpo={"trials": 1, "max_epochs": 1, "batch_sizes": [8]})
    first = train_task(cfg)
    study_name = first["manifest"]["study"]["name"]
    storage = f"sqlite:///{tmp_path / 'checkpoints' / 'relation' / 'studies.sqlite3'}"
    assert len(optuna.load_study(study_name=study_name, storage=storage).trials) == 1

    more = _config("relation", tmp_path, hpo={"trials": 2, "max_epochs": 1, "batch_sizes": [8]})
    second = train_task(more)
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert second["manifest"]["study"]["name"] == study_name
    assert [t.number for t in study.trials] == [0, 1]  # one new trial, the first one kept
    assert second["version"] != first["version"]  # more trials: a new checkpoint version
    assert CheckpointStore(str(tmp_path / "checkpoints" / "relation")).latest() == second["version"]

    predictor = load_predictor("relation", second["checkpoint_uri"])
    text = "Revenue was $5.2 billion in 2023 and $4.9 billion in 2022."
    out = predictor.predict([{"text": text, "head_start": 13, "head_end": 16, "tail_start": 27, "tail_end": 31}])
    assert out[0]["label"] in {"period_of", "no_relation"}
    with pytest.raises(ValueError, match=r"inputs\[0\]: head_start=5, head_end=2 is not a span"):
        predictor.predict([{"text": text, "head_start": 5, "head_end": 2, "tail_start": 27, "tail_end": 31}])


def test_ner_predictor_gives_character_offsets(tmp_path):
    result = train_task(_config("ner", tmp_path, training={"epochs": 1, "batch_size": 8, "number_shapes": True}))
    _auto_loads("ner", result["checkpoint_uri"])
    predictor = load_predictor("ner", result["checkpoint_uri"])
    long_text = "Net sales were $648.1 billion, up 6.0%. " * 40  # far beyond one 32-token window
    out = predictor.predict([long_text, ""])
    assert out[1] == []
    with pytest.raises(ValueError, match=r"inputs\[1\] must be a string, got NoneType"):
        predictor.predict(["fine", None])
    for entity in out[0]:
        assert long_text[entity["start"]:entity["end"]] == entity["text"] and 0 <= entity["score"] <= 1
    ner_store = CheckpointStore(str(tmp_path / "checkpoints" / "ner"))
    options = json.loads(ner_store.store.local_path(
        f"{ner_store.publication_dir(result['version'])}/finsec_task.json").read_text())
    assert options["number_shapes"] is True and options["shape_tokens"]


def test_qa_predictor_windows_long_contexts(tmp_path):
    result = train_task(_config("qa", tmp_path, max_length=48, stride=12))
    _auto_loads("qa", result["checkpoint_uri"])
    predictor = load_predictor("qa", result["checkpoint_uri"])
    context = "The company reported results. " * 30 + "Operating income was $27.0 billion."
    (answer,) = predictor.predict([{"question": "What was operating income?", "context": context}])
    assert set(answer) == {"answer", "start", "end", "score"}
    assert answer["answer"] == "" or context[answer["start"]:answer["end"]] == answer["answer"]
    with pytest.raises(ValueError, match=r"inputs\[0\] must be a mapping with string 'question' and 'context'"):
        predictor.predict([{"question": "x"}])


def test_summarization_warm_started_encoder_decoder(tmp_path):
    result = train_task(_config("summarization", tmp_path, max_length=48, max_target_length=8,
                                max_train_examples=8, max_test_examples=4, max_validation_examples=2))
    _auto_loads("summarization", result["checkpoint_uri"])
    predictor = load_predictor("summarization", result["checkpoint_uri"])
    out = predictor.predict(["Our business may be harmed by competition. " * 20, "  "])
    assert isinstance(out[0], str) and out[1] == ""
    with pytest.raises(ValueError, match="inputs must be a list of documents, got str"):
        predictor.predict("one bare document")
    rows = pd.DataFrame(result["metrics"])
    assert {"rouge1", "rouge2", "rougeL"} <= set(rows["metric"]) and {"baseline", "baseline_jaccard"} <= set(rows["variant"])


def test_bad_config_and_missing_domain_checkpoint_are_named(tmp_path):
    with pytest.raises(TrainingInputError, match="config.task='pos'"):
        UnderstandingConfig.from_mapping({"task": "pos", "dataset_uri": "x"})
    cfg = _config("relation", tmp_path, domain_base=str(tmp_path / "nothing-here"))
    with pytest.raises(TrainingInputError, match="fine_tuned_domain needs the domain encoder"):
        TaskRun(cfg)
    with pytest.raises(ValueError, match="task 'pos'"):
        load_predictor("pos")
    with pytest.raises(ValueError, match="no ner model at"):
        load_predictor("ner", str(tmp_path / "none"))


def test_classifier_on_a_new_company_scores_close_to_its_reported_test_figure(tmp_path):
    """Train enough to learn (a few hundred paragraph passes), then run the published predictor on the 10-Ks of
    two companies that are in no split (TSLA, GE): their accuracy must be within a binomial tolerance of the
    test figure the manifest reports, and both well above the majority class, so that "close" is not two
    chance-level numbers agreeing."""
    cfg = _config("classification", tmp_path, max_length=48, stride=8, max_windows=1, max_train_examples=64,
                  max_validation_examples=12, max_test_examples=0,
                  training={"epochs": 4, "batch_size": 8, "learning_rate": 3e-4})
    result = train_task(cfg)
    rows = pd.DataFrame(result["manifest"]["metrics"])
    published = result["manifest"]["published_variant"]
    reported = rows[(rows.task == "classification") & (rows.variant == published) & (rows.split == "test")]
    reported = dict(zip(reported["metric"], reported["value"]))
    test_rows = result["manifest"]["training_data"]["rows"]["test"]

    new = frames.item_paragraphs()
    seen = {c for cs in result["manifest"]["training_data"]["companies"].values() for c in cs}
    assert seen.isdisjoint(set(new["cik"])), "the new companies must be in no split"
    out = load_predictor("classification", result["checkpoint_uri"]).predict(list(new["text"]))
    figure = metrics.label_metrics(list(new["label"]), [o["label"] for o in out])

    majority = new["label"].value_counts(normalize=True).max()
    assert reported["accuracy"] > majority + 0.15 and figure["accuracy"] > majority + 0.15, (reported, figure, majority)
    p = (reported["accuracy"] + figure["accuracy"]) / 2
    tolerance = max(0.1, 3 * np.sqrt(p * (1 - p) * (1 / len(new) + 1 / test_rows)))
    assert abs(figure["accuracy"] - reported["accuracy"]) <= tolerance, (figure, reported, tolerance)


def test_class_weights_lift_the_rare_labels():
    from finsec_assets.ml.understanding.neural import class_weights

    features = [{"labels": [0] * 49 + [1, -100]}, {"labels": [0] * 49 + [2]}]  # 98% O, two rare tags
    w = class_weights(features, 4, 0.5)
    assert w[1] == pytest.approx(w[2]) and w[1] / w[0] == pytest.approx(98 ** 0.5)  # (0.98 / 0.01) ** 0.5
    assert (98 * w[0] + w[1] + w[2]) / 100 == pytest.approx(1.0) and w[3] == 1.0  # mean 1; unseen label 1
    assert class_weights(features, 4, 0.0) is None
    assert class_weights([{"labels": 1}, {"labels": 0}, {"labels": 0}, {"labels": 0}], 2, 1.0)[1] == pytest.approx(2.0)


def test_ner_fits_its_own_training_sentences(tmp_path):
    """The demo-size failure mode: an NER head that predicts O everywhere (98% of the tokens) scores 0 even on
    the sentences it trained on. With the class-weighted loss it must fit them."""
    from pathlib import Path

    cfg = _config("ner", tmp_path, max_train_examples=16, training={"epochs": 8, "batch_size": 4, "learning_rate": 3e-4})
    run = TaskRun(cfg)
    run.train_variant("fit-check", run.generic, cfg.training, Path(tmp_path) / "fit-check")
    model, tokenizer, options = run._live[Path(tmp_path) / "fit-check"]
    fit = run.evaluate(model, tokenizer, options, "train")[0]
    assert fit["micro_f1"] >= 0.5, fit


def test_study_pictures_history_and_importances(tmp_path):
    import optuna

    from finsec_assets.ml.understanding.neural import plot_study

    def study_with(values):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
        for v in values:
            study.optimize(lambda t, v=v: v + 0 * t.suggest_float("learning_rate", 1e-5, 1e-3, log=True)
                           + 0 * t.suggest_int("epochs", 1, 3), n_trials=1)
        return study

    for name, values in (("distinct", [0.1, 0.3, 0.2, 0.5]), ("equal", [0.0, 0.0])):
        history, importances = tmp_path / f"{name}-history.png", tmp_path / f"{name}-importances.png"
        plot_study(study_with(values), history, importances, "micro_f1")
        assert history.read_bytes()[:4] == b"\x89PNG" and importances.read_bytes()[:4] == b"\x89PNG"


def test_summarizer_fits_its_own_training_pairs(tmp_path):
    """Generation end to end: a warm-started encoder-decoder trained on a few (body, heading) pairs must give
    non-empty summaries that overlap the headings it saw (ROUGE-L on its own training rows)."""
    from pathlib import Path

    cfg = _config("summarization", tmp_path, max_length=32, max_target_length=16, max_windows=1, max_train_examples=4,
                  training={"epochs": 30, "batch_size": 4, "learning_rate": 1e-3, "warmup_ratio": 0.0})
    run = TaskRun(cfg)
    run.train_variant("fit-check", run.generic, cfg.training, Path(tmp_path) / "fit-check")
    model, tokenizer, options = run._live[Path(tmp_path) / "fit-check"]
    scores, predictions, _ = run.evaluate(model, tokenizer, options, "train")
    assert all(p.strip() for p in predictions), predictions
    assert scores["rougeL"] >= 0.3, (scores, predictions, list(run.frames["train"]["summary"]))
