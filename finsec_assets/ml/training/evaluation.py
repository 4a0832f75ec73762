"""Held-out evaluation: causal-LM perplexity computed here as exp(mean token NLL), not trusted to
the Trainer's eval loss."""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np

from .config import TrainingInputError


def _device_of(model):
    return next(model.parameters()).device


@contextlib.contextmanager
def evaluation_device(model, device: str | None):
    """Run ``model`` on ``device`` (default: this rank's GPU if any), then put it back."""
    import torch

    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    original, was_training = _device_of(model), model.training
    model.to(device)
    model.eval()
    try:
        yield torch.device(device)
    finally:
        model.to(original)
        model.train(was_training)


def eval_autocast(device):
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def causal_lm_perplexity(model, blocks: np.ndarray, *, batch_size: int = 8, device: str | None = None) -> float:
    """exp(mean NLL of every next token) over packed blocks."""
    import torch
    import torch.nn.functional as F

    if len(blocks) == 0:
        raise TrainingInputError("perplexity needs at least one block of held-out text")
    total, count = 0.0, 0
    with evaluation_device(model, device) as dev, torch.inference_mode():
        for i in range(0, len(blocks), batch_size):
            ids = torch.from_numpy(blocks[i:i + batch_size].astype(np.int64)).to(dev)
            with eval_autocast(dev):
                logits = model(input_ids=ids).logits
            nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="sum")
            total += float(nll)
            count += ids[:, 1:].numel()
    return math.exp(total / count)
