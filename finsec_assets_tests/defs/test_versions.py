"""One versioning helper: every asset's code version covers its modules, data files and data packages."""

import shutil

import pytest

from finsec_assets.defs.common import file_sha256, source_version
from finsec_assets.definitions import defs
from finsec_assets.defs.edgar.assets import EDGAR_VERSION
from finsec_assets.defs.text import assets as text_assets
from finsec_assets.edgar import client, ingest, parsing, ratelimit, synthetic
from finsec_assets.text import scoring, sentences


def test_editing_a_word_list_changes_the_scorer_version(tmp_path):
    copy = tmp_path / "wordlists"
    shutil.copytree(scoring.WORDLIST_DIR, copy)
    packages = text_assets.SCORING_PACKAGES
    shipped = source_version(scoring, sentences, data=[scoring.WORDLIST_DIR], packages=packages)
    assert shipped == text_assets.SCORER_VERSION  # nlp_scores' code version is built from the shipped lists
    assert source_version(scoring, sentences, data=[copy], packages=packages) == shipped  # same bytes, same version
    with (copy / "negative.txt").open("a") as handle:
        handle.write("headwind\n")
    assert source_version(scoring, sentences, data=[copy], packages=packages) != shipped
    (copy / "negative.txt").rename(copy / "negatives.txt")  # a renamed file is a different data set
    assert source_version(scoring, sentences, data=[copy], packages=packages) != shipped


def test_file_hashes_and_missing_data_files(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("y")
    assert list(file_sha256(tmp_path)) == ["a.txt", "sub/b.txt"]
    assert list(file_sha256(tmp_path / "a.txt")) == ["a.txt"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        file_sha256(tmp_path / "missing.txt")


def test_edgar_assets_are_versioned_by_their_code_and_the_sample():
    assert EDGAR_VERSION == source_version(client, ingest, parsing, ratelimit, synthetic, data=[client.SAMPLE_DIR])


def test_no_asset_has_a_hand_written_code_version():
    graph = defs.resolve_asset_graph()
    versions = {key.to_user_string(): graph.get(key).code_version for key in graph.materializable_asset_keys}
    unversioned = sorted(name for name, version in versions.items() if not version or len(version) < 8)
    assert not unversioned, f"assets without a source_version: {unversioned}"
    assert versions["filing_index"] == versions["raw_filings"] == EDGAR_VERSION
    assert versions["nlp_scores"] == text_assets.SCORER_VERSION
