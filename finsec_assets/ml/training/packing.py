"""Tokenising and packing: documents concatenated with separators and cut into full-length blocks
(RoBERTa's FULL-SENTENCES packing), so no training step is spent on padding."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .config import TrainingInputError


def tokenize_documents(tokenizer, texts: Sequence[str], batch_size: int = 64) -> list[np.ndarray]:
    """Token ids per document, no special tokens (packing adds them)."""
    out: list[np.ndarray] = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[i:i + batch_size]), add_special_tokens=False, return_attention_mask=False,
            return_token_type_ids=False, verbose=False,
        )
        out.extend(np.asarray(ids, dtype=np.int32) for ids in enc["input_ids"])
    return out


def pack_token_blocks(
    docs: Iterable[Sequence[int]],
    block_len: int,
    *,
    prefix: Sequence[int] = (),
    suffix: Sequence[int] = (),
    separator: Sequence[int] = (),
    max_blocks: int | None = None,
) -> np.ndarray:
    """Concatenate documents (``separator`` after each) and cut into ``block_len`` rows of
    ``prefix + chunk + suffix``; the incomplete tail is dropped, so every row is full length."""
    body = block_len - len(prefix) - len(suffix)
    if body < 1:
        raise TrainingInputError(f"block length {block_len} leaves no room for text between the special tokens")
    sep = np.asarray(separator, dtype=np.int32)
    pieces = []
    for doc in docs:
        pieces.append(np.asarray(doc, dtype=np.int32))
        if sep.size:
            pieces.append(sep)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    n = stream.size // body
    if max_blocks is not None and max_blocks > 0:
        n = min(n, max_blocks)
    chunks = stream[: n * body].reshape(n, body)
    pre = np.broadcast_to(np.asarray(prefix, dtype=np.int32), (n, len(prefix)))
    post = np.broadcast_to(np.asarray(suffix, dtype=np.int32), (n, len(suffix)))
    return np.ascontiguousarray(np.concatenate([pre, chunks, post], axis=1))


class TokenBlocks:
    """A map-style dataset over packed blocks; ``special_ids`` adds the mask the MLM collator needs."""

    def __init__(self, blocks: np.ndarray, special_ids: Sequence[int] | None = None):
        if blocks.ndim != 2:
            raise ValueError(f"token blocks must be 2-D (n_blocks, block_len), got shape {blocks.shape}")
        self.blocks = blocks
        self.special_ids = None if special_ids is None else np.asarray(sorted(set(special_ids)), dtype=np.int32)

    def __len__(self) -> int:
        return int(self.blocks.shape[0])

    def __getitem__(self, i: int) -> dict:
        import torch

        row = self.blocks[i]
        item = {"input_ids": torch.from_numpy(row.astype(np.int64))}
        if self.special_ids is not None:
            item["special_tokens_mask"] = torch.from_numpy(np.isin(row, self.special_ids).astype(np.int64))
        return item


def causal_lm_collate(examples: Sequence[dict]) -> dict:
    """Stack packed blocks; labels are the inputs (the model shifts them). No padding to mask."""
    import torch

    ids = torch.stack([e["input_ids"] for e in examples])
    return {"input_ids": ids, "labels": ids.clone()}


def require_one_batch(n_blocks: int, batch_blocks: int, what: str, block_len: int, n_tokens: int) -> None:
    if n_blocks < batch_blocks:
        raise TrainingInputError(
            f"too little text to train: {what} has {n_tokens:,} tokens, {n_blocks} full block(s) of {block_len}, "
            f"and one optimizer step needs {batch_blocks} blocks (batch size x gradient accumulation x processes); "
            "add filings or lower seq_len / per_device_batch_size"
        )
