"""xbrl_facts and the five understanding datasets materialized on the bundled sample."""

import json

import duckdb

from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.embeddings.assets import pooled_embeddings
from finsec_assets.defs.text.assets import filing_sections
from finsec_assets.defs.understanding.datasets import (classification_dataset, ner_dataset, qa_dataset, relation_dataset,
                                                       summarization_dataset)
from finsec_assets.defs.xbrl.assets import xbrl_facts
from finsec_assets.storage.object_store import ObjectStore
from finsec_assets.storage.tables import read_table

from .helpers import check_results, materialize, output_metadata

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
    store = ObjectStore(str(finsec_env / "objects"))
    facts = read_table(store, "xbrl_facts", ["2024-01-01"])
    sections = read_table(store, "filing_sections", ["2024-01-01"])
    texts = {(a, i): t for a, i, t in zip(sections["accession"], sections["item"], sections["text"])}
    aligned = facts[facts["is_numeric"] & facts["section"].notna()]
    assert all(texts[(r.accession, r.section)][int(r.start):int(r.end)] == r.display_text for r in aligned.itertuples())
    assert isinstance(json.loads(facts["dimensions"].iloc[0]), dict)
    assert read_table(store, "xbrl_facts", ["2018-01-01"]).empty

    again = materialize(ASSETS, selection=[xbrl_facts], partition_key="2024-01-01")
    assert output_metadata(again, "xbrl_facts")["read"] == 0  # unchanged documents are not read again

    built = materialize(ASSETS, selection=DATASETS)
    assert built.success
    con = duckdb.connect(str(finsec_env / "warehouse.duckdb"), read_only=True)
    for asset in ("ner_dataset", "qa_dataset", "relation_dataset", "classification_dataset", "summarization_dataset"):
        meta = output_metadata(built, asset)
        assert meta["rows"] > 20 and meta["ciks_in_two_splits"] == 0, asset
        assert "how_labels_were_derived" in meta and "known_noise" in meta and "data_card" in meta
        leaked = con.execute(f"select count(*) from (select cik from {asset} group by cik having count(distinct split) > 1)")
        assert leaked.fetchone()[0] == 0
    con.close()
