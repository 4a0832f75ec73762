"""The service reloads a document-understanding predictor when its checkpoint root's LATEST moves: a new
version, a republished older one; a publication that does not load leaves the loaded predictor serving."""

from __future__ import annotations

import time

import pytest


def _publish(root: str, work, version: str, labels: list[str], broken: bool = False) -> None:
    from finsec_assets.ml.training import CheckpointStore, minilm_path
    from finsec_assets.ml.understanding.tasks import TaskOptions, build_model

    options = TaskOptions(task="classification", labels=labels, max_length=64, stride=16)
    model, tokenizer = build_model("classification", minilm_path(), options)
    out = work / version
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    if not broken:
        options.save(out)  # without finsec_task.json the directory is no understanding checkpoint
    CheckpointStore(root).publish(out, version)


def test_service_reloads_understanding_predictors_on_a_new_publication(finsec_env, tmp_path, monkeypatch):
    from finsec_assets.serve import registry
    from finsec_assets.serve.app import Service
    from finsec_assets.serve.manager import ModelUnavailable
    from finsec_assets.settings import ServeSettings, Settings

    monkeypatch.setenv("FINSEC_SERVE_POLL_SECONDS", "0.1")
    settings = Settings.from_env()
    service = Service(settings, ServeSettings.from_env())
    with pytest.raises(ModelUnavailable, match="materialize classification_model"):
        service.predictor("classification")

    root = registry.object_store(settings).uri("checkpoints/classification_model")
    _publish(root, tmp_path, "v1", ["1A", "7"])
    time.sleep(0.15)
    first = service.predictor("classification")
    assert (first.version, first.labels) == ("v1", ["1A", "7"])
    assert service.predictor("classification") is first  # nothing new: the loaded one

    _publish(root, tmp_path, "v2", ["1", "1A", "7"])
    time.sleep(0.15)
    second = service.predictor("classification")
    assert second is not first and (second.version, second.labels) == ("v2", ["1", "1A", "7"])
    assert set(second.predict(["Risk factors that could affect our business."])[0]["probabilities"]) == {"1", "1A", "7"}

    from finsec_assets.ml.training import CheckpointStore

    CheckpointStore(root).republish("v1")  # a rerun with v1's inputs points LATEST back at it
    time.sleep(0.15)
    assert service.predictor("classification").version == "v1"

    _publish(root, tmp_path, "v3", ["x", "y"], broken=True)
    time.sleep(0.15)
    kept = service.predictor("classification")
    assert kept.version == "v1"  # the broken publication is not served; the loaded model keeps answering
