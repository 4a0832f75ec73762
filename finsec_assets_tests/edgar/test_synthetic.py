"""The synthetic EDGAR universe: determinism, identities, consistency of every resource, served by the replay server."""

import io
import json
import re
import subprocess
import sys
import time
import urllib.request
import zipfile

import pytest

from finsec_assets.edgar.client import SAMPLE_DIR, EdgarClient
from finsec_assets.edgar.parsing import EdgarDataError, parse_full_index
from finsec_assets.edgar.replay import ReplayServer
from finsec_assets.edgar.synthetic import (
    BULK_COMPANYFACTS_PATH,
    BULK_SUBMISSIONS_PATH,
    SyntheticUniverse,
    parse_quarters,
    quarter_range,
)
from finsec_assets.text.html import parse_document
from finsec_assets.text.scoring import real_sentences
from finsec_assets.xbrl import extract_facts
from finsec_assets.xbrl.companyfacts import agreement, companyfacts_for_accession

UA = "finsec tests tests@example.com"
SAMPLE_CIKS = {int(p.name[3:13]) for p in (SAMPLE_DIR / "submissions").glob("CIK??????????.json")}


@pytest.fixture(scope="module")
def universe():
    u = SyntheticUniverse(companies=30, quarters="2022Q1:2023Q4", seed=7)
    yield u
    u.close()


def live(server):
    return EdgarClient(source="live", www_url=server.url, data_url=server.url, user_agent=UA, backoff_factor=0.02)


def test_quarters_parse_and_reject_bad_input():
    assert quarter_range("2015Q3", "2016Q2") == ["2015Q3", "2015Q4", "2016Q1", "2016Q2"]
    assert parse_quarters("2015Q1:2024Q4")[-1] == "2024Q4" and len(parse_quarters("2015Q1:2024Q4")) == 40
    assert SyntheticUniverse(2, start="2020Q2", n_quarters=3).quarters == ["2020Q2", "2020Q3", "2020Q4"]
    with pytest.raises(EdgarDataError, match="YYYYQn"):
        parse_quarters("2015-01-01:2016Q1")
    with pytest.raises(EdgarDataError, match="before the first"):
        parse_quarters("2016Q1:2015Q1")
    with pytest.raises(ValueError, match="companies"):
        SyntheticUniverse(0, "2020Q1")
    with pytest.raises(EdgarDataError, match="no submissions"):
        SyntheticUniverse(2, "2020Q1", source_dir=SAMPLE_DIR / "Archives")


def test_deterministic_from_the_seed(universe):
    again = SyntheticUniverse(companies=30, quarters="2022Q1:2023Q4", seed=7)
    other = SyntheticUniverse(companies=30, quarters="2022Q1:2023Q4", seed=8)
    assert again.ciks == universe.ciks and other.ciks != universe.ciks
    c = universe.companies[3]
    for path in ("/files/company_tickers.json", f"/submissions/CIK{c.cik:010d}.json",
                 "/Archives/edgar/full-index/2022/QTR3/master.idx", c.filings[2].document_path,
                 f"/api/xbrl/companyfacts/CIK{c.cik:010d}.json"):
        assert again.resolve(path) == universe.resolve(path), path
    assert other.resolve("/Archives/edgar/full-index/2022/QTR3/master.idx") != universe.resolve(
        "/Archives/edgar/full-index/2022/QTR3/master.idx")


def test_identities_are_distinct_and_never_real(universe):
    cos = universe.companies
    assert len(set(universe.ciks)) == 30 and not set(universe.ciks) & SAMPLE_CIKS
    assert all(3_000_000 <= cik < 10_000_000 for cik in universe.ciks)
    assert len({c.name for c in cos}) == 30 and len({c.ticker for c in cos}) == 30
    real = json.loads(EdgarClient().get("www", "/files/company_tickers.json"))
    assert not {c.ticker for c in cos} & {v["ticker"] for v in real.values()}
    accessions = [f.accession for c in cos for f in c.filings]
    assert len(set(accessions)) == len(accessions) == universe.filings == 30 * 8
    for c in cos:
        assert all(f.accession.startswith(f"{c.cik:010d}-") for f in c.filings)
        assert [f.quarter for f in c.filings] == universe.quarters  # one filing per quarter
        assert {f.form for f in c.filings} <= {"10-K", "10-Q"}
        assert c.sic == c.source.sic  # the industry of the documents it files
    assert len({c.source.cik for c in cos}) == len(universe.sources)  # every sample company is used


def test_resources_agree_with_each_other(universe):
    """submissions <-> full-index <-> documents <-> companyfacts <-> company_tickers, through the client."""
    with ReplayServer(universe=universe) as server:
        client = live(server)
        tickers = client.company_tickers()
        assert tickers["AAPL"] == 320193  # the real list is still there
        indexed = {}
        for quarter in universe.quarters:
            year, q = int(quarter[:4]), int(quarter[-1])
            rows = parse_full_index(client.full_index(year, q, "master"), "master")
            assert rows and all(r.date_filed[:4] == quarter[:4] for r in rows)
            for kind in ("company", "form"):
                assert sorted(parse_full_index(client.full_index(year, q, kind), kind)) == sorted(rows)
            indexed.update({r.accession: r for r in rows})
        checked_facts = 0
        for company in universe.companies[:12]:
            assert tickers[company.ticker] == company.cik
            sub = client.submissions(company.cik)
            assert sub["name"] == company.name and sub["sic"] == company.sic and sub["tickers"] == [company.ticker]
            refs = client.filings(company.cik)
            assert {r.accession for r in refs} == {a for a, r in indexed.items() if r.cik == company.cik}
            for ref in refs:
                row = indexed[ref.accession]
                assert (row.cik, row.form, row.date_filed, row.name) == (ref.cik, ref.form, ref.filing_date, company.name)
            ref = refs[0]
            doc, how = client.filing_document(ref)
            assert how == "primary"
            marker = universe.by_accession[ref.accession].marker
            facts = extract_facts(doc, form=ref.form)
            dei = dict(zip(facts["concept"], facts["text"]))
            if len(facts):  # inline XBRL: still valid, and it carries the synthetic identity
                assert dei["dei:EntityCentralIndexKey"] == f"{company.cik:010d}"
                assert dei["dei:EntityRegistrantName"] == company.name
                assert marker not in dei["dei:EntityRegistrantName"]
            sentences = real_sentences(parse_document(doc, ref.form).text)
            assert sum(marker in s for s in sentences) >= 0.95 * len(sentences)
            if company.source.facts_path is not None:
                cf = client.company_facts(company.cik)
                assert cf["cik"] == company.cik and cf["entityName"] == company.name
                accns = {f["accn"] for t in cf["facts"].values() for c in t.values() for u in c["units"].values() for f in u}
                assert accns <= {r.accession for r in refs}  # only the company's own filings
                sec = companyfacts_for_accession(cf, ref.accession)
                if len(sec) and len(facts):
                    summary, _ = agreement(facts, sec)
                    assert summary["agreement"] >= 0.9, summary
                    checked_facts += 1
            else:
                assert server.hits(f"/api/xbrl/companyfacts/CIK{company.cik:010d}.json") == 0
        assert checked_facts >= 3


def test_no_stage_gains_from_repeated_text(universe):
    """Two filings of one source document (two companies, or one company's two quarters) share no sentence
    beyond the cover page's boilerplate."""
    by_source = {}
    for f in universe.all_filings():
        by_source.setdefault(f.source.path, []).append(f)
    filings = next(fs for fs in by_source.values() if len({f.cik for f in fs}) >= 2)
    a = filings[0]
    b = next(f for f in filings if f.cik != a.cik)
    c = next((f for f in filings if f.cik == a.cik and f is not a), None)
    sa = set(real_sentences(parse_document(universe.document_bytes(a), a.form).text))
    for other in filter(None, (b, c)):
        so = set(real_sentences(parse_document(universe.document_bytes(other), other.form).text))
        assert len(sa & so) <= 0.05 * len(sa), (len(sa & so), len(sa))


def test_documents_are_not_copied_to_disk(tmp_path):
    """Bytes on disk do not grow with N: serving documents, submissions and indexes writes nothing."""
    for n in (5, 300):
        u = SyntheticUniverse(companies=n, quarters="2023Q1:2023Q4", seed=1)
        for company in u.companies[:: max(1, n // 5)]:
            for f in company.filings:
                assert u.resolve(f.document_path)
            assert u.resolve(f"/submissions/CIK{company.cik:010d}.json")
        assert u.resolve("/Archives/edgar/full-index/2023/QTR2/master.idx")
        assert u._tmp is None  # no temporary folder was even created
        assert len(u._docs._data) <= u._docs.size  # the LRU stays small
        u.close()


def test_bulk_archives_hold_every_company(universe):
    with zipfile.ZipFile(io.BytesIO(universe.resolve(BULK_SUBMISSIONS_PATH))) as zf:
        names = zf.namelist()
        assert sorted(names) == sorted(f"CIK{c:010d}.json" for c in universe.ciks)
        c = universe.companies[5]
        assert json.loads(zf.read(f"CIK{c.cik:010d}.json")) == json.loads(universe.resolve(f"/submissions/CIK{c.cik:010d}.json"))
    with zipfile.ZipFile(io.BytesIO(universe.resolve(BULK_COMPANYFACTS_PATH))) as zf:
        with_facts = [c for c in universe.companies if c.source.facts_path is not None]
        assert sorted(zf.namelist()) == sorted(f"CIK{c.cik:010d}.json" for c in with_facts)
        c = with_facts[0]
        assert zf.read(f"CIK{c.cik:010d}.json") == universe.resolve(f"/api/xbrl/companyfacts/CIK{c.cik:010d}.json")
    universe.close()
    assert universe._tmp is None


def test_replay_serves_the_universe_with_faults_and_404s(universe):
    company = universe.companies[0]
    path = company.filings[0].document_path
    with ReplayServer(universe=universe) as server:
        server.inject(path, "503", "drop")
        client = live(server)
        assert client.get("www", path) == universe.document_bytes(company.filings[0])
        assert [s for _, p, s, _ in server.requests if p == path] == [503, 0, 200]
        for missing in (path.replace(company.filings[0].primary_document, "other.htm"),
                        f"/submissions/CIK{company.cik + 1:010d}.json"):
            with urllib.request.urlopen(server.url + "/files/company_tickers.json") as resp:
                assert resp.status == 200
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(server.url + missing)
            assert err.value.code == 404
        # the sample's own files are still served behind the universe
        assert client.get("www", "/Archives/edgar/data/320193/000032019323000077/aapl-20230701.htm")[:200]


def test_replay_of_the_plain_sample_serves_full_index_and_bulk_archives(replay_server):
    client = live(replay_server)
    rows = parse_full_index(client.full_index(2023, 3, "master"), "master")
    assert {"0000320193-23-000077", "0001045810-23-000175"} <= {r.accession for r in rows}
    assert all("2023-07-01" <= r.date_filed <= "2023-09-30" for r in rows)
    with zipfile.ZipFile(io.BytesIO(client.get("www", BULK_SUBMISSIONS_PATH))) as zf:
        assert "CIK0000320193.json" in zf.namelist() and "CIK0000320193-submissions-001.json" in zf.namelist()
    with zipfile.ZipFile(io.BytesIO(client.get("www", BULK_COMPANYFACTS_PATH))) as zf:
        assert json.loads(zf.read("CIK0000320193.json"))["entityName"] == "Apple Inc."


def test_cli_serves_a_synthetic_universe(tmp_path):
    from ..conftest import free_port

    port = free_port()
    universe_file = tmp_path / "universe.txt"
    proc = subprocess.Popen([sys.executable, "-m", "finsec_assets.edgar.replay", "--synthetic", "4", "--quarters",
                             "2023Q1:2023Q2", "--seed", "3", "--port", str(port), "--universe-file", str(universe_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline and not any("FINSEC_BACKFILL_END" in line for line in lines):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        assert f"FINSEC_UNIVERSE={universe_file}" in text and "FINSEC_EDGAR_SOURCE=live" in text, text
        ciks = [int(line) for line in universe_file.read_text().splitlines() if not line.startswith("#")]
        assert ciks == SyntheticUniverse(4, "2023Q1:2023Q2", seed=3).ciks
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/submissions/CIK{ciks[0]:010d}.json") as resp:
            assert json.loads(resp.read())["cik"] == f"{ciks[0]:010d}"
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/Archives/edgar/full-index/2023/QTR2/master.idx").read()
        assert len(re.findall(rb"^\d+\|", body, re.M)) == 4
    finally:
        proc.terminate()
        proc.wait(10)


def test_env_points_the_project_at_the_replay(universe, tmp_path):
    from finsec_assets.settings import Settings, SettingsError

    env = universe.env("http://127.0.0.1:8765/", tmp_path / "u.txt", max_rps="unlimited")
    s = Settings.from_env(env)
    assert s.edgar_source == "live" and s.edgar_www_url == s.edgar_data_url == "http://127.0.0.1:8765"
    assert s.edgar_max_rps == 0 and [int(c) for c in s.universe] == universe.ciks
    assert (s.backfill_start, s.backfill_end) == ("2022-01-01", "2023-10-01")
    with pytest.raises(SettingsError, match="not loopback"):  # never lifted against a remote host
        universe.env("http://10.1.2.3:8765", tmp_path / "u.txt", max_rps=50)


def test_synthetic_documents_keep_their_sources_items():
    """The marker goes at sentence ends, never after an "Item 7." heading: section extraction must find (nearly)
    every item of the source document, and always the MD&A and risk factors."""
    from finsec_assets.edgar.client import _gunzip
    from finsec_assets.edgar.synthetic import SyntheticUniverse
    from finsec_assets.text.sections import extract_sections

    universe = SyntheticUniverse(companies=13, quarters="2024Q1:2024Q2", seed=0)
    kept = total = 0
    seen = set()
    for filing in universe.all_filings():
        if filing.source.path in seen:
            continue
        seen.add(filing.source.path)
        raw = filing.source.path.read_bytes()
        original = _gunzip(raw, str(filing.source.path)) if filing.source.path.suffix == ".gz" else raw
        before = {s.item for s in extract_sections(original, filing.form)}
        after = {s.item for s in extract_sections(universe.document_bytes(filing), filing.form)}
        kept, total = kept + len(before & after), total + len(before)
        must = {"7", "1A"} if filing.form.startswith("10-K") else {"I-2"}
        assert must & before <= after, f"{filing.source.path.name}: lost {sorted((must & before) - after)}"
    assert len(seen) >= 10 and kept >= 0.95 * total, (kept, total)
