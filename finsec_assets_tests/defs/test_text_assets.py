"""filing_sections and nlp_scores materialized on the sample; bad documents never stop the quarter."""

import hashlib

import pandas as pd

from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.text.assets import filing_sections, nlp_scores
from finsec_assets.storage.object_store import ObjectStore
from finsec_assets.storage.lake import open_lake
from finsec_assets.text import scoring

from .helpers import check_results, lake_rows, materialize, output_metadata

ASSETS = [company_universe, filing_index, raw_filings, filing_sections, nlp_scores]


def test_sections_and_scores_for_a_quarter_and_incremental_rerun(finsec_env, monkeypatch):
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT,AAPL")
    assert materialize(ASSETS, selection=[company_universe]).success
    result = materialize(ASSETS, selection=[filing_index, raw_filings, filing_sections, nlp_scores], partition_key="2023-07-01")
    assert result.success
    assert all(check_results(result).values()), check_results(result)
    mdna = lake_rows("select accession, n_words from filing_sections where item = 'I-2' order by 1")
    assert [a for a, _ in mdna] == ["0000104169-23-000097", "0000320193-23-000077", "0001045810-23-000175"]
    assert all(n > 1500 for _, n in mdna)
    scores = lake_rows("select item, n_sentences, readability, sentiment from nlp_scores where item = 'I-2'")
    assert all(n > 50 and 10 < fog < 30 for _, n, fog, _ in scores)  # real sentences, not one per document
    again = materialize(ASSETS, selection=[filing_sections, nlp_scores], partition_key="2023-07-01")
    meta = output_metadata(again, "filing_sections")
    assert meta["parsed"] == 0 and meta["reused_filings"] == 3
    scored = output_metadata(again, "nlp_scores")
    assert scored["scored"] == 0 and scored["reused"] == scored["sections"] == 6
    assert all(check_results(again).values())
    custom = materialize(ASSETS, selection=[nlp_scores], partition_key="2023-07-01",
                         run_config={"ops": {"nlp_scores": {"config": {"word_lists": {"esg": ["climate", "emissions"]}}}}})
    assert output_metadata(custom, "nlp_scores")["scored"] == 6  # other word lists: scored again

    # A word list given as a file: the reuse key holds the file's content hash, not only its path.
    words = finsec_env / "negative_copy.txt"
    words.write_text((scoring.WORDLIST_DIR / "negative.txt").read_text())
    from_file = {"ops": {"nlp_scores": {"config": {"word_list_files": {"negative": str(words)}}}}}
    first = materialize(ASSETS, selection=[nlp_scores], partition_key="2023-07-01", run_config=from_file)
    assert output_metadata(first, "nlp_scores")["scored"] == 6
    same = materialize(ASSETS, selection=[nlp_scores], partition_key="2023-07-01", run_config=from_file)
    assert output_metadata(same, "nlp_scores")["scored"] == 0  # same path, same content: reused
    before = open_lake().read_partition("nlp_scores", "2023-07-01")
    words.write_text(words.read_text() + "\nrevenue\ngrew\n")  # edit the list in place, same path
    edited = materialize(ASSETS, selection=[nlp_scores], partition_key="2023-07-01", run_config=from_file)
    assert output_metadata(edited, "nlp_scores")["scored"] == 6  # edited list: every section recomputed
    after = open_lake().read_partition("nlp_scores", "2023-07-01")
    assert set(after["scorer_version"]) != set(before["scorer_version"])
    assert after["negative"].sum() > before["negative"].sum()


def test_junk_documents_yield_flags_not_failures(finsec_env, monkeypatch):
    store = ObjectStore(str(finsec_env / "objects"))
    good = materialize(ASSETS, selection=[company_universe]).success and materialize(
        ASSETS, selection=[filing_index, raw_filings], partition_key="2023-07-01")
    assert good.success
    raw = open_lake().read_partition("raw_filings", "2023-07-01")
    junk = {"empty": b"", "binary": bytes(range(256)) * 50, "no items": b"<html><body><p>Hello world.</p></body></html>"}
    rows = []
    for i, (name, data) in enumerate(junk.items()):
        uri = store.put_bytes(f"filings/1/junk-{i}.htm", data)
        rows.append({**raw.iloc[0].to_dict(), "accession": f"0000000001-23-00000{i}", "uri": uri,
                     "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    open_lake().replace_partition("raw_filings", "2023-07-01", pd.concat([raw, pd.DataFrame(rows)], ignore_index=True))
    result = materialize(ASSETS, selection=[filing_sections], partition_key="2023-07-01")
    assert result.success
    meta = output_metadata(result, "filing_sections")
    assert "0000000001-23-000000" in meta["warnings"] and "0000000001-23-000001" in meta["warnings"]
    assert check_results(result)["filing_sections:required_items_present"] is False  # the junk filings lack MD&A
    sections = open_lake().read_partition("filing_sections", "2023-07-01")
    assert sections["accession"].nunique() == len(raw)  # every real filing still landed


def test_summaries_keep_document_order_and_both_methods(finsec_env, monkeypatch):
    from finsec_assets.defs.text.assets import filing_summaries

    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA")
    assets = ASSETS + [filing_summaries]
    assert materialize(assets, selection=[company_universe]).success
    result = materialize(assets, selection=[filing_index, raw_filings, filing_sections, filing_summaries], partition_key="2023-07-01")
    assert result.success
    store = ObjectStore(str(finsec_env / "objects"))
    summaries = open_lake().read_partition("filing_summaries", "2023-07-01")
    sections = open_lake().read_partition("filing_sections", "2023-07-01")
    assert sorted(summaries["method"]) == ["jaccard", "kmedoids"]
    mdna = sections.loc[sections["item"] == "I-2", "text"].iloc[0]
    for summary in summaries["summary"]:
        first, last = summary.split(". ")[0], summary.split(". ")[-1]
        assert 0 <= mdna.find(first[:60]) <= mdna.find(last[:60])  # in document order, taken from the MD&A
        assert 0 < len(summary.split()) < len(mdna.split()) / 4
    again = materialize(assets, selection=[filing_summaries], partition_key="2023-07-01")
    assert output_metadata(again, "filing_summaries")["summarized"] == 0
    assert open_lake().read_partition("filing_summaries", "2023-07-01")["summary"].tolist() == summaries["summary"].tolist()
