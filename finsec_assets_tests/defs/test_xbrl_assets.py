"""xbrl_facts and the five understanding datasets materialized on the bundled sample."""

import json

from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.embeddings.assets import pooled_embeddings
from finsec_assets.defs.text.assets import filing_sections
from finsec_assets.defs.understanding.datasets import (classification_dataset, ner_dataset, qa_dataset, relation_dataset,
                                                       summarization_dataset)
from finsec_assets.defs.xbrl.assets import xbrl_facts
from finsec_assets.storage.lake import open_lake

from .helpers import check_results, lake_value, materialize, output_metadata

DATASETS = [ner_dataset, qa_dataset, relation_dataset, classification_dataset, summarization_dataset]
ASSETS = [company_universe, filing_index, raw_filings, filing_sections, xbrl_facts, pooled_embeddings, *DATASETS]


def test_facts_and_datasets_on_the_sample(finsec_env, monkeypatch):
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT,TXN,MCD,PEP,1009672")
    assert materialize(ASSETS, selection=[company_universe]).success
    for quarter in ("2018-01-01", "2024-01-01"):  # CARBO's 2017 10-K is plain HTML: no facts, no failure
        result = materialize(ASSETS, selection=[filing_index, raw_filings, filing_sections, xbrl_facts], partition_key=quarter)
        assert result.success
        assert all(check_results(result).values()), check_results(result)
    meta = output_metadata(result, "xbrl_facts")
    assert meta["filings_with_ixbrl"] == 5 and meta["aligned_numeric_in_prose"] > 500
    lake = open_lake()
    facts = lake.read_partition("xbrl_facts", "2024-01-01")
    sections = lake.read_partition("filing_sections", "2024-01-01")
    texts = {(a, i): t for a, i, t in zip(sections["accession"], sections["item"], sections["text"])}
    aligned = facts[facts["is_numeric"] & facts["section"].notna()]
    assert all(texts[(r.accession, r.section)][int(r.start):int(r.end)] == r.display_text for r in aligned.itertuples())
    assert isinstance(json.loads(facts["dimensions"].iloc[0]), dict)
    assert lake.read_partition("xbrl_facts", "2018-01-01").empty

    again = materialize(ASSETS, selection=[xbrl_facts], partition_key="2024-01-01")
    assert output_metadata(again, "xbrl_facts")["read"] == 0  # unchanged documents are not read again

    built = materialize(ASSETS, selection=DATASETS)
    assert built.success
    for asset in ("ner_dataset", "qa_dataset", "relation_dataset", "classification_dataset", "summarization_dataset"):
        meta = output_metadata(built, asset)
        assert meta["rows"] > 20 and meta["ciks_in_two_splits"] == 0, asset
        assert "how_labels_were_derived" in meta and "known_noise" in meta and "data_card" in meta
        leaked = lake_value(f"select count(*) from (select cik from {asset} group by cik having count(distinct split) > 1)")
        assert leaked == 0


def test_datasets_read_quarters_through_the_lake_not_as_inputs():
    """Every quarter of sections/facts reaches a dataset through a pushed-down lake query, never as a loaded input."""
    partitioned = {"filing_sections", "xbrl_facts", "pooled_embeddings"}
    for asset in DATASETS:
        loaded = {d.name for d in asset.op.input_defs if not d.dagster_type.is_nothing}  # deps are Nothing inputs
        inputs = {asset.keys_by_input_name[name].path[-1] for name in loaded}
        assert not inputs & partitioned, (asset.key, inputs)
        deps = {key.path[-1] for key in asset.asset_deps[asset.key]}
        assert "filing_sections" in deps, asset.key
