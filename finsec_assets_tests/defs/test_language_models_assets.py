"""pretrained_checkpoint and finetuned_checkpoint materialized the way the UI does: the real Pipes
subprocess, tiny models, two quarters of real filing text."""

import json

import dagster as dg
import pandas as pd
import pytest

from finsec_assets.defs.common import GPU_OP_TAGS, quarter_partitions
from finsec_assets.defs.language_models.assets import finetuned_checkpoint, pretrained_checkpoint
from finsec_assets.ml import training_common as tc
from finsec_assets.storage.object_store import ObjectStore
from finsec_assets.storage.lake import open_lake
from finsec_assets_tests.ml.lm_corpus import sample_sections

from .helpers import output_metadata, resources

UPSTREAM = [dg.AssetSpec("filing_sections", partitions_def=quarter_partitions)]
REQUIRED = {"checkpoint_uri", "perplexity_before", "perplexity_after", "tokens_seen", "tokens_per_second", "loss_curve"}
TINY_TRAINING = {"seq_len": 64, "max_steps": 2, "per_device_batch_size": 4, "save_steps": 10}


@pytest.fixture
def store(finsec_env):
    store = ObjectStore(str(finsec_env / "objects"))
    sections = sample_sections(2500)
    quarters = pd.to_datetime(sections["filing_date"]).dt.to_period("Q").dt.start_time.dt.strftime("%Y-%m-%d")
    for quarter, rows in sections.groupby(quarters):
        open_lake().replace_partition("filing_sections", quarter, rows.reset_index(drop=True))
    return store


def run(asset, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset, *UPSTREAM], selection=[asset], resources=resources(), raise_on_error=False,
                          run_config={"ops": {asset.op.name: {"config": config}}})


def failure_message(result) -> str:
    return "\n".join(str(e.event_specific_data.error.message) for e in result.all_events
                     if e.event_type_value == "STEP_FAILURE")


def test_both_checkpoints_through_pipes(store):
    for asset in (pretrained_checkpoint, finetuned_checkpoint):
        assert asset.op.pool == "gpu" and asset.op.tags["finsec/accelerator"] == GPU_OP_TAGS["finsec/accelerator"]

    scratch = {"vocab_size": 500, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
               "intermediate_size": 64}
    result = run(pretrained_checkpoint, base="scratch", max_eval_blocks=4, eval_fraction=0.3,
                 extra_settings=json.dumps({"scratch": scratch}), **TINY_TRAINING)
    assert result.success, failure_message(result)
    meta = output_metadata(result, "pretrained_checkpoint")
    assert REQUIRED <= set(meta) and meta["tokens_seen"] == 2 * 4 * 64 and meta["tokens_per_second"] > 0
    assert meta["loss_curve"].startswith("![loss curve](data:image/png;base64,")
    assert meta["checkpoint_uri"] == store.uri(f"checkpoints/pretrained_checkpoint/versions/{meta['version']}")
    manifest = json.loads(store.get_bytes(f"{meta['checkpoint_uri']}/manifest.json"))
    assert set(manifest["training_data"]["data_versions"]["filing_sections"]) == {"2023Q3", "2024Q1"}
    assert store.get_bytes("checkpoints/pretrained_checkpoint/LATEST").decode().strip() == meta["version"]
    assert store.is_complete_dir(meta["checkpoint_uri"])

    tiny_gptj = {"vocab_size": 400, "n_embd": 32, "n_layer": 1, "n_head": 2, "rotary_dim": 8, "n_positions": 128}
    result = run(finetuned_checkpoint, ticker="WMT", base_steps=2, max_eval_blocks=4, generation_max_length=20,
                 extra_settings=json.dumps({"scratch": tiny_gptj}), **TINY_TRAINING)
    assert result.success, failure_message(result)
    meta = output_metadata(result, "finetuned_checkpoint")
    assert REQUIRED <= set(meta) and meta["perplexity_before"] > 1 and meta["perplexity_after"] > 1
    assert meta["generations"].count("**") == 6 and "**We serve consumers through**" in meta["generations"]
    manifest = json.loads(store.get_bytes(f"{meta['checkpoint_uri']}/manifest.json"))
    assert manifest["company"] == {"cik": 104169, "ticker": "WMT"}
    assert tc.resolve_model_source(str(store.local_path("checkpoints/finetuned_checkpoint"))).name == meta["version"]


def test_bad_company_and_bad_base_fail_with_the_reason(store):
    result = run(finetuned_checkpoint, ticker="NOSUCHTICKER")
    assert not result.success and "ticker 'NOSUCHTICKER' is not in EDGAR's company_tickers.json" in failure_message(result)

    result = run(pretrained_checkpoint, base="/models/roberta-sec-missing", **TINY_TRAINING)
    assert not result.success
    assert ("finsec_assets.ml.mlm_pretrain: TrainingInputError: base model path '/models/roberta-sec-missing' "
            "does not exist") in failure_message(result)
    assert not store.exists("checkpoints/pretrained_checkpoint/LATEST")
