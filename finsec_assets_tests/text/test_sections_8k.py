"""8-K items and press releases: the bundled 8-Ks, hand-made edge cases, and every 8-K of ../shared/edgar."""

import csv
import sys
from pathlib import Path

import pytest

from finsec_assets.edgar.client import EdgarClient
from finsec_assets.text.html import html_to_text
from finsec_assets.text.sections import extract_sections, extract_sections_with_report
from finsec_assets.text.sections_8k import exhibit_section_report

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "edgar"


def html(*paragraphs: str) -> str:
    return "<html><body>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</body></html>"


def test_bundled_earnings_8k_has_its_items_with_exact_offsets():
    doc = EdgarClient().get("www", "/Archives/edgar/data/320193/000032019320000008/a8-kq1202012282019.htm")
    sections = extract_sections(doc, "8-K")
    assert [s.item for s in sections] == ["2.02", "9.01"]
    assert sections[0].title == "Results of Operations and Financial Condition"
    text = html_to_text(doc)
    assert all(text[s.start:s.end] == s.text for s in sections)
    assert "financial results for its first fiscal" in sections[0].text and "Item 9.01" not in sections[0].text


def test_full_submission_gives_items_and_the_press_release():
    data = EdgarClient().get("www", "/Archives/edgar/data/66740/000006674024000023/0000066740-24-000023.txt")
    report = extract_sections_with_report(data, "8-K", accession="0000066740-24-000023")
    assert [s.item for s in report.sections] == ["8.01", "9.01", "EX-99.1"]
    release = report.sections[-1]
    assert "exhibit" in release.flags and "Solventum" in release.text and release.title.startswith("3M Board")
    assert "targetNamespace" not in " ".join(s.text for s in report.sections)  # the EX-101 schemas are no sections


def test_variants_combined_run_in_references_and_signatures():
    doc = html("FORM 8-K", "CURRENT REPORT",
               "Items 2.02 and 7.01. Results of Operations and Financial Condition; Regulation FD Disclosure.",
               "On May 1 the company reported its results.",
               "The information in Item 2.02 of this report shall not be deemed filed.",
               "ITEM 5.02 Departure of Directors or Certain Officers; Election of Directors. On May 2, Jane Doe resigned.",
               "Item 9.01", "Financial Statements and Exhibits.", "(d) Exhibits. 99.1 Press release.",
               "SIGNATURES", "Pursuant to the requirements of the Securities Exchange Act ...")
    sections = extract_sections(doc, "8-K")
    assert [s.item for s in sections] == ["2.02", "7.01", "5.02", "9.01"]
    assert "combined_heading" in sections[0].flags and sections[1].text == ""
    assert "shall not be deemed filed" in sections[0].text  # a reference paragraph stays body text
    assert "run_in_heading" in sections[2].flags and sections[2].text == "On May 2, Jane Doe resigned."
    assert sections[3].title == "Financial Statements and Exhibits" and "Pursuant" not in sections[3].text


def test_a_repeated_item_keeps_the_occurrence_with_text():
    doc = html("Item 8.01 Other Events", "Item 9.01 Financial Statements and Exhibits",
               "Item 8.01 Other Events.", "The board declared a dividend of one dollar per share, payable June 1.",
               "Item 9.01 Financial Statements and Exhibits.", "None.")
    sections = extract_sections(doc, "8-K")
    assert [(s.item, s.text) for s in sections] == [
        ("8.01", "The board declared a dividend of one dollar per share, payable June 1."), ("9.01", "None.")]


def test_pre_2004_items_keep_their_numbers():
    doc = html("FORM 8-K", "Item 5. Other Events.", "The company announced a merger.",
               "Item 7. Financial Statements and Exhibits.", "(c) Exhibits: 99.1 Press release.",
               "Item 12. Results of Operations and Financial Condition.", "See the press release.")
    report = extract_sections_with_report(doc, "8-K")
    assert [s.item for s in report.sections] == ["5", "7", "12"]
    assert "legacy_items" in report.flags and all("legacy_item" in s.flags for s in report.sections)


def test_no_item_headings_keep_the_text_as_one_section():
    doc = html("FORM 8-K", "The company issued a statement about its plans for the coming year.")
    report = extract_sections_with_report(doc, "8-K", accession="0000000001-04-000001")
    assert [s.item for s in report.sections] == ["body"] and report.sections[0].flags == ("no_items",)
    assert "no_items" in report.flags and "0000000001-04-000001" in report.warnings[0]
    assert "statement about its plans" in report.sections[0].text
    assert extract_sections_with_report(b"", "8-K").sections == []  # empty stays empty, flagged
    assert "binary_document" in extract_sections_with_report(b"%PDF-1.4" + bytes(200), "8-K").flags


def test_exhibit_section():
    report = exhibit_section_report(html("EXHIBIT 99.1", "Acme Reports Record Quarter", "Revenue grew 10 percent."),
                                    "EX-99.1", "0000000001-24-000001")
    [section] = report.sections
    assert section.item == "EX-99.1" and section.title == "Acme Reports Record Quarter" and "Revenue grew" in section.text
    assert exhibit_section_report(b"", "EX-99.1").sections == []


@pytest.mark.skipif(not (SHARED / "MANIFEST.tsv").exists(), reason="needs ../shared/edgar (not in a user's clone)")
def test_every_corpus_8k_matches_the_items_edgar_lists():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from eightk import _read, truth_for

    rows = list(csv.DictReader(open(SHARED / "MANIFEST.tsv", newline=""), delimiter="\t"))
    eight_ks = [r for r in rows if r["form"].startswith("8-K")]
    assert len(eight_ks) >= 14
    disagreements = {}
    for row in eight_ks:
        truth, source = truth_for(SHARED, rows, row)
        items = [s.item for s in extract_sections(_read(SHARED / row["path"]), "8-K") if not s.item.startswith("EX-")]
        if set(items) != set(truth):
            disagreements[row["path"].rsplit("/", 1)[1]] = (source, truth, items)
    # 3M's SGML header lists only 'Other Events', while its 8-K also carries an Item 9.01 heading (and exhibit)
    assert disagreements == {"0000066740-24-000023.txt": ("SGML header", ["8.01"], ["8.01", "9.01"])}
