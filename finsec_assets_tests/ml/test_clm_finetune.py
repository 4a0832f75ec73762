"""Causal-LM fine-tuning on one company's real filing text at tiny sizes: held-out MD&A, a base
pretrained on the other companies (and reused), generations, resume, publish failures, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from finsec_assets.ml import clm_finetune as clm
from finsec_assets.ml import training as tc
from finsec_assets.storage import object_store
from finsec_assets_tests.ml.lm_corpus import sample_sections

os.environ.setdefault("HF_HUB_OFFLINE", "1")
WMT = 104169
TINY = {"vocab_size": 400, "n_embd": 32, "n_layer": 1, "n_head": 2, "rotary_dim": 8, "n_positions": 128}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return str(tc.write_corpus(sample_sections(3000), tmp_path_factory.mktemp("corpus") / "sections.parquet"))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One checkpoint root for the module, as in a deployment: the base pretrained on the other
    companies is trained once and reused by every later run."""
    return tmp_path_factory.mktemp("checkpoints") / "finetuned_checkpoint"


def raw_config(corpus, root, **overrides) -> dict:
    return {"corpus_uri": corpus, "cik": WMT, "ticker": "WMT", "checkpoint_root": str(root), "seq_len": 64,
            "max_eval_blocks": 8, "scratch": TINY,
            "base_training": {"max_steps": 6, "per_device_batch_size": 4, "learning_rate": 5e-3, "save_steps": 3,
                              "logging_steps": 1},
            "training": {"max_steps": 6, "per_device_batch_size": 4, "learning_rate": 3e-3, "save_steps": 2,
                         "logging_steps": 1, **overrides.pop("training", {})},
            "generation": {"max_length": 24}, **overrides}


def config(corpus, root, **overrides) -> clm.ClmFinetuneConfig:
    return clm.ClmFinetuneConfig.from_mapping(raw_config(corpus, root, **overrides))


def test_finetune_validates_on_held_out_mdna_and_reuses_its_base(corpus, root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    summary = clm.finetune_clm(config(corpus, root))
    m = summary["manifest"]
    data = m["training_data"]
    assert data["eval_items"] == ["7", "I-2"] and not {"7", "I-2"} & set(data["train_items"])
    assert data["eval_filings"] == data["train_filings"] == ["000010416923000097", "000010416924000056"]
    assert m["company"] == {"cik": WMT, "ticker": "WMT"} and m["base"]["model_type"] == "gptj"
    assert m["base"]["pretraining"]["tokens_seen"] == 6 * 4 * 64 and m["tokens_seen"] == 6 * 4 * 64
    assert m["stages"]["finetune"]["resumed_from_step"] == 0
    # before: a base that has read only other companies; after: it has read WMT's other sections
    assert summary["perplexity_after"] < summary["perplexity_before"] < 400 * 2
    outputs = m["generation"]["outputs"]
    assert [g["prompt"] for g in outputs] == list(clm.PROMPTS)
    assert all(g["text"].startswith(g["prompt"]) and g["new_tokens"] > 0 for g in outputs)
    assert m["generation"]["top_k"] == 250 and m["generation"]["top_p"] == 0.8 and m["generation"]["do_sample"]

    path = tc.resolve_model_source(str(root))
    model = AutoModelForCausalLM.from_pretrained(str(path))
    tok = AutoTokenizer.from_pretrained(str(path))
    assert len(tok) <= model.config.vocab_size and tok.eos_token == "<|endoftext|>"
    assert type(model).__name__ == "GPTJForCausalLM"

    second = clm.finetune_clm(config(corpus, root, training={"max_steps": 4}))
    assert second["manifest"]["stages"]["base"]["reused"]  # same other-company text: base not trained again
    assert second["version"] != summary["version"] and second["tokens_seen"] == 4 * 4 * 64
    assert tc.CheckpointStore(str(root)).latest() == second["version"]


def test_interrupted_finetune_resumes_and_a_failed_publish_keeps_latest(corpus, root, monkeypatch):
    from transformers import TrainerCallback

    class CrashAtStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("simulated crash after step 3")

    previous = tc.CheckpointStore(str(root)).latest()
    cfg = config(corpus, root, training={"max_steps": 6, "learning_rate": 1e-3})
    with pytest.raises(RuntimeError, match="simulated crash"):
        clm.finetune_clm(cfg, callbacks=[CrashAtStep3()])
    assert tc.CheckpointStore(str(root)).latest() == previous

    real_copytree = shutil.copytree

    def disk_full(src, dst, *a, **kw):
        def copy(s, d, **k):
            if s.endswith(".safetensors"):
                raise OSError(28, "No space left on device")
            return shutil.copy2(s, d, **k)

        return real_copytree(src, dst, copy_function=copy)

    monkeypatch.setattr(object_store.shutil, "copytree", disk_full)
    with pytest.raises(tc.CheckpointPublishError, match="No space left on device.*LATEST still points to"):
        clm.finetune_clm(cfg)
    assert tc.CheckpointStore(str(root)).latest() == previous
    monkeypatch.undo()

    summary = clm.finetune_clm(cfg)  # training finished before the failed write: only publishing is redone
    stage = summary["manifest"]["stages"]["finetune"]
    assert stage["resumed_from_step"] == 2 and stage["global_step"] == 6 and stage["reused"]
    assert tc.CheckpointStore(str(root)).latest() == summary["version"]


def test_bad_inputs_are_named(corpus, tmp_path):
    from transformers import GPTJConfig, GPTJForCausalLM

    with pytest.raises(tc.TrainingInputError, match=r"cik 1234 has no filing text .*ciks present: \[63908, 97476, 104169, 1045810\]"):
        clm.finetune_clm(config(corpus, tmp_path / "a", cik=1234))
    with pytest.raises(tc.TrainingInputError, match=r"WMT has no MD&A \(items \['99'\]\)"):
        clm.finetune_clm(config(corpus, tmp_path / "b", eval_items=["99"]))
    with pytest.raises(tc.TrainingInputError, match="base model path .*gpt-j-6b.* does not exist"):
        clm.finetune_clm(config(corpus, tmp_path / "c", base=str(tmp_path / "gpt-j-6b")))

    only_wmt = str(tc.write_corpus(sample_sections(3000)[lambda d: d["cik"] == WMT], tmp_path / "wmt.parquet"))
    with pytest.raises(tc.TrainingInputError, match="pretrained on the other companies' filings, but the corpus holds only cik 104169"):
        clm.finetune_clm(config(only_wmt, tmp_path / "d"))

    mismatched = tmp_path / "mismatched"
    small = GPTJConfig(vocab_size=64, n_positions=128, n_embd=32, n_layer=1, n_head=2, rotary_dim=8,
                       bos_token_id=0, eos_token_id=0)
    GPTJForCausalLM(small).save_pretrained(mismatched)
    clm.train_bpe_tokenizer(["net sales increased in every segment"] * 50, 300, 10_000, 128).save_pretrained(mismatched)
    with pytest.raises(tc.TrainingInputError, match="do not match: the tokenizer has .* tokens but the model's embedding has 64 rows"):
        clm.finetune_clm(config(corpus, tmp_path / "e", base=str(mismatched)))

    with pytest.raises(tc.TrainingInputError, match="too little text to train: the base training text has"):
        clm.finetune_clm(config(corpus, tmp_path / "f", base_training={"per_device_batch_size": 4096}))
    for path in "abcdef":
        assert not (tmp_path / path / "LATEST").exists()


def test_command_line_entry_point(corpus, root, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(raw_config(corpus, root)))
    env = {**os.environ, "FINSEC_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", clm.ENTRY_MODULE, "--config", str(cfg), "--set", "training.max_steps=2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    meta = out["checkpoint_summary"]
    assert {"checkpoint_uri", "perplexity_before", "perplexity_after", "tokens_seen", "tokens_per_second"} <= set(meta)
    assert meta["tokens_seen"] == 2 * 4 * 64 and out["data_version"] == meta["version"]
    latest = tc.CheckpointStore(str(root))
    assert meta["checkpoint_uri"] == latest.version_uri(latest.latest()) and meta["latest_moved"]
    assert "held-out MD&A perplexity before" in done.stderr

    bad = subprocess.run([sys.executable, "-m", clm.ENTRY_MODULE, "--config", str(cfg), "--set", "training.max_step=2"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "unknown setting(s) ['max_step']" in bad.stderr
