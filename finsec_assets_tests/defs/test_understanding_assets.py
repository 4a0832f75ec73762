"""The five *_model assets and understanding_metrics materialized the way the UI does: the real Pipes
subprocess, tiny models, datasets cut from the bundled sample's real 10-Ks (stored like the dataset assets)."""

import json

import dagster as dg
import pytest

from finsec_assets.defs.common import GPU_OP_TAGS
from finsec_assets.defs.understanding import models
from finsec_assets.storage.object_store import ObjectStore
from finsec_assets.storage.lake import open_lake
from finsec_assets_tests.ml.understanding import frames

from .helpers import output_metadata, resources

DATASETS = [dg.AssetSpec(f"{task}_dataset") for task in frames.FRAMES]
TINY = {"max_length": 32, "stride": 8, "max_train_examples": 12, "max_validation_examples": 4, "max_test_examples": 6,
        "max_target_length": 8, "training": {"epochs": 1, "batch_size": 8}, "hpo": {"batch_sizes": [8], "max_epochs": 1}}


@pytest.fixture
def store(finsec_env):
    store = ObjectStore(str(finsec_env / "objects"))
    lake = open_lake()
    for task, build in frames.FRAMES.items():
        lake.replace_table(f"{task}_dataset", build())
    return store


def _config(**fields):
    return {"config": {"domain_base": "none", "hpo_trials": 1, "extra_settings": json.dumps(TINY), **fields}}


def failure_message(result) -> str:
    return "\n".join(str(e.event_specific_data.error.message) for e in result.all_events
                     if e.event_type_value == "STEP_FAILURE")


def test_models_and_metrics_through_pipes(store):
    for asset in models.MODEL_ASSETS:
        assert asset.op.pool == "gpu" and asset.op.tags["finsec/accelerator"] == GPU_OP_TAGS["finsec/accelerator"]
        assert asset.group_names_by_key[asset.key] == "understanding"
    assets = [*models.MODEL_ASSETS, models.understanding_metrics, *DATASETS, dg.AssetSpec("pretrained_checkpoint")]
    run_config = {"ops": {a.op.name: _config() for a in models.MODEL_ASSETS}}
    result = dg.materialize(assets, selection=[*models.MODEL_ASSETS, models.understanding_metrics],
                            resources=resources(), raise_on_error=False, run_config=run_config)
    assert result.success, failure_message(result)

    meta = output_metadata(result, "ner_model")
    assert meta["checkpoint_uri"].startswith(store.uri(f"checkpoints/ner_model/versions/{meta['version']}") + "/")
    for picture in ("evaluation", "learning_curves", "optimisation_history", "parameter_importances", "variants"):
        assert meta[picture].startswith("![")
    assert meta["auto_class"] == "AutoModelForTokenClassification"
    companies = meta["companies"]
    assert set(companies["test"]).isdisjoint(set(companies["train"]) | set(companies["validation"]))

    metrics_meta = output_metadata(result, "understanding_metrics")
    assert metrics_meta["dagster/row_count"] > 0
    table = open_lake().read_partition("understanding_metrics", None)
    assert list(table.columns) == models.METRIC_COLUMNS
    assert set(table["task"]) == {"ner", "qa", "relation", "classification", "filing_industry", "summarization"}
    test = table[table["split"] == "test"]
    assert {"baseline", "fine_tuned", "tuned"} <= set(test["variant"])
    assert {"micro_f1", "macro_f1", "exact", "f1", "accuracy", "rouge1", "rouge2", "rougeL"} <= set(test["metric"])


def test_missing_domain_checkpoint_fails_with_the_reason(store):
    assets = [models.relation_model, *DATASETS, dg.AssetSpec("pretrained_checkpoint")]
    result = dg.materialize(assets, selection=[models.relation_model], resources=resources(), raise_on_error=False,
                            run_config={"ops": {"relation_model": _config(domain_base="")}})
    assert not result.success
    message = failure_message(result)
    assert "fine_tuned_domain needs the domain encoder" in message and "materialize pretrained_checkpoint first" in message
