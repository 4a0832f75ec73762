"""One training stage: interruption and resume, too little text, the DeepSpeed choice."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finsec_assets.ml import training as tc

from .helpers import tiny_gptj


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
