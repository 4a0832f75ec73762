"""Base models: tokenizer/model mismatches named, sources resolved (directories, URIs, checkpoint roots)."""

from __future__ import annotations

import pytest

from finsec_assets.ml import training as tc

from .helpers import tiny_gptj


def test_tokenizer_model_mismatch_is_named():
    from types import SimpleNamespace

    config = SimpleNamespace(vocab_size=100, pad_token_id=0, bos_token_id=1, eos_token_id=[2, 3], n_positions=64)

    class Tok:
        def __init__(self, n, **ids):
            self.n = n
            self.__dict__.update(ids)

        def __len__(self):
            return self.n

    tc.check_tokenizer_matches_model(Tok(100, pad_token_id=0, bos_token_id=1, eos_token_id=3), config, "m", 64)
    with pytest.raises(tc.TrainingInputError, match="120 tokens but the model's embedding has 100 rows"):
        tc.check_tokenizer_matches_model(Tok(120), config, "m")
    with pytest.raises(tc.TrainingInputError, match="pad_token_id is 5 in the tokenizer and 0 in the model"):
        tc.check_tokenizer_matches_model(Tok(90, pad_token_id=5), config, "m")
    with pytest.raises(tc.TrainingInputError, match="seq_len=128 exceeds the 64 positions"):
        tc.check_tokenizer_matches_model(Tok(90), config, "m", 128)


def test_resolve_model_source_errors_and_checkpoint_roots(tmp_path):
    with pytest.raises(tc.TrainingInputError, match="base model path .*missing.* does not exist"):
        tc.resolve_model_source(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(tc.TrainingInputError, match="holds no config.json"):
        tc.resolve_model_source(str(tmp_path / "empty"))
    model = tmp_path / "model"
    tiny_gptj().save_pretrained(model)
    assert tc.resolve_model_source(f"file://{model}") == model
    store = tc.CheckpointStore(str(tmp_path / "root"))
    store.publish(model, "v1")
    resolved = tc.resolve_model_source(str(tmp_path / "root"))
    assert resolved.parent == tmp_path / "root" / "versions" / "v1" and (resolved / "config.json").is_file()
