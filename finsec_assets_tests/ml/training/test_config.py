"""Run settings from mappings and --set overrides, with errors that name the setting."""

from __future__ import annotations

import pytest

from finsec_assets.ml import training as tc


def test_config_from_mapping_names_bad_settings():
    from finsec_assets.ml.clm_finetune import ClmFinetuneConfig

    cfg = ClmFinetuneConfig.from_mapping({"corpus_uri": "c.parquet", "cik": "104169",
                                          "training": {"max_steps": 3, "learning_rate": "0.01"}})
    assert cfg.cik == 104169 and cfg.training.max_steps == 3 and cfg.training.learning_rate == 0.01
    assert cfg.training.per_device_batch_size == 8  # untouched defaults survive a partial mapping
    with pytest.raises(tc.TrainingInputError, match=r"unknown setting\(s\) \['max_step'\]"):
        ClmFinetuneConfig.from_mapping({"corpus_uri": "c", "cik": 1, "training": {"max_step": 3}})
    with pytest.raises(tc.TrainingInputError, match=r"missing required setting\(s\) \['cik'\]"):
        ClmFinetuneConfig.from_mapping({"corpus_uri": "c"})
    with pytest.raises(tc.TrainingInputError, match="max_steps=0: must be at least 1"):
        ClmFinetuneConfig.from_mapping({"corpus_uri": "c", "cik": 1, "training": {"max_steps": 0}})
    assert tc.parse_overrides(["training.max_steps=5", "base=scratch", "items=[\"7\"]"]) == {
        "training": {"max_steps": 5}, "base": "scratch", "items": ["7"]}
