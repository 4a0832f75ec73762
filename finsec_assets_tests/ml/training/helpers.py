"""Tiny models and checkpoint directories shared by the training-package tests."""

from __future__ import annotations

import json


def tiny_gptj(vocab=96, positions=64, seed=0):
    import torch
    from transformers import GPTJConfig, GPTJForCausalLM

    torch.manual_seed(seed)
    config = GPTJConfig(vocab_size=vocab, n_positions=positions, n_embd=32, n_layer=1, n_head=2, rotary_dim=8,
                        bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return GPTJForCausalLM(config)


def checkpoint_dir(path, marker="x"):
    path.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "manifest.json"):
        (path / name).write_text(json.dumps({"file": name, "marker": marker}))
    return path
