"""Shared training machinery: packing, splits, corpus files, model checks, publishing (local and S3),
resume after an interruption, the DeepSpeed choice and the launch command."""

from __future__ import annotations

import json
import math
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from finsec_assets.ml import training_common as tc
from finsec_assets.storage import object_store


# -- packing and splits -----------------------------------------------------------------------------

def test_pack_token_blocks_fills_every_row_and_keeps_document_order():
    docs = [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11]]
    blocks = tc.pack_token_blocks(docs, 6, prefix=[100], suffix=[101], separator=[0])
    # stream 1 2 3 0 4 5 0 6 7 8 9 10 11 0 -> bodies of 4, the tail (11 0) dropped
    assert blocks.tolist() == [[100, 1, 2, 3, 0, 101], [100, 4, 5, 0, 6, 101], [100, 7, 8, 9, 10, 101]]
    assert blocks.dtype == np.int32
    assert tc.pack_token_blocks(docs, 6, prefix=[100], suffix=[101], separator=[0], max_blocks=2).shape == (2, 6)
    assert tc.pack_token_blocks([[1, 2]], 4).shape == (0, 4)  # not one full block
    with pytest.raises(tc.TrainingInputError, match="no room"):
        tc.pack_token_blocks(docs, 2, prefix=[1], suffix=[2])


def test_split_by_filing_is_disjoint_stable_and_refuses_a_single_filing():
    filings = [f"acc-{i:03d}" for i in range(40)]
    train, held = tc.split_by_filing(filings * 3, 0.2, seed=7)  # rows repeat per section: split is per filing
    assert train | held == set(filings) and not train & held
    assert 2 <= len(held) <= 16
    more_train, more_held = tc.split_by_filing(filings + ["acc-new-1", "acc-new-2"], 0.2, seed=7)
    assert held <= more_held and train <= more_train  # adding filings never moves an old one
    assert tc.split_by_filing(filings, 0.2, seed=8) != (train, held)
    assert tc.split_by_filing(["a", "b"], 0.01)[1] and tc.split_by_filing(["a", "b"], 0.99)[0]
    with pytest.raises(tc.TrainingInputError, match="at least 2 filings"):
        tc.split_by_filing(["only-one", "only-one"], 0.1)


def test_corpus_round_trip_and_clear_errors(tmp_path):
    df = pd.DataFrame({"accession": ["b", "a", "a"], "cik": [2, 1, 1], "form": ["10-K"] * 3,
                       "filing_date": ["2024-01-02", "2024-01-01", "2024-01-01"], "item": ["7", "1", "7"],
                       "text": ["mdna b", "business a", "  "], "n_words": [2, 2, 0]})
    path = tc.write_corpus(df, tmp_path / "c.parquet")
    back = tc.read_corpus(str(path))
    assert list(back.columns) == list(tc.CORPUS_COLUMNS)
    assert back["text"].tolist() == ["business a", "mdna b"]  # empty section dropped, sorted
    assert tc.corpus_sha256(back) == tc.corpus_sha256(tc.read_corpus(f"file://{path}"))
    with pytest.raises(tc.TrainingInputError, match=r"missing column\(s\) \['item'\]"):
        tc.write_corpus(df.drop(columns=["item"]), tmp_path / "x.parquet")
    with pytest.raises(tc.TrainingInputError, match="does not exist"):
        tc.read_corpus(tmp_path / "nope.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(tc.TrainingInputError, match="not a readable Parquet"):
        tc.read_corpus(tmp_path / "junk.parquet")


# -- models ------------------------------------------------------------------------------------------

def tiny_gptj(vocab=96, positions=64, seed=0):
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    torch.manual_seed(seed)
    config = GPTJConfig(vocab_size=vocab, n_positions=positions, n_embd=32, n_layer=1, n_head=2, rotary_dim=8,
                        bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return GPTJForCausalLM(config)


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
    assert tc.resolve_model_source(str(tmp_path / "root")) == tmp_path / "root" / "versions" / "v1"


def test_causal_lm_perplexity_is_exp_of_the_mean_token_nll():
    import torch

    model = tiny_gptj()
    blocks = np.random.default_rng(0).integers(1, 96, size=(5, 16)).astype(np.int32)
    ppl = tc.causal_lm_perplexity(model, blocks, batch_size=2)
    with torch.no_grad():
        ids = torch.from_numpy(blocks.astype(np.int64))
        reference = model(input_ids=ids, labels=ids).loss  # every block has the same number of targets
    assert ppl == pytest.approx(math.exp(float(reference)), rel=1e-4)
    assert 60 < ppl < 200  # a random model over 96 tokens is near-uniform
    with pytest.raises(tc.TrainingInputError):
        tc.causal_lm_perplexity(model, blocks[:0])


# -- publishing ---------------------------------------------------------------------------------------

def _checkpoint_dir(path, marker="x"):
    path.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "manifest.json"):
        (path / name).write_text(json.dumps({"file": name, "marker": marker}))
    return path


def test_publish_flips_latest_last_and_a_failed_write_keeps_the_previous_one(tmp_path, monkeypatch):
    root = tc.CheckpointStore(str(tmp_path / "ckpt"))
    assert root.latest() is None
    uri = root.publish(_checkpoint_dir(tmp_path / "one"), "v1")
    assert root.latest() == "v1" and root.is_published("v1") and uri.endswith("/versions/v1")
    assert root.read_manifest("v1")["file"] == "manifest.json"

    real_copytree, copied = shutil.copytree, []

    def disk_fills_up(src, dst, *a, **kw):
        def copy(s, d, **k):
            if len(copied) == 2:
                raise OSError(28, "No space left on device")
            copied.append(s)
            return shutil.copy2(s, d, **k)

        return real_copytree(src, dst, copy_function=copy)

    monkeypatch.setattr(object_store.shutil, "copytree", disk_fills_up)
    with pytest.raises(tc.CheckpointPublishError, match=r"could not publish checkpoint v2 .*No space left.*LATEST still points to v1"):
        root.publish(_checkpoint_dir(tmp_path / "two"), "v2")
    assert root.latest() == "v1" and not root.is_published("v2")
    assert tc.resolve_model_source(str(tmp_path / "ckpt")).name == "v1"


def test_s3_publish_resolve_and_resume_state_mirror(moto_s3, tmp_path, monkeypatch):
    root_uri = "s3://finsec-test/checkpoints/unit"
    root = tc.CheckpointStore(root_uri)
    root.publish(_checkpoint_dir(tmp_path / "one", "first"), "v1")
    assert root.latest() == "v1"
    local = tc.resolve_model_source(root_uri, cache_dir=tmp_path / "cache")
    assert json.loads((local / "config.json").read_text())["marker"] == "first"
    assert not (local / "_COMPLETE").exists()

    real_put = root.store.fs.put_file
    calls = []

    def flaky_put(*a, **kw):
        calls.append(a)
        if len(calls) == 2:
            raise OSError("connection reset by peer")
        return real_put(*a, **kw)

    monkeypatch.setattr(root.store.fs, "put_file", flaky_put)
    with pytest.raises(tc.CheckpointPublishError, match="LATEST still points to v1"):
        root.publish(_checkpoint_dir(tmp_path / "two", "second"), "v2")
    monkeypatch.undo()
    assert root.latest() == "v1" and not root.is_published("v2")

    # resumable state written on one machine is found by a fresh work directory on another
    run = tc.CheckpointStore(root_uri).run_state("run-a", tmp_path / "machine-1")
    ckpt = _checkpoint_dir(run.work_dir / "checkpoint-4")
    (ckpt / "trainer_state.json").write_text("{}")
    run.mirror(ckpt)
    elsewhere = tc.CheckpointStore(root_uri).run_state("run-a", tmp_path / "machine-2")
    restored = elsewhere.restore()
    assert restored == tmp_path / "machine-2" / "run-a" / "checkpoint-4"
    assert (restored / "trainer_state.json").is_file()
    elsewhere.cleanup(keep_final=False)
    assert tc.CheckpointStore(root_uri).run_state("run-a", tmp_path / "machine-3").restore() is None


# -- training stage: interruption and resume ------------------------------------------------------------

class Crash(RuntimeError):
    pass


def _stage(tmp_path, name, callbacks=(), steps=6):
    blocks = np.random.default_rng(1).integers(1, 96, size=(24, 16)).astype(np.int32)
    hp = tc.Hyperparameters(max_steps=steps, per_device_batch_size=2, learning_rate=1e-3, save_steps=2, logging_steps=1,
                            warmup_ratio=0.0)
    run = tc.CheckpointStore(str(tmp_path / name)).run_state("stage")
    return run, lambda: tc.run_training_stage("t", tiny_gptj(), None, tc.TokenBlocks(blocks), tc.causal_lm_collate, hp,
                                              run, callbacks=callbacks)


def test_an_interrupted_stage_resumes_from_its_last_checkpoint_and_ends_where_an_uninterrupted_one_does(tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class CrashAtStep3(TrainerCallback):
        armed = True

        def on_step_end(self, args, state, control, **kwargs):
            if self.armed and state.global_step == 3:
                raise Crash("simulated crash after step 3")

    run, train = _stage(tmp_path, "interrupted", [CrashAtStep3()])
    with pytest.raises(Crash):
        train()
    assert tc.last_complete_checkpoint(run.work_dir).name == "checkpoint-2"
    assert not run.final_ready()
    CrashAtStep3.armed = False
    resumed = train()
    assert resumed.resumed_from_step == 2 and resumed.global_step == 6 and resumed.tokens_seen == 6 * 2 * 16
    assert [s for s, _ in resumed.loss_history] == [1, 2, 3, 4, 5, 6]

    straight_run, straight = _stage(tmp_path, "straight")
    assert straight().resumed_from_step == 0
    a = load_file(str(run.final_dir / "model.safetensors"))
    b = load_file(str(straight_run.final_dir / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    again = train()  # finished stage: reused, not retrained
    assert again.reused and again.global_step == 6


def test_too_little_text_for_one_batch_is_refused(tmp_path):
    hp = tc.Hyperparameters(max_steps=2, per_device_batch_size=8)
    run = tc.CheckpointStore(str(tmp_path / "r")).run_state("s")
    blocks = np.ones((3, 16), dtype=np.int32)
    with pytest.raises(tc.TrainingInputError, match=r"too little text to train: .* 3 full block\(s\) of 16.* needs 8 blocks"):
        tc.run_training_stage("t", tiny_gptj(), None, tc.TokenBlocks(blocks), tc.causal_lm_collate, hp, run)


# -- config, DeepSpeed, launch ---------------------------------------------------------------------------

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
    assert tc._parse_overrides(["training.max_steps=5", "base=scratch", "items=[\"7\"]"]) == {
        "training": {"max_steps": 5}, "base": "scratch", "items": ["7"]}


def test_deepspeed_configs_and_choice_on_a_cpu_machine():
    for name, stage in (("zero2", 2), ("zero3_offload", 3)):
        cfg = json.loads((tc.DEEPSPEED_CONFIG_DIR / f"{name}.json").read_text())
        assert cfg["zero_optimization"]["stage"] == stage and cfg["train_micro_batch_size_per_gpu"] == "auto"
    offload = json.loads((tc.DEEPSPEED_CONFIG_DIR / "zero3_offload.json").read_text())["zero_optimization"]
    assert offload["offload_optimizer"]["device"] == "cpu" and offload["stage3_gather_16bit_weights_on_model_save"]
    assert tc.select_deepspeed_config("off", 10**9) is None
    import torch

    if not torch.cuda.is_available():
        assert tc.select_deepspeed_config("auto", 10**9) is None  # CPU runs need no DeepSpeed
    with pytest.raises(tc.TrainingInputError, match="no such config"):
        tc.select_deepspeed_config("zero9", 1)
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(tc.TrainingInputError, match="deepspeed package is not installed"):
            tc.select_deepspeed_config("zero2", 1)


def test_launch_command():
    assert tc.launch_command("finsec_assets.ml.mlm_pretrain") == [sys.executable, "-m", "finsec_assets.ml.mlm_pretrain"]
    multi = tc.launch_command("finsec_assets.ml.clm_finetune", 4)
    assert multi[:3] == [sys.executable, "-m", "torch.distributed.run"] and "--nproc_per_node=4" in multi
    assert multi[-2:] == ["-m", "finsec_assets.ml.clm_finetune"]
    ds = tc.launch_command("finsec_assets.ml.clm_finetune", 2, "deepspeed")
    assert ds[1:] == ["--num_gpus=2", "--module", "finsec_assets.ml.clm_finetune"]
    with pytest.raises(tc.TrainingInputError, match="launcher='mpirun'"):
        tc.launch_command("x", 2, "mpirun")
