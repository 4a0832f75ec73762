"""pooled_embeddings materialized over two quarters of small real-shaped sections: FLOAT[dim] arrays in the lake, metadata,
incremental reruns, and models that do not fit."""

import dagster as dg
import pandas as pd
import pytest

from finsec_assets.defs.common import quarter_partitions
from finsec_assets.defs.embeddings.assets import pooled_embeddings
from finsec_assets.storage.object_store import ObjectStore
from finsec_assets.storage.lake import open_lake

from .helpers import check_results, lake_rows, output_metadata, resources

UPSTREAM = [dg.AssetSpec("filing_sections", partitions_def=quarter_partitions), dg.AssetSpec("company_universe")]
COMPANIES = {  # cik: (ticker, industry division, what its MD&A talks about)
    320193: ("AAPL", "D", "iPhone, Mac and iPad net sales; services revenue from the App Store and AppleCare"),
    104169: ("WMT", "G", "Walmart U.S. comparable store sales, grocery traffic and eCommerce pickup and delivery"),
    1009672: ("CRR", "B", "ceramic proppant volumes sold to oil and natural gas well operators and frac sand pricing"),
}


def sections(quarter: str, filing_date: str) -> pd.DataFrame:
    rows = []
    for n, (cik, (ticker, _, topic)) in enumerate(COMPANIES.items()):
        accession = f"{cik:010d}-{quarter[2:4]}-{n + int(quarter[5:7]):06d}"
        base = {"accession": accession, "cik": cik, "form": "10-Q", "filing_date": filing_date, "flags": [], "title": ""}
        mdna = (f"Our results this quarter reflected {topic}. Management expects {topic} to remain the main driver "
                f"of results in {quarter[:4]}. {ticker} continued to invest in its core business.")
        risk = f"Demand for {topic} may decline. Competition could reduce our margins."
        rows += [{**base, "item": "I-2", "text": mdna}, {**base, "item": "II-1A", "text": risk},
                 {**base, "item": "I-1", "text": "Condensed consolidated statements of operations (unaudited)."}]
    rows.append({**rows[0], "item": "II-1A", "accession": rows[0]["accession"][:-1] + "9", "text": "  \n "})
    df = pd.DataFrame(rows)
    df["n_chars"] = df["text"].str.len()
    df["n_words"] = df["text"].str.split().str.len()
    return df


def seed(store: ObjectStore):
    universe = pd.DataFrame([{"cik": cik, "ticker": t, "name": t, "sic": 0, "industry_code": code}
                             for cik, (t, code, _) in COMPANIES.items()])
    lake = open_lake()
    lake.replace_table("company_universe", universe)
    lake.replace_partition("filing_sections", "2023-07-01", sections("2023-07-01", "2023-08-02"))
    lake.replace_partition("filing_sections", "2023-10-01", sections("2023-10-01", "2023-11-03"))


def run(quarter: str, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize([pooled_embeddings, *UPSTREAM], selection=[pooled_embeddings], partition_key=quarter,
                          resources=resources(), raise_on_error=False,
                          run_config={"ops": {"pooled_embeddings": {"config": config}}} if config else None)


def failure_message(result) -> str:
    return "\n".join(str(e.event_specific_data.error.message) for e in result.all_events
                     if e.event_type_value == "STEP_FAILURE")


@pytest.fixture
def store(finsec_env):
    store = ObjectStore(str(finsec_env / "objects"))
    seed(store)
    return store


def test_two_quarters_land_in_the_lake_with_metadata_and_reruns_reuse(store, finsec_env):
    first = run("2023-07-01")
    assert first.success, failure_message(first)
    assert check_results(first) == {"pooled_embeddings:vectors_finite_and_unit_norm": True,
                                    "pooled_embeddings:every_nonempty_section_embedded": True}
    meta = output_metadata(first, "pooled_embeddings")
    assert meta["model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["device"] == "cpu"
    assert meta["sections"] == 6 and meta["embedded"] == 6 and meta["empty_sections"] == 1  # I-1 not chosen
    assert meta["sentences_per_second"] > 0 and meta["projection"].startswith("![2-D projection](data:image/png;base64,")
    assert meta["mdna_filings_judged"] == 0  # one quarter: no company has a second MD&A yet

    second = run("2023-10-01")
    assert second.success, failure_message(second)
    meta = output_metadata(second, "pooled_embeddings")
    assert meta["mdna_filings_judged"] == 6 and meta["mdna_same_company_closer_share"] == 1.0

    assert lake_rows("select typeof(embedding), count(*) from pooled_embeddings group by 1") == [("FLOAT[384]", 12)]
    sims = dict(((a, b), s) for a, b, s in lake_rows(
        "select x.cik, y.cik, avg(array_cosine_similarity(x.embedding, y.embedding)) from pooled_embeddings x "
        "join pooled_embeddings y on x.item = 'I-2' and y.item = 'I-2' and x.accession < y.accession group by 1, 2"))
    for cik in COMPANIES:
        others = [s for (a, b), s in sims.items() if cik in (a, b) and a != b]
        assert sims[(cik, cik)] > max(others)

    again = run("2023-10-01")
    assert again.success
    meta = output_metadata(again, "pooled_embeddings")
    assert meta["reused"] == 6 and meta["embedded"] == 0
    assert all(check_results(again).values())

    open_lake().replace_partition("filing_sections", "2024-01-01", sections("2024-01-01", "2024-02-01").iloc[:0])
    quiet = run("2024-01-01")  # a quarter with no filings: an empty table, not an error
    assert quiet.success, failure_message(quiet)
    meta = output_metadata(quiet, "pooled_embeddings")
    assert meta["sections"] == 0 and "projection" not in meta and meta["mdna_filings_judged"] == 6


def test_models_that_do_not_exist_or_do_not_match_the_stored_dim_fail(store, tmp_path):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from finsec_assets.ml.embeddings import resolve_model

    assert run("2023-07-01").success
    missing = run("2023-10-01", model=str(tmp_path / "nowhere"))
    assert not missing.success and "nowhere" in failure_message(missing) and "does not exist" in failure_message(missing)

    torch.manual_seed(0)
    tiny = tmp_path / "tiny-mlm"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertForMaskedLM(config).save_pretrained(tiny)
    AutoTokenizer.from_pretrained(str(resolve_model(None)[1])).save_pretrained(tiny)
    store.put_dir(tiny, "checkpoints/tiny-mlm")
    mismatch = run("2023-10-01", model="checkpoints/tiny-mlm")  # fetched from the object store, then refused
    message = failure_message(mismatch)
    assert not mismatch.success
    assert "checkpoints/tiny-mlm" in message and "32-d" in message and "quarter 2023-07-01 have dim 384" in message
