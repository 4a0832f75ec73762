"""MLM pretraining on real filing text at tiny sizes: the bundled MiniLM with a fresh head, a scratch
encoder, masking, interruption and resume, and inputs it must refuse."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from finsec_assets.ml import mlm_pretrain as mlm
from finsec_assets.ml import training as tc
from finsec_assets_tests.ml.lm_corpus import sample_sections

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY_SCRATCH = {"vocab_size": 600, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                "intermediate_size": 64}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return str(tc.write_corpus(sample_sections(3000), tmp_path_factory.mktemp("corpus") / "sections.parquet"))


def config(corpus, root, **overrides) -> mlm.MlmPretrainConfig:
    training = {"max_steps": 4, "per_device_batch_size": 4, "save_steps": 2, "logging_steps": 1,
                **overrides.pop("training", {})}
    raw = {"corpus_uri": corpus, "checkpoint_root": str(root), "seq_len": 64, "eval_fraction": 0.2,
           "max_eval_blocks": 8, "training": training, **overrides}
    return mlm.MlmPretrainConfig.from_mapping(raw)


def test_minilm_with_a_fresh_head_trains_publishes_and_loads_everywhere(corpus, tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    root = tmp_path / "ckpt"
    # 24 held-out blocks (240 masked tokens): with 8, one or two right guesses decided the "after" accuracy
    summary = mlm.pretrain_mlm(config(corpus, root, data_versions={"filing_sections": {"2024Q1": "abc"}}, max_eval_blocks=24,
                                      training={"max_steps": 2, "save_steps": 10, "learning_rate": 5e-4}))
    manifest = summary["manifest"]
    path = tc.resolve_model_source(str(root))
    assert summary["checkpoint_uri"] == f"file://{path}" and not summary["reused"]
    assert manifest["base"]["name"] == "all-MiniLM-L6-v2"
    assert "cls.predictions.transform.dense.weight" in manifest["base"]["fresh_parameters"]
    assert manifest["tokens_seen"] == summary["tokens_seen"] == 2 * 4 * 64
    assert manifest["training_data"]["data_versions"] == {"filing_sections": {"2024Q1": "abc"}}
    assert set(manifest["training_data"]["eval_filings"]).isdisjoint(manifest["training_data"]["train_filings"])
    assert manifest["hyperparameters"]["seq_len"] == 64 and manifest["code_version"] == tc.code_version()
    # the baseline is the head trained alone on the frozen encoder: far better than the fresh, random head
    # (which is worse than uniform over the 30,522 tokens), and it predicts some masked tokens outright
    metrics = manifest["metrics"]
    assert metrics["perplexity_fresh_head"] > 30522 > 2000 > summary["perplexity_before"] > 1
    assert metrics["masked_accuracy_fresh_head"] < 0.01 < 0.05 < metrics["masked_accuracy_before"] < 1
    assert metrics["head_warmup"]["steps"] == 60 and metrics["head_warmup"]["loss_last"] < metrics["head_warmup"]["loss_first"]
    assert 0 < metrics["masked_accuracy_after"] < 1 and summary["perplexity_after"] < 2000
    assert "encoder, frozen" in metrics["before"]
    assert (path / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"

    encoder = AutoModel.from_pretrained(str(path))
    assert type(encoder).__name__ == "BertModel"
    assert type(AutoModelForMaskedLM.from_pretrained(str(path))).__name__ == "BertForMaskedLM"
    assert len(AutoTokenizer.from_pretrained(str(path))) == encoder.config.vocab_size
    vectors = SentenceTransformer(str(path), device="cpu").encode(["Net sales increased 6%.", "Risk factors."])
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)

    # seeded: the same run into another root gives the same numbers
    twin = mlm.pretrain_mlm(config(corpus, tmp_path / "twin", max_eval_blocks=24, training={"max_steps": 2, "save_steps": 10,
                                                                         "learning_rate": 5e-4}))
    for key in ("perplexity_fresh_head", "perplexity_before", "masked_accuracy_before", "perplexity_after",
                "masked_accuracy_after"):
        assert twin["metrics"][key] == pytest.approx(metrics[key], rel=1e-4), key

    again = mlm.pretrain_mlm(config(corpus, root, max_eval_blocks=24,
                                    training={"max_steps": 2, "save_steps": 20, "learning_rate": 5e-4}))
    # same inputs (save_steps aside, which does not change the result): the published checkpoint is reused
    assert again["reused"] and again["version"] == summary["version"] and not (root / "runs" / summary["version"]).exists()


def test_masking_collator_draws_a_fixed_count_of_non_special_positions():
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tc.minilm_path()))
    blocks = tc.pack_token_blocks(tc.tokenize_documents(tok, ["Revenue grew in every segment. " * 40] * 4), 64,
                                  prefix=[tok.cls_token_id], suffix=[tok.sep_token_id], separator=[tok.sep_token_id])
    data = tc.TokenBlocks(blocks, tok.all_special_ids)
    batch = mlm.MaskingCollator.for_tokenizer(tok, 0.15, generator=torch.Generator().manual_seed(0))([data[i] for i in range(len(data))])
    k = round(0.15 * 64)
    assert batch["mlm_positions"].shape == batch["mlm_labels"].shape == (len(data), k)
    original = torch.from_numpy(blocks.astype(np.int64))
    assert torch.equal(batch["mlm_labels"], original.gather(1, batch["mlm_positions"]))
    assert not torch.isin(batch["mlm_labels"], torch.tensor(tok.all_special_ids)).any()
    unchanged = torch.ones_like(original, dtype=torch.bool).scatter(1, batch["mlm_positions"], False)
    assert torch.equal(batch["input_ids"][unchanged], original[unchanged])
    masked = (batch["input_ids"].gather(1, batch["mlm_positions"]) == tok.mask_token_id).float().mean()
    assert 0.6 < masked < 0.95
    again = mlm.MaskingCollator.for_tokenizer(tok, 0.15, generator=torch.Generator().manual_seed(0))([data[i] for i in range(len(data))])
    assert torch.equal(again["input_ids"], batch["input_ids"])  # seeded masks: before/after see the same ones


def test_masked_position_loss_equals_the_library_head_at_those_positions():
    import torch
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(str(tc.minilm_path())).eval()
    ids = torch.randint(1000, 2000, (2, 32))
    mask = torch.ones_like(ids)
    positions = torch.tensor([[1, 5, 9], [2, 3, 30]])
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask).logits
        sparse = mlm.masked_position_logits(model, ids, mask, positions)
        mlm.use_masked_position_loss(model)
        labels = ids.gather(1, positions)
        loss = model(input_ids=ids, attention_mask=mask, mlm_positions=positions, mlm_labels=labels).loss
        plain = model(input_ids=ids, attention_mask=mask).logits  # without positions: the library forward
    expected = full.gather(1, positions[..., None].expand(-1, -1, full.size(-1)))
    assert torch.allclose(sparse, expected, atol=1e-4) and torch.allclose(plain, full)
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(expected.flatten(0, 1), labels.flatten())),
                                        rel=1e-5)


def test_scratch_encoder_resumes_after_a_crash_and_the_previous_checkpoint_stays_latest(corpus, tmp_path):
    from transformers import AutoModel, AutoTokenizer, TrainerCallback

    class CrashAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("simulated crash after step 3")

    root = tmp_path / "ckpt"
    first = mlm.pretrain_mlm(config(corpus, root, base="scratch", scratch=TINY_SCRATCH, training={"max_steps": 2}))
    cfg = config(corpus, root, base="scratch", scratch=TINY_SCRATCH, training={"max_steps": 6})
    with pytest.raises(RuntimeError, match="simulated crash"):
        mlm.pretrain_mlm(cfg, callbacks=[CrashAtStep3()])
    assert tc.CheckpointStore(str(root)).latest() == first["version"]  # the half-done run published nothing
    resumed = mlm.pretrain_mlm(cfg)
    stage = resumed["manifest"]["stages"]["mlm"]
    assert stage["resumed_from_step"] == 2 and stage["global_step"] == 6
    assert tc.CheckpointStore(str(root)).latest() == resumed["version"] != first["version"]
    path = tc.resolve_model_source(str(root))
    assert AutoModel.from_pretrained(str(path)).config.hidden_size == 32
    tok = AutoTokenizer.from_pretrained(str(path))
    assert len(tok) <= 600 and tok.mask_token == "[MASK]" and tok("Net sales")["input_ids"][0] == tok.cls_token_id
    assert not (path / "modules.json").exists()  # scratch: plain encoder directory, mean pooling downstream


def test_bad_inputs_are_named(corpus, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    with pytest.raises(tc.TrainingInputError, match="base model path .*nowhere.* does not exist"):
        mlm.pretrain_mlm(config(corpus, tmp_path / "a", base=str(tmp_path / "nowhere")))

    small = tmp_path / "small-vocab"
    BertForMaskedLM(BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(small)
    AutoTokenizer.from_pretrained(str(tc.minilm_path())).save_pretrained(small)
    with pytest.raises(tc.TrainingInputError, match="do not match: the tokenizer has 30522 tokens but the model's embedding has 500"):
        mlm.pretrain_mlm(config(corpus, tmp_path / "b", base=str(small)))

    truncated = tmp_path / "truncated"
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(truncated)
    cfg_json = json.loads((truncated / "config.json").read_text())
    (truncated / "config.json").write_text(json.dumps({**cfg_json, "num_hidden_layers": 2}))
    shutil.copy(tc.minilm_path() / "tokenizer.json", truncated)
    shutil.copy(tc.minilm_path() / "tokenizer_config.json", truncated)
    with pytest.raises(tc.TrainingInputError, match=r"lacks encoder weights \['bert.encoder.layer.1"):
        mlm.pretrain_mlm(config(corpus, tmp_path / "c", base=str(truncated)))

    with pytest.raises(tc.TrainingInputError, match="too little text to train"):
        mlm.pretrain_mlm(config(corpus, tmp_path / "d", base="scratch", scratch=TINY_SCRATCH, items=["1A"],
                                training={"per_device_batch_size": 512}))
    with pytest.raises(tc.TrainingInputError, match=r"no non-empty sections for items \['99'\]"):
        mlm.pretrain_mlm(config(corpus, tmp_path / "e", items=["99"]))
    for path in ("a", "b", "c", "d", "e"):
        assert not (tmp_path / path / "LATEST").exists()
