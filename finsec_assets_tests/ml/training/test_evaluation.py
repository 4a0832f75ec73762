"""Held-out causal-LM perplexity computed here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finsec_assets.ml import training as tc

from .helpers import tiny_gptj


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
