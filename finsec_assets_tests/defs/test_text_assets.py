"""filing_sections and nlp_scores materialized on the sample; bad documents never stop the quarter."""

import hashlib

import pandas as pd

from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.text.assets import filing_sections, nlp_scores
from finsec_assets.storage.object_store import ObjectStore
from finsec_assets.storage.lake import open_lake
from finsec_assets.text import scoring

from .helpers import check_results, data_version, lake_rows, materialize, output_metadata

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
    for asset in ("filing_sections", "nlp_scores"):  # rows read back hash as the rows built: downstream stays fresh
        assert data_version(again, asset) == data_version(result, asset), asset
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


def test_step_workers_follow_the_executor_and_the_setting(monkeypatch):
    import types

    import dagster as dg
    import pytest
    from dagster._core.execution.retries import RetryMode
    from dagster._core.executor.multiprocess import MultiprocessExecutor

    from finsec_assets.defs.common import available_cpus, parse_step_workers, step_workers
    from finsec_assets.defs.executors import run_executor

    monkeypatch.delenv("FINSEC_STEP_WORKERS", raising=False)
    monkeypatch.delenv("FINSEC_EXECUTOR", raising=False)
    seen = {}

    @dg.asset
    def probe(context: dg.AssetExecutionContext) -> None:
        seen["workers"] = step_workers(context)

    assert dg.materialize([probe]).success  # in process: one step at a time, every CPU
    assert seen["workers"] == available_cpus()

    def under(executor):
        return types.SimpleNamespace(op_execution_context=types.SimpleNamespace(
            _step_execution_context=types.SimpleNamespace(executor=executor)))

    default = MultiprocessExecutor(retries=RetryMode.DISABLED, max_concurrent=None)  # one step per CPU
    assert step_workers(under(default)) == 1
    two = MultiprocessExecutor(retries=RetryMode.DISABLED, max_concurrent=2)
    assert step_workers(under(two)) == max(1, available_cpus() // 2)
    assert step_workers(under(object())) == 1  # celery, k8s: steps side by side on workers and pods
    assert step_workers(None, {"FINSEC_EXECUTOR": "celery"}) == 1  # a Celery step reports an in-process executor
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    try:  # a prefork worker is daemonic: it cannot fork a pool at all
        assert step_workers(None) == 1
    finally:
        monkeypatch.undo()
    monkeypatch.delenv("FINSEC_STEP_WORKERS", raising=False)

    monkeypatch.setenv("FINSEC_STEP_WORKERS", "3")
    assert step_workers(under(default)) == 3 and parse_step_workers() == 3
    for bad in ("0", "-2", "many", "1.5"):
        with pytest.raises(ValueError, match=f"FINSEC_STEP_WORKERS='{bad}'.*positive whole number"):
            parse_step_workers({"FINSEC_STEP_WORKERS": bad})
    with pytest.raises(ValueError, match="FINSEC_STEP_WORKERS"):
        run_executor({"FINSEC_STEP_WORKERS": "0"})  # the definitions refuse to load
    assert parse_step_workers({"FINSEC_STEP_WORKERS": "auto"}) is None


def test_summaries_and_embeddings_encode_each_mdna_sentence_once(finsec_env, monkeypatch):
    import numpy as np

    from finsec_assets.defs.common import GPU_OP_TAGS, GPU_POOL
    from finsec_assets.defs.embeddings.assets import pooled_embeddings
    from finsec_assets.defs.text.assets import filing_summaries
    from finsec_assets.ml.embeddings import SentenceVectorCache, load_encoder

    for step in (filing_summaries, pooled_embeddings):  # every encoder pass is a GPU step
        spec = step.get_asset_spec()
        assert step.op.tags.get("finsec/accelerator") == GPU_OP_TAGS["finsec/accelerator"], spec.key
        assert step.op.pool == GPU_POOL, spec.key
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA,WMT")
    assets = ASSETS + [filing_summaries, pooled_embeddings]
    assert materialize(assets, selection=[company_universe]).success
    assert materialize(assets, selection=[filing_index, raw_filings, filing_sections], partition_key="2023-07-01").success
    summaries = materialize(assets, selection=[filing_summaries], partition_key="2023-07-01")
    assert summaries.success
    made = output_metadata(summaries, "filing_summaries")
    assert made["encoded_sentences"] > 100 and made["cached_sentences"] == 0 and "on cpu" in made["encoder"]
    embedded = materialize(assets, selection=[pooled_embeddings], partition_key="2023-07-01")
    assert embedded.success
    meta = output_metadata(embedded, "pooled_embeddings")
    # the MD&As' sentences come from what summaries encoded; only the Risk Factors are encoded here
    assert meta["cached_sentences"] > 100 and meta["encoded_sentences"] < meta["cached_sentences"]
    store = ObjectStore(str(finsec_env / "objects"))
    assert store.list(SentenceVectorCache.PREFIX) and not [k for k in store.list(SentenceVectorCache.PREFIX) if ".tmp-" in k]

    # the vectors are what encoding without the cache gives
    lake = open_lake()
    sections = lake.read_partition("filing_sections", "2023-07-01").set_index(["accession", "item"])
    stored = lake.read_partition("pooled_embeddings", "2023-07-01")
    texts = [sections.loc[(a, i), "text"] for a, i in zip(stored["accession"], stored["item"])]
    fresh = load_encoder(None).embed_documents(texts).vectors
    got = np.stack(stored["embedding"].to_numpy())
    assert (1 - (got * fresh).sum(axis=1)).max() < 1e-5


SECTIONS_PEAK_RSS = """
import pathlib, sys
import dagster as dg
from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.text import assets as text_assets
from finsec_assets_tests.defs.helpers import output_metadata, resources
text_assets.FILINGS_PER_BATCH = int(sys.argv[2])  # the control: every filing of the quarter in one batch
result = dg.materialize([company_universe, filing_index, raw_filings, text_assets.filing_sections],
                        selection=[text_assets.filing_sections],
                        partition_key=sys.argv[1], resources=resources(), raise_on_error=True)
hwm = next(l for l in pathlib.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(output_metadata(result, "filing_sections")["dagster/row_count"], int(hwm.split()[1]))
"""


def test_filing_sections_memory_does_not_grow_with_the_filings_of_a_quarter(finsec_env, monkeypatch):
    """Peak RSS of one filing_sections quarter with 12 and 192 copies of a 10-K (under new accessions), two filings a
    batch; two copies are parsed, the others' sections reused from the quarter's stored version (read back per
    batch). The control puts every filing in one batch, as the asset held the quarter before it streamed."""
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/status"):
        import pytest

        pytest.skip("peak RSS is read from Linux /proc/self/status (VmHWM)")
    monkeypatch.setenv("FINSEC_UNIVERSE", "WMT")
    monkeypatch.setenv("FINSEC_STEP_WORKERS", "1")  # parsing in the measured process, not in pool workers
    assert materialize(ASSETS, selection=[company_universe]).success
    assert materialize(ASSETS, selection=[filing_index, raw_filings, filing_sections], partition_key="2024-01-01").success
    lake = open_lake()
    filings, sections = lake.read_partition("raw_filings", "2024-01-01"), lake.read_partition("filing_sections", "2024-01-01")
    assert len(filings) == 1 and sections["n_chars"].sum() > 200_000
    quarters = {1: "2020-01-01", 16: "2020-04-01"}
    copies = {}
    for scale, quarter in quarters.items():
        copies[scale] = [f"{filings['accession'][0]}-{i:03d}" for i in range(12 * scale)]
        lake.replace_partition("raw_filings", quarter, pd.concat([filings.assign(accession=a) for a in copies[scale]]))
        lake.replace_partition("filing_sections", quarter,
                               pd.concat([sections.assign(accession=a) for a in copies[scale][2:]]))
    peaks, rows = {}, {}
    for mode, scale, per_batch in (("stream", 1, 2), ("stream", 16, 2), ("load", 16, 1000)):
        if mode == "load":  # the same work as the streamed run: two documents parsed, the rest reused
            lake.replace_partition("filing_sections", quarters[16],
                                   pd.concat([sections.assign(accession=a) for a in copies[16][2:]]))
        out = subprocess.run([sys.executable, "-c", SECTIONS_PEAK_RSS, quarters[scale], str(per_batch)],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        rows[mode, scale], peaks[mode, scale] = map(int, out.stdout.split()[-2:])
    print({"peak_rss_mb": {k: round(v / 1024) for k, v in peaks.items()}, "rows": rows})
    assert rows["stream", 16] == rows["load", 16] == 16 * rows["stream", 1] == 192 * len(sections)
    assert peaks["load", 16] > 1.25 * peaks["stream", 1]  # the control: the whole quarter in memory fails the bar
    assert peaks["stream", 16] <= 1.25 * peaks["stream", 1], (peaks, rows)
