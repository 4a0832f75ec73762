"""Agreement with SEC's companyfacts for every corpus filing that has them (skips without ../shared)."""

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from finsec_assets.xbrl import extract_facts
from finsec_assets.xbrl.companyfacts import agreement, companyfacts_for_accession, load_companyfacts

EDGAR = Path(__file__).resolve().parents[3] / "shared" / "edgar"


def corpus_filings_with_companyfacts() -> list[tuple[Path, str, Path]]:
    """(primary document, accession, companyfacts file) for each iXBRL 10-K/10-Q of ../shared/edgar."""
    facts_dir = EDGAR / "api" / "xbrl" / "companyfacts"
    by_cik = {int(p.name[3:13]): p for p in facts_dir.glob("CIK*.json*")}
    out = []
    with open(EDGAR / "MANIFEST.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            path = row["path"]
            if row["form"] not in ("10-K", "10-Q") or not re.search(r"/\d{18}/[^/]+\.htm(\.gz)?$", path):
                continue
            cik, folder = int(path.split("/")[3]), path.split("/")[4]
            if cik in by_cik:
                out.append((EDGAR / path, f"{folder[:10]}-{folder[10:12]}-{folder[12:]}", by_cik[cik]))
    return out


@pytest.mark.skipif(not (EDGAR / "MANIFEST.tsv").exists(), reason="needs the project corpus in ../shared/edgar")
def test_companyfacts_agreement_at_least_99_percent():
    filings = corpus_filings_with_companyfacts()
    assert len(filings) >= 10
    cache: dict = {}
    total = found = 0
    misses = []
    for document, accession, facts_file in filings:
        cf = cache.setdefault(facts_file, load_companyfacts(facts_file.read_bytes()))
        summary, missed = agreement(extract_facts(document.read_bytes()), companyfacts_for_accession(cf, accession))
        total, found = total + summary["sec_facts"], found + summary["found"]
        if len(missed):
            misses.append(missed.assign(accession=accession))
    assert total > 5000
    assert found / total >= 0.99, pd.concat(misses).head(20).to_string() if misses else ""


def test_agreement_counts_value_period_and_unit():
    ours = pd.DataFrame({"concept": ["us-gaap:Revenues", "us-gaap:Revenues", "us-gaap:Assets"], "is_numeric": [True] * 3,
                         "unit": ["USD", "USD", "USD"], "period_start": ["2023-01-01", "2023-01-01", ""],
                         "period_end": ["2023-12-31", "2023-12-31", "2023-12-31"], "value": [10.0, 4.0, 99.0],
                         "dimensions": [{}, {"ax": "m"}, {}]})
    sec = pd.DataFrame({"concept": ["us-gaap:Revenues", "us-gaap:Assets", "us-gaap:Assets"], "unit": ["USD", "USD", "EUR"],
                        "period_start": ["2023-01-01", "", ""], "period_end": ["2023-12-31", "2023-12-31", "2023-12-31"],
                        "value": [10.0, 98.0, 99.0], "frame": [None] * 3})
    summary, misses = agreement(ours, sec)
    assert summary == {"sec_facts": 3, "found": 1, "agreement": 1 / 3}
    assert list(misses["reason"]) == ["other value", "not found"]
