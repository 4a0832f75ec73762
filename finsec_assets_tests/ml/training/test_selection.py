"""The blocks a run trains on, read from a corpus file of any size in memory bounded by those blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsec_assets.ml import training as tc
from finsec_assets.ml.training import selection
from finsec_assets_tests.ml.lm_corpus import sample_sections


class WordTokenizer:
    """Token ids = word lengths: cheap, deterministic, enough to count and compare blocks."""

    def __call__(self, texts, **_):
        return {"input_ids": [[len(w) for w in t.split()] for t in texts]}


@pytest.fixture(scope="module")
def sections():
    return sample_sections(3000)


def test_index_holds_no_text_and_hashes_like_the_corpus(sections, tmp_path):
    sections = sections.copy()
    sections.loc[0, "text"] = "   "  # empty sections are not in the index, as read_corpus drops them
    path = tc.write_corpus(sections, tmp_path / "c.parquet")
    index = tc.corpus_index(str(path), batch_rows=4)
    whole = tc.read_corpus(str(path))
    assert "text" not in index.columns and len(index) == len(whole) == len(sections) - 1
    assert index["chars"].tolist() == whole["text"].str.len().tolist()
    assert tc.corpus_sha256(index) == tc.corpus_sha256(whole)  # no text needed for the corpus's version
    assert dict(tc.corpus_texts(str(path), index["row"].iloc[[5, 1]])) == {
        int(index["row"].iloc[1]): whole["text"].iloc[1], int(index["row"].iloc[5]): whole["text"].iloc[5]}
    with pytest.raises(tc.TrainingInputError, match="does not exist"):
        tc.corpus_index(str(tmp_path / "nope.parquet"))
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(tc.TrainingInputError, match="not a readable Parquet"):
        tc.corpus_index(str(tmp_path / "junk.parquet"))


def test_sampled_blocks_are_capped_stable_and_independent_of_file_order(sections, tmp_path, monkeypatch):
    path = str(tc.write_corpus(sections, tmp_path / "c.parquet"))
    shuffled = str(tmp_path / "s.parquet")
    sections.sample(frac=1, random_state=3).to_parquet(shuffled, index=False)  # another file order
    tok = WordTokenizer()
    index = tc.corpus_index(path)
    every, used_all = tc.sampled_token_blocks(path, index, tok, 16, None, separator=[0])
    assert len(used_all) == len(index) and len(every) > 40
    blocks, used = tc.sampled_token_blocks(path, index, tok, 16, 10, separator=[0])
    assert blocks.shape == (10, 16) and len(used) < len(index)  # only the sections that cover 10 blocks are read
    again, _ = tc.sampled_token_blocks(shuffled, tc.corpus_index(shuffled), tok, 16, 10, separator=[0])
    assert np.array_equal(blocks, again)  # chosen by a hash of (accession, item), not by position in the file
    other_seed, _ = tc.sampled_token_blocks(path, index, tok, 16, 10, separator=[0], seed=1)
    assert not np.array_equal(blocks, other_seed)
    monkeypatch.setattr(selection, "CHARS_PER_TOKEN_BUDGET", 0.01)  # a budget far too small: it doubles until covered
    short, _ = tc.sampled_token_blocks(path, index, tok, 16, 10, separator=[0])
    assert np.array_equal(short, blocks)
    few, used_few = tc.sampled_token_blocks(path, index.iloc[:1], tok, 16, 10_000, separator=[0])
    assert len(used_few) == 1 and 0 < len(few) < 10_000  # fewer blocks than asked: everything there is
    empty, _ = tc.sampled_token_blocks(path, index.iloc[:0], tok, 16, 10)
    assert empty.shape == (0, 16)


PEAK_RSS = """
import pathlib, sys
from finsec_assets.ml.training import corpus_index, load_tokenizer, minilm_path, read_corpus, sampled_token_blocks
tok = load_tokenizer(minilm_path())
if sys.argv[2] == "sample":  # what the trainer does now: an index, then only the sections 320 blocks need
    index = corpus_index(sys.argv[1])
    blocks, used = sampled_token_blocks(sys.argv[1], index, tok, 128, 320, prefix=[tok.cls_token_id],
                                        suffix=[tok.sep_token_id], separator=[tok.sep_token_id])
    assert len(blocks) == 320, len(blocks)
    rows = len(index)
else:  # the control: the corpus read whole, the trainer's first step before (it then tokenised all of it)
    rows = len(read_corpus(sys.argv[1]))
hwm = next(l for l in pathlib.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(rows, int(hwm.split()[1]))
"""


def test_training_blocks_do_not_grow_with_the_corpus(tmp_path):
    """Peak RSS of choosing 320 blocks from a corpus file of 1x and 10x the rows (fresh processes)."""
    import os
    import subprocess
    import sys

    import pyarrow as pa

    if not os.path.exists("/proc/self/status"):
        pytest.skip("peak RSS is read from Linux /proc/self/status (VmHWM)")
    base = sample_sections(20_000)
    base = base[base["text"].str.strip() != ""].loc[:, list(tc.CORPUS_COLUMNS)].reset_index(drop=True)
    peaks, sizes = {}, {}
    for scale in (1, 10):
        def copies(n=24 * scale):  # distinct texts (a copy number in front), 1,000-row batches as the asset writes
            for copy in range(n):
                rows = base.assign(accession=base["accession"] + f"-{copy}", text=f"{copy} " + base["text"])
                yield pa.Table.from_pandas(rows, preserve_index=False)
        path = tc.write_corpus_batches(copies(), tmp_path / f"c{scale}.parquet").path
        sizes[scale] = 24 * scale * int(base["text"].str.len().sum())
        for mode in ("sample", "whole") if scale == 10 else ("sample",):
            out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(path), mode], capture_output=True, text=True,
                                 timeout=300, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            assert out.returncode == 0, out.stderr[-2000:]
            n_rows, peak_kb = map(int, out.stdout.split())
            assert n_rows == 24 * scale * len(base)
            peaks[mode, scale] = peak_kb * 1024
    print({"peak_rss_mb": {k: round(v / 2**20) for k, v in peaks.items()}, "text_mb": {k: round(v / 2**20) for k, v in sizes.items()}})
    # Measured: 417 -> 427 MB (1.02x) for 7 -> 69 MB of text; the whole corpus read 584 MB. The whole trainer
    # (mlm_pretrain, asset defaults, 480 blocks) over 100 synthetic filings' sections and 10x them: 1221 -> 1273 MB
    # (1.04x); before, reading and tokenising all of it: 1335 -> 2258 MB (1.69x).
    assert peaks["whole", 10] > 1.3 * peaks["sample", 1]  # the control: reading the corpus whole fails this bar
    assert peaks["sample", 10] <= 1.1 * peaks["sample", 1], (peaks, sizes)
