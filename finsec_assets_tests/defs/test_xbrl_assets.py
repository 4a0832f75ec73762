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


PEAK_RSS = """
import pathlib, sys
import dagster as dg
from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.text.assets import filing_sections
from finsec_assets.defs.xbrl import assets as xbrl_assets
from finsec_assets_tests.defs.helpers import output_metadata, resources
xbrl_assets.FILINGS_PER_BATCH = int(sys.argv[2])  # the control: every filing of the quarter in one batch
result = dg.materialize([company_universe, filing_index, raw_filings, filing_sections, xbrl_assets.xbrl_facts],
                        selection=[xbrl_assets.xbrl_facts],
                        partition_key=sys.argv[1], resources=resources(), raise_on_error=True)
# VmHWM belongs to this process's memory map; ru_maxrss would carry the forking parent's peak across exec.
hwm = next(l for l in pathlib.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(output_metadata(result, "xbrl_facts")["dagster/row_count"], int(hwm.split()[1]))
"""


def test_xbrl_facts_memory_does_not_grow_with_the_filings_of_a_quarter(finsec_env, monkeypatch):
    """Peak RSS of one xbrl_facts quarter with 12 and 96 copies of a 10-K (1387 facts each), two filings a batch; two
    copies are read, the others reused from the quarter's previous facts (read back per batch; reading 96 documents
    would take minutes). The control puts every filing in one batch, as the asset held the quarter before it streamed."""
    import os
    import subprocess
    import sys

    import pandas as pd

    if not os.path.exists("/proc/self/status"):
        import pytest

        pytest.skip("peak RSS is read from Linux /proc/self/status (VmHWM)")
    monkeypatch.setenv("FINSEC_UNIVERSE", "NVDA")
    monkeypatch.setenv("FINSEC_STEP_WORKERS", "1")  # extraction in the measured process, not in pool workers
    assert materialize(ASSETS, selection=[company_universe]).success
    assert materialize(ASSETS, selection=[filing_index, raw_filings, filing_sections, xbrl_facts],
                       partition_key="2024-01-01").success
    lake = open_lake()
    filings, sections = lake.read_partition("raw_filings", "2024-01-01"), lake.read_partition("filing_sections", "2024-01-01")
    facts = lake.read_partition("xbrl_facts", "2024-01-01")
    assert len(filings) == 1 and len(facts) > 1000
    quarters = {1: "2020-01-01", 8: "2020-04-01"}
    for scale, quarter in quarters.items():
        copies = [f"{filings['accession'][0]}-{i:03d}" for i in range(12 * scale)]
        lake.replace_partition("raw_filings", quarter, pd.concat([filings.assign(accession=a) for a in copies]))
        lake.replace_partition("filing_sections", quarter, pd.concat([sections.assign(accession=a) for a in copies]))
        lake.replace_partition("xbrl_facts", quarter, pd.concat([facts.assign(accession=a) for a in copies[2:]]))
    peaks, rows = {}, {}
    for mode, scale, per_batch in (("stream", 1, 2), ("stream", 8, 2), ("load", 8, 1000)):
        if mode == "load":  # the same work as the streamed run: two documents read, the rest reused
            lake.replace_partition("xbrl_facts", quarters[8], pd.concat([facts.assign(accession=a) for a in copies[2:]]))
        out = subprocess.run([sys.executable, "-c", PEAK_RSS, quarters[scale], str(per_batch)], capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        rows[mode, scale], peaks[mode, scale] = map(int, out.stdout.split()[-2:])
    print({"peak_rss_mb": {k: round(v / 1024) for k, v in peaks.items()}, "rows": rows})
    assert rows["stream", 8] == rows["load", 8] == 8 * rows["stream", 1] == 96 * len(facts)
    assert peaks["load", 8] > 1.5 * peaks["stream", 1]  # the control: the whole quarter in memory fails the bar
    assert peaks["stream", 8] <= 1.5 * peaks["stream", 1], (peaks, rows)


DATASET_PEAK_RSS = """
import pathlib, sys
import dagster as dg
from finsec_assets.defs.edgar.assets import company_universe, filing_index, raw_filings
from finsec_assets.defs.text.assets import filing_sections
from finsec_assets.defs.xbrl.assets import xbrl_facts
from finsec_assets.defs.understanding import datasets
from finsec_assets_tests.defs.helpers import output_metadata, resources
datasets.FILINGS_PER_CHUNK = int(sys.argv[1])  # the control: a quarter's filings in one chunk (72 of the 80)
result = dg.materialize([company_universe, filing_index, raw_filings, filing_sections, xbrl_facts, datasets.ner_dataset],
                        selection=[datasets.ner_dataset], resources=resources(), raise_on_error=True)
hwm = next(l for l in pathlib.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(output_metadata(result, "ner_dataset")["dagster/row_count"], int(hwm.split()[1]))
"""


def test_ner_dataset_memory_does_not_grow_with_the_filings(finsec_env):
    """Peak RSS of ner_dataset over 8 and 80 filings (copies of the two largest sample 10-Ks' facts and sections under new accessions
    and companies), four filings a chunk; the control reads every filing of a quarter in one chunk (chunks never cross a
    quarter)."""
    import gzip
    import os
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    from finsec_assets.text.sections import extract_sections_with_report
    from finsec_assets.xbrl import extract_facts

    if not os.path.exists("/proc/self/status"):
        import pytest

        pytest.skip("peak RSS is read from Linux /proc/self/status (VmHWM)")
    sample = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
    facts, sections = [], []
    for n, rel in enumerate(["77476/000007747624000008/pep-20231230.htm.gz", "104169/000010416924000056/wmt-20240131.htm.gz"]):
        document = gzip.decompress((sample / rel).read_bytes())
        one = extract_facts(document)
        one["dimensions"] = one["dimensions"].map(lambda d: __import__("json").dumps(d, sort_keys=True))
        report = extract_sections_with_report(document, "10-K")
        facts.append(one.assign(source=n))
        sections.append(pd.DataFrame([{"item": s.item, "title": s.title, "text": s.text, "start": s.start, "end": s.end,
                                       "source": n} for s in report.sections]))
    facts, sections = pd.concat(facts, ignore_index=True), pd.concat(sections, ignore_index=True)
    lake = open_lake()
    for quarter, copies in (("2020-01-01", range(8)), ("2020-04-01", range(8, 80))):  # 8 filings, then 72 more
        f, s = [], []
        for i in copies:
            src = i % 2
            keys = {"accession": f"0000000000-20-{i:06d}", "cik": 1000 + i}
            f.append(facts[facts["source"] == src].drop(columns="source").assign(**keys))
            s.append(sections[sections["source"] == src].drop(columns="source").assign(**keys))
        lake.replace_partition("xbrl_facts", quarter, pd.concat(f, ignore_index=True))
        lake.replace_partition("filing_sections", quarter, pd.concat(s, ignore_index=True))
        if quarter == "2020-01-01":
            out = subprocess.run([sys.executable, "-c", DATASET_PEAK_RSS, "4"], capture_output=True, text=True, timeout=600)
            assert out.returncode == 0, out.stderr[-3000:]
            rows_1, stream_1 = map(int, out.stdout.split()[-2:])
    peaks, rows = {}, {}
    for mode, per_chunk in (("stream", 4), ("load", 1000)):
        out = subprocess.run([sys.executable, "-c", DATASET_PEAK_RSS, str(per_chunk)], capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        rows[mode], peaks[mode] = map(int, out.stdout.split()[-2:])
    print({"peak_rss_mb": {"stream 1x": stream_1 // 1024, **{f"{k} 10x": v // 1024 for k, v in peaks.items()}},
           "rows": {"1x": rows_1, **rows}})
    assert rows["stream"] == rows["load"] == 10 * rows_1 > 1000
    assert peaks["load"] > 1.5 * stream_1  # the control: every filing at once fails the bar
    assert peaks["stream"] <= 1.5 * stream_1, (stream_1, peaks)


def _two_quarter_lake(lake, quarters: dict[str, list[int]]) -> tuple:
    """Facts, sections and pooled vectors of one small filing per number, written to the quarter it is listed under;
    returns every quarter's facts and sections (the whole-frame datasets' inputs) and quarter by accession."""
    import numpy as np
    import pandas as pd

    notes = "Revenue was 1,234 million for the year ended December 31, 2023, up from 1,000 million in 2022."
    body = " ".join(["Our suppliers may fail to deliver the parts we need on time and at the agreed price."] * 6)
    risks = f"Supply chain disruptions could reduce our revenue and margins in a given year.\n\n{body}"
    quarter_of, all_facts, all_sections = {}, [], []
    for quarter, numbers in quarters.items():
        facts, sections = [], []
        for n in numbers:
            keys = {"accession": f"0000000000-23-{n:06d}", "cik": 2000 + n}
            quarter_of[keys["accession"]] = quarter
            for item, text in (("7", notes), ("1A", risks)):
                sections.append({**keys, "item": item, "title": "", "text": text, "start": 0, "end": len(text),
                                 "n_words": len(text.split())})
            for fact_id, (concept, display, period_start) in enumerate(
                    [("us-gaap:Revenues", "1,234", "2023-01-01"), ("us-gaap:Revenues", "1,000", "2022-01-01")]):
                at = notes.index(display)
                facts.append({**keys, "fact_id": str(fact_id), "concept": concept, "display_text": display,
                              "is_numeric": True, "section": "7", "start": at, "end": at + len(display),
                              "doc_start": at, "period_start": period_start,
                              "period_end": period_start[:4] + "-12-31", "dimensions": "{}"})
        facts, sections = pd.DataFrame(facts), pd.DataFrame(sections)
        lake.replace_partition("xbrl_facts", quarter, facts)
        lake.replace_partition("filing_sections", quarter, sections)
        vectors = sections[["accession", "cik", "item"]].assign(dim=4)
        vectors["embedding"] = list(np.ones((len(vectors), 4), dtype=np.float32))
        lake.replace_partition("pooled_embeddings", quarter, vectors)
        all_facts.append(facts)
        all_sections.append(sections)
    lake.replace_table("company_universe", pd.DataFrame({"cik": [2000 + n for ns in quarters.values() for n in ns],
                                                          "industry_code": "D"}))
    return pd.concat(all_facts, ignore_index=True), pd.concat(all_sections, ignore_index=True), quarter_of


def test_dataset_chunks_read_one_quarter_each(finsec_env, monkeypatch):
    """Every chunk query of the five datasets names one quarter as a literal (the lake then opens only that quarter's
    files; the facts of _fact_sections' subquery too) and asks only for that quarter's filings, though the two
    quarters' accessions interleave; every filing is still read and the rows are the whole-frame ones."""
    import re

    from finsec_assets.defs.understanding import datasets
    from finsec_assets.storage.lake import PARTITION_COLUMN, Lake
    from finsec_assets.xbrl import datasets as ds

    quarters = {"2023-01-01": [1, 3, 5, 7], "2023-04-01": [0, 2, 4, 6, 8]}  # accession order alternates quarters
    facts, sections, quarter_of = _two_quarter_lake(open_lake(), quarters)
    monkeypatch.setattr(datasets, "FILINGS_PER_CHUNK", 3)
    queries, sql = [], Lake.sql

    def spy(self, query, params=None):
        queries.append((query, list(params or [])))
        return sql(self, query, params)

    monkeypatch.setattr(Lake, "sql", spy)
    assets = [company_universe, *DATASETS]
    assert materialize(assets, selection=DATASETS).success
    monkeypatch.setattr(Lake, "sql", sql)

    literal = re.compile(rf"{PARTITION_COLUMN} = '([^']*)'")
    read = {t: set() for t in ("xbrl_facts", "filing_sections", "pooled_embeddings")}
    chunks = [(q, p) for q, p in queries if "accession in (" in q]
    for query, params in chunks:
        named = literal.findall(query)
        assert len(set(named)) == 1, query
        filings = [p for p in params if p in quarter_of]
        assert filings and 0 < len(filings) <= 3 and {quarter_of[a] for a in filings} == set(named), (query, params)
        if "exists (select 1 from xbrl_facts f" in query:
            assert f"f.{PARTITION_COLUMN} = '{named[0]}'" in query, query
        read[re.search(r'from "?(\w+)"?', query).group(1)].update(filings)
    assert all(read[t] == set(quarter_of) for t in read), read

    lake = open_lake()
    expected = {"ner_dataset": ds.ner_dataset(facts, sections)[0], "summarization_dataset": ds.summarization_dataset(sections)[0],
                "relation_dataset": ds.relation_dataset(facts, sections)[0]}
    for asset, whole in expected.items():  # the same rows as before, in another order (so other ids)
        key = [c for c in whole.columns if c not in ("id", "tokens", "token_starts", "tags", "shape_tokens")]
        got = lake.sql(f"select * from {asset}")[key].astype(str).values
        assert len(whole) and sorted(map(tuple, got)) == sorted(map(tuple, whole[key].astype(str).values)), asset
