"""Packing documents into full-length token blocks."""

from __future__ import annotations

import numpy as np
import pytest

from finsec_assets.ml import training as tc


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
