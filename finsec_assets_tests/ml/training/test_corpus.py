"""The training corpus file and held-out splits by filing."""

from __future__ import annotations

import pandas as pd
import pytest

from finsec_assets.ml import training as tc


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


# -- the corpus streamed from the lake ------------------------------------------------------------------

def _lake(home):
    from finsec_assets.settings import Settings
    from finsec_assets.storage.lake import open_lake

    return open_lake(Settings.from_env({"FINSEC_HOME": str(home)}))


def _quarter_key(dates: pd.Series) -> pd.Series:
    return pd.to_datetime(dates).dt.to_period("Q").dt.start_time.dt.strftime("%Y-%m-%d")


def test_corpus_streams_from_the_lake_with_only_the_rows_and_columns_asked_for(tmp_path):
    from finsec_assets_tests.ml.lm_corpus import sample_sections

    sections = sample_sections(3000)
    sections.loc[0, "text"] = "   "  # an empty section never reaches the corpus
    lake = _lake(tmp_path / "home")
    for quarter, rows in sections.groupby(_quarter_key(sections["filing_date"])):
        lake.replace_partition("filing_sections", quarter, rows.reset_index(drop=True))

    query, params = tc.corpus_query(items=["7", "I-2"])
    assert "order by" not in query and "title" not in query and "n_words" not in query  # projection pushed down
    small = tc.write_corpus_batches(lake.batches(query, params, batch_size=2), tmp_path / "mdna.parquet")
    big = tc.write_corpus_batches(lake.batches(query, params, batch_size=1000), tmp_path / "mdna2.parquet")
    expected = sections[sections["item"].isin(["7", "I-2"]) & (sections["text"].str.strip() != "")]
    back = tc.read_corpus(small.path)
    assert small.rows == big.rows == len(back) == len(expected)
    assert list(back.columns) == list(tc.CORPUS_COLUMNS) and set(back["item"]) == {"7", "I-2"}
    assert tc.corpus_sha256(back) == tc.corpus_sha256(tc.read_corpus(tc.write_corpus(expected, tmp_path / "pd.parquet")))
    assert small.quarter_versions == big.quarter_versions  # batch boundaries and row order do not matter
    assert set(small.quarter_versions) == {"2023Q3", "2024Q1"}

    by_quarter = tc.write_corpus_batches(tc.corpus_batches(lake, items=["7", "I-2"], batch_size=3), tmp_path / "q.parquet")
    assert by_quarter.rows == small.rows and by_quarter.quarter_versions == small.quarter_versions
    assert tc.corpus_sha256(tc.read_corpus(by_quarter.path)) == tc.corpus_sha256(back)
    one, params = tc.corpus_query(items=["7"], partition_key="2024-01-01")
    assert "partition_key = '2024-01-01'" in one and params == ["7"]  # a literal: the lake prunes other quarters' files
    assert tc.corpus_query(partition_key="x' or '1'='1")[0].count("'x'' or ''1''=''1'") == 1  # quoted, not injected

    wmt = tc.write_corpus_batches(lake.batches(*tc.corpus_query(ciks=[104169])), tmp_path / "wmt.parquet")
    assert set(tc.read_corpus(wmt.path)["cik"]) == {104169} and wmt.rows == int((sections["cik"] == 104169).sum()) - 1
    assert not list(tmp_path.glob(".tmp-*"))
    none = tc.write_corpus_batches(lake.batches(*tc.corpus_query(items=["99"])), tmp_path / "none.parquet")
    assert none.rows == 0 and none.quarter_versions == {}


PEAK_RSS = """
import pathlib, sys
from finsec_assets.settings import Settings
from finsec_assets.storage.lake import open_lake
from finsec_assets.ml.training import corpus_batches, corpus_parquet_bytes, corpus_query, write_corpus_batches
lake = open_lake(Settings.from_env({"FINSEC_HOME": sys.argv[1]}))
if sys.argv[3] == "stream":
    rows = write_corpus_batches(corpus_batches(lake, batch_size=100), sys.argv[2]).rows  # one quarter at a time
else:  # the control: every quarter in pandas at once, as the assets did before
    sections = lake.sql(*corpus_query())
    pathlib.Path(sys.argv[2]).write_bytes(corpus_parquet_bytes(sections))
    rows = len(sections)
# VmHWM belongs to this process's memory map; ru_maxrss would carry the forking parent's peak across exec.
hwm = next(l for l in pathlib.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(rows, int(hwm.split()[1]))
"""


def test_building_the_corpus_does_not_grow_with_the_number_of_quarters(tmp_path):
    """Peak RSS of the corpus build over 1x and 10x the rows (10x spread over 10x the quarters)."""
    import os
    import subprocess
    import sys

    from finsec_assets_tests.ml.lm_corpus import sample_sections

    if not os.path.exists("/proc/self/status"):
        pytest.skip("peak RSS is read from Linux /proc/self/status (VmHWM)")
    base = sample_sections(100_000)
    base = base[base["text"].str.strip() != ""].reset_index(drop=True)  # up to 15 sections of real filing text
    peaks, sizes = {}, {}
    for scale in (1, 10):
        home = tmp_path / f"x{scale}"
        lake = _lake(home)
        for q in range(4 * scale):  # 4 quarters at 1x, 40 at 10x; each holds the sample 4 times
            rows = pd.concat([base.assign(accession=base["accession"] + f"-{q}-{copy}") for copy in range(4)])
            lake.replace_partition("filing_sections", f"{2000 + q // 4}-{1 + 3 * (q % 4):02d}-01", rows)
        lake.close()
        sizes[scale] = 16 * scale * int(base["text"].str.len().sum())
        for mode in ("stream", "load") if scale == 10 else ("stream",):
            out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(home), str(tmp_path / f"c{scale}.parquet"), mode],
                                 capture_output=True, text=True, timeout=600, check=True)
            n_rows, peak_kb = map(int, out.stdout.split())
            assert n_rows == 16 * scale * len(base)
            peaks[mode, scale] = peak_kb * 1024
    print({"peak_rss_mb": {k: round(v / 2**20) for k, v in peaks.items()}, "text_mb": {k: round(v / 2**20) for k, v in sizes.items()}})
    assert peaks["load", 10] > 1.5 * peaks["stream", 1]  # the control: loading every quarter would fail this bar
    # Measured with VmHWM: one query over every quarter went 263 -> 444 MB (1.7x; DuckDB's read-ahead buffer counts
    # a string by its header, so it held all the text); one quarter at a time 246 -> 268 MB (1.09x), loading 572 MB.
    assert peaks["stream", 10] < peaks["load", 10], (peaks, sizes)
    assert peaks["stream", 10] <= 1.5 * peaks["stream", 1], (peaks, sizes)  # issue 11's bar
