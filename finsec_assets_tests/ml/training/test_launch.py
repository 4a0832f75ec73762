"""The command an asset launches an entry point with."""

from __future__ import annotations

import sys

import pytest

from finsec_assets.ml import training as tc


def test_launch_command():
    assert tc.launch_command("finsec_assets.ml.mlm_pretrain") == [sys.executable, "-m", "finsec_assets.ml.mlm_pretrain"]
    multi = tc.launch_command("finsec_assets.ml.clm_finetune", 4)
    assert multi[:3] == [sys.executable, "-m", "torch.distributed.run"] and "--nproc_per_node=4" in multi
    assert multi[-2:] == ["-m", "finsec_assets.ml.clm_finetune"]
    ds = tc.launch_command("finsec_assets.ml.clm_finetune", 2, "deepspeed")
    assert ds[1:] == ["--num_gpus=2", "--module", "finsec_assets.ml.clm_finetune"]
    with pytest.raises(tc.TrainingInputError, match="launcher='mpirun'"):
        tc.launch_command("x", 2, "mpirun")
