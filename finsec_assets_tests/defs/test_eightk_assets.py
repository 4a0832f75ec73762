"""The 8-K path on the sample: filing_index items, raw_filings exhibit rows, sections, scores, filing_events."""

import pytest

from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
import pandas as pd

from finsec_assets.defs.text.assets import (EIGHT_K_SCORED_ITEMS, filing_events, filing_sections, filing_summaries,
                                            nlp_scores, select_items)
from finsec_assets.settings import Settings, SettingsError

from finsec_assets.storage.lake import open_lake

from .helpers import check_results, lake_rows, lake_value, materialize, output_metadata

ASSETS = [company_universe, filing_index, raw_filings, filing_sections, nlp_scores, filing_summaries, filing_events]
MMM_8K = "0000066740-24-000023"
JACCARD_ONLY = {"ops": {"filing_summaries": {"config": {"methods": ["jaccard"]}}}}


def test_8k_rows_exhibits_items_scores_and_events(finsec_env, monkeypatch):
    monkeypatch.setenv("FINSEC_UNIVERSE", "MMM,NVDA")
    assert materialize(ASSETS, selection=[company_universe]).success
    result = materialize(ASSETS, selection=ASSETS[1:], partition_key="2024-01-01", run_config=JACCARD_ONLY)
    assert result.success
    assert all(check_results(result).values()), check_results(result)
    q = lake_rows
    assert q(f"select form, items, acceptance_datetime from filing_index where accession = '{MMM_8K}'") == [
        ("8-K", "8.01,9.01", "2024-03-08T12:01:45.000Z")]
    assert q("select items from filing_index where form = '10-K'") == [(None,)]
    assert q(f"select document_type, is_primary, source from raw_filings where accession = '{MMM_8K}' order by 1") == [
        ("8-K", True, "full_submission"), ("EX-99.1", False, "full_submission")]
    assert q(f"select item, document_type from filing_sections where accession = '{MMM_8K}' order by item") == [
        ("8.01", "8-K"), ("9.01", "8-K"), ("EX-99.1", "EX-99.1")]
    # the 10-K next to it is read exactly as before
    ten_k = {i for (i,) in q("select item from filing_sections where accession = '0001045810-24-000029'")}
    assert {"1", "1A", "7", "7A"} <= ten_k
    scored = q(f"select item from nlp_scores where accession = '{MMM_8K}' order by item")
    assert scored == [("8.01",), ("EX-99.1",)]  # 9.01 is not scored; MD&A and risk factors still are
    assert {i for (i,) in q("select item from nlp_scores where accession = '0001045810-24-000029'")} == {"1A", "7"}
    assert {i for (i,) in q(f"select item from filing_summaries where accession = '{MMM_8K}'")} == {"8.01", "EX-99.1"}
    events = q("select item, is_exhibit, listed_by_edgar, found_in_text, acceptance_datetime, sentiment is not null "
               "from filing_events order by is_exhibit, item")
    assert events == [("8.01", False, True, True, "2024-03-08T12:01:45.000Z", True),
                      ("9.01", False, True, True, "2024-03-08T12:01:45.000Z", False),
                      ("EX-99.1", True, None, True, "2024-03-08T12:01:45.000Z", True)]
    assert output_metadata(result, "filing_sections")["press_releases"] == 1
    quiet = materialize(ASSETS, selection=ASSETS[1:], partition_key="2023-07-01", run_config=JACCARD_ONLY)
    assert quiet.success  # a quarter without 8-Ks: an empty filing_events with the same column types
    types = dict(open_lake().columns("filing_events"))
    assert types["sentiment"] == "DOUBLE" and types["n_words"] == "BIGINT" and types["item"] == "VARCHAR"
    assert lake_value("select count(*) from filing_events") == 3
    again = materialize(ASSETS, selection=ASSETS[2:4], partition_key="2024-01-01")
    assert output_metadata(again, "raw_filings")["fetched"] == 0
    assert output_metadata(again, "filing_sections")["parsed"] == 0


def test_forms_setting_decides_what_the_index_takes(finsec_env, monkeypatch):
    monkeypatch.setenv("FINSEC_UNIVERSE", "MMM,NVDA")
    monkeypatch.setenv("FINSEC_FORMS", "10-K, 10-Q")
    assert materialize(ASSETS, selection=[company_universe]).success
    result = materialize(ASSETS, selection=[filing_index], partition_key="2024-01-01")
    meta = output_metadata(result, "filing_index")
    assert meta["8-K"] == 0 and meta["10-K"] == 1 and meta["forms"] == "10-K,10-Q"
    assert Settings.from_env({}).forms == ("10-K", "10-Q", "8-K")
    with pytest.raises(SettingsError, match="FINSEC_FORMS.*10-K/A.*amendments"):
        Settings.from_env({"FINSEC_FORMS": "10-K/A"})
    with pytest.raises(SettingsError, match="'S-1'"):
        Settings.from_env({"FINSEC_FORMS": "8-K,S-1"})


def test_item_selection_keeps_10k_and_8k_ids_apart():
    rows = pd.DataFrame({"form": ["10-K", "8-K", "8-K", "8-K", "8-K", "10-Q", "8-K/A"],
                         "item": ["7", "7", "12", "2.02", "EX-99.2", "I-2", "9.01"]})
    chosen = rows[select_items(rows, ["7", "I-2", *EIGHT_K_SCORED_ITEMS])]
    assert list(zip(chosen["form"], chosen["item"])) == [("10-K", "7"), ("8-K", "12"), ("8-K", "2.02"), ("8-K", "EX-99.2"),
                                                         ("10-Q", "I-2")]
    assert select_items(rows.iloc[0:0], ["7"]).empty
