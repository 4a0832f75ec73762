import gzip
import json
from functools import lru_cache
from pathlib import Path

import pytest

from finsec_assets.text import html_to_text
from finsec_assets.text.sections import (
    DOCUMENT_FLAGS,
    SECTION_FLAGS,
    TEN_K_ITEMS,
    TEN_Q_ITEMS,
    extract_sections,
    extract_sections_with_report,
)

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
SHARED_GT = Path(__file__).resolve().parents[3] / "shared" / "edgar" / "ground_truth" / "sec-parser-test-data"


def sample_filings() -> list[tuple[str, Path]]:
    """(form, path) of every primary document in the bundled sample, forms from its submissions JSON."""
    forms = {}
    for submissions in (SAMPLE.parents[2] / "submissions").glob("*.json"):
        recent = json.loads(submissions.read_text()).get("filings", {}).get("recent", {})
        forms.update(zip(recent.get("primaryDocument", []), recent.get("form", []), strict=True))
    filings = []
    for path in sorted(SAMPLE.glob("*/*/*.gz")):
        name = path.name.removesuffix(".gz")
        form = "10-Q" if name == "0000912057-00-023442.txt" else forms.get(name, "8-K")  # the 2000 SGML 10-Q has no name
        if form.startswith("8-K"):
            continue  # the sample's 8-Ks (3M's is a full submission .txt) are tested in test_sections_8k.py
        filings.append((form, path))
    return filings


@lru_cache(maxsize=None)
def report_for(path: Path, form: str):
    return extract_sections_with_report(path.read_bytes(), form, accession=path.parent.name)


# ------------------------------------------------------------------ helpers for snippets


def ten_k(*body: str) -> str:
    cover = "<p>UNITED STATES SECURITIES AND EXCHANGE COMMISSION</p><p>FORM 10-K</p><p>ANNUAL REPORT PURSUANT TO SECTION 13</p>"
    return "<html><body>" + cover + "".join(body) + "</body></html>"


def ten_q(*body: str) -> str:
    cover = "<p>FORM 10-Q</p><p>QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d)</p>"
    return "<html><body>" + cover + "".join(body) + "</body></html>"


def prose(words: str, n: int = 30) -> str:
    return "<p>" + " ".join([words] * n) + ".</p>"


def by_item(sections):
    return {s.item: s for s in sections}


def assert_well_formed(document, sections):
    full = html_to_text(document)
    previous_end = -1
    for section in sections:
        assert section.text == full[section.start : section.end], section.item
        assert section.start >= previous_end, f"{section.item} overlaps the previous section"
        previous_end = max(previous_end, section.end)
        assert set(section.flags) <= set(SECTION_FLAGS), section.flags


# ------------------------------------------------------------------------ bundled sample


@pytest.mark.parametrize(("form", "path"), sample_filings(), ids=lambda v: getattr(v, "name", v))
def test_bundled_filings_have_their_key_items(form, path):
    report = report_for(path, form)
    assert set(report.flags) <= set(DOCUMENT_FLAGS), report.flags
    items = {s.item: s for s in report.sections}
    assert_well_formed(path.read_bytes(), report.sections)
    if form == "10-K":
        for item in ("1", "1A", "7"):
            assert len(items[item].text) > 5000, (item, len(items[item].text))
        assert all(s.item in TEN_K_ITEMS for s in report.sections)
    else:
        assert len(items["I-2"].text) > 5000
        assert all(s.item in TEN_Q_ITEMS for s in report.sections)
    mdna = items["7" if form == "10-K" else "I-2"].text
    assert not mdna.lstrip().lower().startswith(("item", "part", "table of contents"))
    assert "incorporated_by_reference" not in items["7" if form == "10-K" else "I-2"].flags


def test_apple_10q_parts_do_not_collide():
    report = report_for(SAMPLE / "320193/000032019323000077/aapl-20230701.htm.gz", "10-Q")
    items = by_item(report.sections)
    assert [s.item for s in report.sections] == list(TEN_Q_ITEMS)
    assert items["I-1"].title == "Financial Statements"
    assert items["II-1"].title == "Legal Proceedings"
    assert items["I-2"].text.startswith("This section and other parts of this Quarterly Report on Form 10-Q")
    assert "Item 3." not in items["I-2"].text and "Legal Proceedings" not in items["I-2"].text
    assert items["II-3"].text == "None." and "not_applicable" in items["II-3"].flags
    assert items["II-1A"].text.startswith("The Company’s business, reputation, results of operations")


def test_apple_10q_mdna_matches_the_labelled_ground_truth():
    gt_file = SHARED_GT / "10-Q" / "AAPL" / "0000320193-23-000077" / "expected-structure-and-text.json"
    if not gt_file.exists():
        pytest.skip("ground truth not present: ../shared/edgar not present")
    truth, current = {}, None
    for element in json.loads(gt_file.read_text()):
        if element["cls_name"] == "TopSectionTitle":
            current = element.get("section_type")
        elif current and element.get("text_content"):
            truth.setdefault(current, []).append(element["text_content"])
    ours = by_item(report_for(SAMPLE / "320193/000032019323000077/aapl-20230701.htm.gz", "10-Q").sections)
    for label, item in (("part1item2", "I-2"), ("part2item1a", "II-1A")):
        expected = " ".join(" ".join(truth[label]).split())
        got = " ".join(ours[item].text.split())
        expected_words, got_words = expected.split(), got.split()
        common = sum(min(expected_words.count(w), got_words.count(w)) for w in set(expected_words))
        assert common / len(expected_words) >= 0.95 and common / len(got_words) >= 0.9, item


def test_plain_text_sgml_submission_from_2000():
    report = report_for(SAMPLE / "320193/000091205700023442/0000912057-00-023442.txt.gz", "10-Q")
    assert report.format == "text"
    items = by_item(report.sections)
    assert list(items) == ["I-1", "I-2", "I-3", "II-1", "II-4", "II-6"]
    mdna = items["I-2"].text
    assert mdna.startswith("THIS SECTION AND OTHER PARTS OF THIS FORM 10-Q CONTAIN FORWARD-LOOKING")
    assert "RESULTS OF OPERATIONS" in mdna and "<TABLE>" not in mdna
    assert items["II-1"].text.startswith("The Company is subject to various legal proceedings")
    assert "SIGNATURES" not in items["II-6"].text


def test_cross_reference_index_10k_without_item_headings():
    report = report_for(SAMPLE / "40545/000004054524000027/ge-20231231.htm.gz", "10-K")
    assert "cross_reference_index" in report.flags
    items = by_item(report.sections)
    assert items["7"].text.startswith("MANAGEMENT’S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION")
    assert len(items["7"].text) > 50000
    assert items["1A"].text.startswith("RISK FACTORS.")
    assert "LEGAL PROCEEDINGS." not in items["1A"].text  # ends where Legal Proceedings starts
    assert items["3"].text.startswith("LEGAL PROCEEDINGS.")
    assert "cross_reference_overlap" in items["7A"].flags and items["7A"].text == ""
    assert "not_applicable" in items["1B"].flags
    assert "incorporated_by_reference" in items["11"].flags  # "(b)": the proxy statement
    assert {s.item for s in report.sections} == set(TEN_K_ITEMS) - {"4A"}


# ------------------------------------------------------------------------- the traps


def test_table_of_contents_entries_are_not_taken_for_headings():
    toc = "".join(
        f'<p><a href="#i{n}">Item {n}. {title}</a></p>'
        for n, title in (("1", "Business"), ("1A", "Risk Factors"), ("7", "Management’s Discussion and Analysis"),
                         ("8", "Financial Statements and Supplementary Data"))
    )
    document = ten_k(
        "<p>TABLE OF CONTENTS</p>", toc,
        "<p>Item 1. Business</p>", prose("We make widgets"),
        "<p>Item 1A. Risk Factors</p>", prose("Widgets may fail"),
        "<p>Item 7. Management’s Discussion and Analysis</p>", prose("Sales grew"),
        "<p>Item 8. Financial Statements and Supplementary Data</p>", prose("See the statements"),
    )  # fmt: skip
    sections = extract_sections(document, "10-K")
    assert_well_formed(document, sections)
    items = by_item(sections)
    assert list(items) == ["1", "1A", "7", "8"]
    assert items["1"].text.startswith("We make widgets") and "Risk Factors" not in items["1"].text
    assert items["7"].text.startswith("Sales grew")


def test_table_of_contents_table_with_page_numbers_is_not_text():
    document = ten_k(
        "<table><tr><td>Item 1.</td><td>Business</td><td>3</td></tr>"
        "<tr><td>Item 7.</td><td>Management’s Discussion and Analysis</td><td>20</td></tr></table>",
        "<p>Item 1. Business</p>", prose("We make widgets"),
        "<p>Item 7. Management’s Discussion and Analysis</p>", prose("Sales grew"),
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-K"))
    assert items["1"].text.startswith("We make widgets")
    assert items["7"].text.startswith("Sales grew")


def test_combined_items_heading():
    document = ten_k(
        "<p>Items 1 and 2. Business and Properties</p>", prose("We own plants"),
        "<p>Item 3. Legal Proceedings</p>", prose("We are sued"),
        "<p>ITEMS 7 AND 7A. MANAGEMENT’S DISCUSSION AND ANALYSIS AND MARKET RISK</p>", prose("Sales grew"),
    )  # fmt: skip
    sections = extract_sections(document, "10-K")
    assert_well_formed(document, sections)
    items = by_item(sections)
    assert [s.item for s in sections] == ["1", "2", "3", "7", "7A"]
    assert items["1"].text.startswith("We own plants") and "combined_heading" in items["1"].flags
    assert items["2"].text == "" and {"combined_heading", "empty"} <= set(items["2"].flags)
    assert items["7"].text.startswith("Sales grew") and items["7A"].text == ""


def test_item_no_variant_and_split_heading_and_nbsp():
    document = ten_k(
        "<p>ITEM NO. 1 - BUSINESS</p>", prose("We make widgets"),
        "<div><span>Item</span><span>&nbsp;1A.</span></div><div><b>Risk&#160;Factors</b></div>", prose("Widgets fail"),
        "<table><tr><td>Item 7.</td><td>Management’s Discussion and Analysis of Financial Condition</td></tr></table>",
        prose("Sales grew"),
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-K"))
    assert list(items) == ["1", "1A", "7"]
    assert items["1"].title == "BUSINESS"
    assert items["1A"].title == "Risk Factors" and items["1A"].text.startswith("Widgets fail")
    assert items["7"].title.startswith("Management's Discussion") and items["7"].text.startswith("Sales grew")


def test_ten_q_part_one_and_part_two_numbers_do_not_collide():
    document = ten_q(
        "<p>PART I — FINANCIAL INFORMATION</p>",
        "<p>Item 1. Financial Statements</p>", prose("Balance sheet notes"),
        "<p>Item 2. Management's Discussion and Analysis of Financial Condition</p>", prose("Quarterly sales grew"),
        "<p>Item 3. Quantitative and Qualitative Disclosures About Market Risk</p>", prose("Rates moved"),
        "<p>Item 4. Controls and Procedures</p>", prose("Controls are effective"),
        "<p>PART II — OTHER INFORMATION</p>",
        "<p>Item 1. Legal Proceedings</p>", prose("A lawsuit"),
        "<p>Item 1A. Risk Factors</p>", prose("No material changes"),
        "<p>Item 2. Unregistered Sales of Equity Securities and Use of Proceeds</p>", prose("We bought back stock"),
        "<p>Item 5. Other Information. None.</p>",
        "<p>Item 6. Exhibits</p>", prose("Exhibit list"),
        "<p>SIGNATURES</p><p>Pursuant to the requirements</p>",
    )  # fmt: skip
    sections = extract_sections(document, "10-Q")
    assert_well_formed(document, sections)
    items = by_item(sections)
    assert list(items) == ["I-1", "I-2", "I-3", "I-4", "II-1", "II-1A", "II-2", "II-5", "II-6"]
    assert items["I-2"].text.startswith("Quarterly sales grew") and "lawsuit" not in items["I-2"].text
    assert "PART II" not in items["I-4"].text
    assert items["II-2"].text.startswith("We bought back stock")
    assert items["II-5"].text == "None." and "not_applicable" in items["II-5"].flags
    assert "SIGNATURES" not in items["II-6"].text and "Pursuant" not in items["II-6"].text


def test_ten_q_part_inferred_from_titles_without_part_headings():
    document = ten_q(
        "<p>Item 1. Financial Statements</p>", prose("Balance sheet notes"),
        "<p>Item 2. Management's Discussion and Analysis</p>", prose("Quarterly sales grew"),
        "<p>Item 1. Legal Proceedings</p>", prose("A lawsuit"),
        "<p>Item 2. Unregistered Sales of Equity Securities</p>", prose("Buybacks"),
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-Q"))
    assert list(items) == ["I-1", "I-2", "II-1", "II-2"]


def test_mdna_incorporated_by_reference_is_flagged_with_its_pointer():
    document = ten_k(
        "<p>Item 1. Business</p>", prose("We make widgets"),
        "<p>Item 7. Management’s Discussion and Analysis of Financial Condition and Results of Operations</p>",
        "<p>The information required by this item is incorporated herein by reference to the section entitled "
        "“Management’s Discussion and Analysis” in the 2003 Annual Report to Shareholders, filed as Exhibit 13.</p>",
        "<p>Item 8. Financial Statements and Supplementary Data</p>", prose("See Exhibit 13"),
    )  # fmt: skip
    report = extract_sections_with_report(document, "10-K", accession="0000000000-04-000001")
    mdna = report.get("7")
    assert "incorporated_by_reference" in mdna.flags
    assert mdna.text.startswith("The information required by this item is incorporated herein by reference")
    assert {"incorporated_by_reference", "mdna_incorporated_by_reference"} <= set(report.flags)
    assert any("0000000000-04-000001" in w and "Exhibit 13" in w for w in report.warnings)


def test_cross_references_inside_sentences_are_not_headings():
    document = ten_k(
        "<p>Item 1. Business</p>",
        "<p>Item 7 of this report discusses our results; see also Item 1A.</p>", prose("We make widgets"),
        "<p>Item 7. Management’s Discussion and Analysis</p>", prose("Sales grew"),
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-K"))
    assert list(items) == ["1", "7"]
    assert items["1"].text.startswith("Item 7 of this report")


def test_inline_xbrl_continuations_and_hidden_header():
    document = ten_k(
        '<div style="display:none"><ix:header><ix:hidden>Item 7. Hidden fact</ix:hidden></ix:header></div>',
        '<p>Item 1. Business</p><ix:nonNumeric name="us-gaap:Policy" continuedAt="c1"><p>We make widgets.</p>'
        "</ix:nonNumeric>",
        '<ix:continuation id="c1"><p>More about widgets.</p></ix:continuation>',
        "<p>Item 7. Management’s Discussion and Analysis</p>", prose("Sales grew"),
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-K"))
    assert items["1"].text == "We make widgets.\n\nMore about widgets."
    assert "Hidden fact" not in items["7"].text


def test_run_in_heading_inside_a_long_paragraph():
    document = ten_k(
        "<p>Item 1. Business</p>", prose("We make widgets"),
        "<p><b>Item 9B. Other Information.</b> During the quarter no director adopted a trading plan "
        + "and nothing else happened " * 20 + "</p>",
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-K"))
    assert items["9B"].title == "Other Information"
    assert items["9B"].text.startswith("During the quarter") and "run_in_heading" in items["9B"].flags


def test_gzip_bytes_and_str_give_the_same_sections():
    document = ten_k("<p>Item 1. Business</p>", prose("We make widgets"), "<p>Item 7. MD&amp;A</p>", prose("Sales"))
    assert extract_sections(gzip.compress(document.encode()), "10-K") == extract_sections(document, "10-K")


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("document", "flag"),
    [(b"", "empty_document"), (None, "empty_document"), (b"%PDF-1.4\x00\x01binary", "binary_document")],
)
def test_empty_and_binary_documents_flag_and_warn(document, flag):
    report = extract_sections_with_report(document, "10-K", accession="0000000000-24-000009")
    assert report.sections == [] and flag in report.flags
    assert report.warnings and "0000000000-24-000009" in report.warnings[0]


def test_ten_q_labelled_ten_k_is_flagged_and_read_as_a_ten_q():
    document = ten_q(
        "<p>PART I</p><p>Item 1. Financial Statements</p>", prose("Notes"),
        "<p>Item 2. Management's Discussion and Analysis</p>", prose("Quarterly sales grew"),
    )  # fmt: skip
    report = extract_sections_with_report(document, "10-K", accession="0000000000-24-000010")
    assert "form_mismatch" in report.flags and report.detected_form == "10-Q"
    assert any("0000000000-24-000010" in w and "10-Q" in w for w in report.warnings)
    assert [s.item for s in report.sections] == ["I-1", "I-2"]


def test_document_without_items_gives_no_sections_and_a_warning():
    report = extract_sections_with_report(ten_k(prose("Just a letter to shareholders")), "10-K", accession="acc-1")
    assert report.sections == [] and "no_items_found" in report.flags
    assert any("acc-1" in w for w in report.warnings)


def test_unsupported_form_is_flagged_not_raised():
    report = extract_sections_with_report(ten_k(prose("Registration statement")), "S-1", accession="acc-2")
    assert report.sections == [] and report.flags == ["unsupported_form"]  # 8-Ks have their own path (sections_8k)


def test_amendment_forms_are_accepted():
    document = ten_k("<p>Item 1. Business</p>", prose("We make widgets"), "<p>Item 7. MD&amp;A</p>", prose("Sales"))
    assert [s.item for s in extract_sections(document, "10-K/A")] == ["1", "7"]
    assert [s.item for s in extract_sections(document, "10-K405")] == ["1", "7"]


def test_running_headers_repeating_the_item_heading_do_not_truncate_it():
    pages = "".join(
        f"<p>Item 7. Management’s Discussion and Analysis (continued)</p>{prose(f'Page {n} of the discussion')}"
        '<hr style="page-break-after:always"/>'
        for n in range(2, 6)
    )
    document = ten_k(
        "<p>Item 1. Business</p>", prose("We make widgets"), "<hr/>",
        "<p>Item 7. Management’s Discussion and Analysis</p>", prose("Page 1 of the discussion"), "<hr/>", pages,
        "<p>Item 8. Financial Statements and Supplementary Data</p>", prose("See the statements"),
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-K"))
    assert list(items) == ["1", "7", "8"]
    assert items["7"].text.startswith("Page 1 of the discussion")
    assert "Page 5 of the discussion" in items["7"].text
    assert "(continued)" not in items["7"].text  # the running headers are page furniture


def test_part_and_item_mentions_in_sentences_do_not_cut_sections():
    document = ten_q(
        "<p>PART I</p><p>Item 2. Management's Discussion and Analysis</p>", prose("Quarterly sales grew"),
        "<p>PART II</p><p>Item 1A. Risk Factors</p>",
        "<p>Part I, Item 1A, Risk Factors, of our 2023 Form 10-K describes the risks we face.</p>",
        "<p>Part II of this report also covers buybacks.</p>",
        prose("Nothing changed since then"),
        "<p>Item 6. Exhibits</p>", prose("Exhibit list"),
    )  # fmt: skip
    items = by_item(extract_sections(document, "10-Q"))
    assert list(items) == ["I-2", "II-1A", "II-6"]
    assert items["II-1A"].text.startswith("Part I, Item 1A, Risk Factors, of our 2023 Form 10-K")
    assert "Nothing changed since then" in items["II-1A"].text


def test_table_of_contents_detector_for_the_asset_check():
    from finsec_assets.text.sections import is_table_of_contents

    toc = "PART I\n\nItem 1. Business 3\n\nItem 1A. Risk Factors 9\n\nItem 2. Properties 20\n\nItem 7. MD&A 25"
    assert is_table_of_contents(toc)
    dotted = "\n\n".join(f"{title} ....... {page}" for title, page in [("Business", 3), ("Risk", 9), ("Legal", 20), ("MD&A", 25)])
    assert is_table_of_contents(dotted)
    for form, path in sample_filings():
        for section in report_for(path, form).sections:
            assert not is_table_of_contents(section.text), (path.name, section.item)


def test_required_items_by_form_and_date():
    from finsec_assets.text.sections import required_items

    assert required_items("10-Q", "2000-05-11") == {"I-2"}
    assert required_items("10-K", "2001-03-01") == {"1", "7"}
    assert required_items("10-K/A", "2024-02-02") == {"1", "1A", "7"}
    assert required_items("10-K405", "2006-02-01", period_of_report="2005-12-31") == {"1", "1A", "7"}
    assert required_items("8-K", "2024-01-01") == set()


OLD_STYLE_10K = """<HTML><BODY>
<P ALIGN=CENTER><FONT SIZE=4><B>FORM 10-K</B></FONT></P>
<P>ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934</P>
<TABLE><TR><TD>PART I</TD><TD></TD><TD>PAGE</TD></TR>
<TR><TD>Item 1.</TD><TD>Business</TD><TD>3</TD></TR>
<TR><TD>Item 2.</TD><TD>Properties</TD><TD>8</TD></TR>
<TR><TD>Item 7.</TD><TD>Management's Discussion and Analysis</TD><TD>12</TD></TR></TABLE>
<P ALIGN=CENTER>i</P>
<PAGE>
<P><B>PART I</B></P>
<P><B>ITEM 1. BUSINESS</B></P>
<P>The Company makes widgets in Ohio.</P>
<P ALIGN=CENTER>3</P>
<PAGE>
<P><B>ITEM 2. PROPERTIES</B></P>
<P>The Company owns a plant.</P>
<P ALIGN=CENTER>8</P>
<PAGE>
<P><B>PART II</B></P>
<P><B>ITEM 7. MANAGEMENT'S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION AND RESULTS OF OPERATIONS</B></P>
<P>Net sales increased 12% in 2002.</P>
<TABLE><TR><TD>Net sales</TD><TD>$1,234</TD><TD>$1,100</TD></TR></TABLE>
<P>Gross margin improved.</P>
<P ALIGN=CENTER>12</P>
<PAGE>
<P ALIGN=CENTER><B>SIGNATURES</B></P>
<P>Pursuant to the requirements of the Act.</P>
</BODY></HTML>"""


def test_old_style_html_with_page_tags_and_a_page_numbered_contents_table():
    report = extract_sections_with_report(OLD_STYLE_10K, "10-K")
    assert report.flags == []
    assert [(s.item, s.title, s.text) for s in report.sections] == [
        ("1", "BUSINESS", "The Company makes widgets in Ohio."),
        ("2", "PROPERTIES", "The Company owns a plant."),
        ("7", "MANAGEMENT'S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION AND RESULTS OF OPERATIONS",
         "Net sales increased 12% in 2002.\n\nGross margin improved."),
    ]  # fmt: skip


def test_filing_without_item_labels_falls_back_to_item_titles():
    document = ten_k(
        "<p>BUSINESS</p>", prose("We make widgets"),
        "<p>RISK FACTORS</p>", prose("Widgets fail"),
        "<p>Legal Proceedings</p>", prose("Lawsuits"),
        "<p>MANAGEMENT’S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION AND RESULTS OF OPERATIONS</p>", prose("Sales"),
        "<p>SIGNATURES</p><p>Signed.</p>",
    )  # fmt: skip
    report = extract_sections_with_report(document, "10-K")
    assert "title_headings" in report.flags
    assert [s.item for s in report.sections] == ["1", "1A", "3", "7"]
    assert all("title_heading" in s.flags for s in report.sections)
    assert report.get("7").text.startswith("Sales") and "Signed" not in report.get("7").text


# ------------------------------------------------------------- prose in tables, 10-Q indexes


def test_officer_biographies_in_a_table_stay_in_their_item():
    """The pattern from a held-out 10-K: Item 4, then executive officers' biographies in a Name/Age/Position table."""
    rows = "".join(
        f"<tr><td>{name}</td><td>{age}</td><td>{title}</td></tr><tr><td></td><td></td><td><p>{name} has been our "
        f"{title} since 2020. From 2015 to 2020, {name} served as president of our largest segment. Earlier, "
        f"{name} held senior finance and operating roles at two industrial companies.</p></td></tr>"
        for name, age, title in (("Jane Doe", 58, "Chief Executive Officer"), ("John Roe", 51, "Chief Financial Officer"),
                                 ("Ann Poe", 47, "Chief Legal Officer"), ("Bob Loe", 55, "Chief Operating Officer"))
    )
    document = ten_k(
        "<p>Item 3. Legal Proceedings</p>", prose("we are party to ordinary routine litigation", 5),
        "<p>Item 4. Mine Safety Disclosures</p><p>Not applicable.</p>",
        "<p>Information about our Executive Officers</p><p>Our executive officers as of February 1, 2024 are:</p>",
        "<table><tr><td>Name</td><td>Age</td><td>Position</td></tr>" + rows + "</table>",
        "<p>Officers serve at the discretion of the Board of Directors.</p>",
        "<p>PART II</p><p>Item 5. Market for Registrant's Common Equity</p>", prose("our shares trade on the exchange"),
        "<p>Item 7. Management's Discussion and Analysis</p>", prose("sales grew"),
    )
    items = by_item(extract_sections(document, "10-K"))
    officers = items["4"].text
    assert officers.startswith("Not applicable.") and officers.endswith("at the discretion of the Board of Directors.")
    for name in ("Jane Doe", "John Roe", "Ann Poe", "Bob Loe"):
        assert f"{name} has been our" in officers and f"{name} held senior finance" in officers
    assert officers.index("Jane Doe has been") < officers.index("Bob Loe has been")  # reading order
    assert "Jane Doe" not in items["5"].text
    assert_well_formed(document, extract_sections(document, "10-K"))


@pytest.mark.parametrize(
    ("name", "officer"),
    [("1637459/000163745924000018/khc-20231230.htm.gz", "Carlos Abrams-Rivera, Chief Executive Officer and Director | 56 |"),
     ("104169/000010416924000056/wmt-20240131.htm.gz", "Daniel J. Bartlett | Executive Vice President, Corporate Affairs")],
)
def test_bundled_10k_officer_tables_are_part_of_item_1(name, officer):
    items = by_item(report_for(SAMPLE / name, "10-K").sections)
    text = items["1"].text
    assert officer in text
    # the biography itself, not only the name: the cell's sentences follow in the same paragraph
    paragraph = text[text.index(officer):].split("\n\n")[0]
    assert len(paragraph.split()) > 25 and "." in paragraph[len(officer):]


def _paged(n: int, *paras: str) -> str:
    return f'<div>{"".join(paras)}<p>{n}</p></div><div style="page-break-after:always"></div>'


RISK_STUB = (
    "<p>An investment in our securities involves risk. For a discussion of the risk factors that could materially "
    "affect our business, financial condition and results of operations, refer to Part I, Item 1A, Risk Factors, in "
    "our Annual Report on Form 10-K for the year ended December 31, 2022. There have been no material changes to "
    "those risk factors during the quarter.</p>"
)


def topic_ordered_10q(labelled: bool) -> str:
    """A 10-Q laid out by topic, a Form 10-Q cross-reference index at its end; optionally three items labelled."""
    label = (lambda n: f"Item {n}. ") if labelled else (lambda n: "")
    index_rows = (
        ("Part I – Financial Information", ""), ("Item 1.", "Financial Statements", "6"),
        ("Item 2.", "Management's Discussion and Analysis of Financial Condition and Results of Operations", "2-3"),
        ("Item 3.", "Quantitative and Qualitative Disclosures About Market Risk", "3"),
        ("Item 4.", "Controls and Procedures", "5"), ("Part II – Other Information", ""),
        ("Item 1.", "Legal Proceedings", "7"), ("Item 1A.", "Risk Factors", "4"),
        ("Item 2.", "Unregistered Sales of Equity Securities and Use of Proceeds", "Not applicable"),
        ("Item 3.", "Defaults Upon Senior Securities", "Not applicable"),
        ("Item 4.", "Mine Safety Disclosures", "Not applicable"), ("Item 5.", "Other Information", "None"),
        ("Item 6.", "Exhibits", "8"),
    )
    index = "<table>" + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in index_rows) + "</table>"
    return "<html><body>" + "".join([
        _paged(1, "<p>FORM 10-Q</p><p>QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d)</p>"),
        _paged(2, f"<p>{label(2)}Management's Discussion and Analysis of Financial Condition and Results of Operations</p>",
               prose("revenue grew in every segment this quarter")),
        _paged(3, prose("operating margin expanded on lower input costs"),
               "<p>Quantitative and Qualitative Disclosures About Market Risk</p>", prose("rates move our costs", 8)),
        _paged(4, "<p>Risk Factors</p>", RISK_STUB),
        _paged(5, f"<p>{label(4)}Controls and Procedures</p>", prose("disclosure controls were effective", 8)),
        _paged(6, "<p>Condensed Consolidated Financial Statements</p>",
               "<table><tr><td>Revenue</td><td>1,200</td></tr><tr><td>Net income</td><td>300</td></tr></table>",
               prose("the notes are an integral part of these statements")),
        _paged(7, "<p>Legal Proceedings</p>", prose("we are defending a patent suit in Delaware", 10)),
        _paged(8, "<p>PART II — OTHER INFORMATION</p>" if labelled else "", f"<p>{label(6)}Exhibits</p>",
               "<p>31.1 Certification of the Chief Executive Officer.</p>"),
        _paged(9, "<p>Form 10-Q Cross-Reference Index</p>", index),
        "<p>SIGNATURES</p><p>The registrant has duly caused this report to be signed.</p>",
    ]) + "</body></html>"


@pytest.mark.parametrize("labelled", [False, True], ids=["topics-only", "three-items-labelled"])
def test_ten_q_laid_out_by_topic_takes_items_from_its_cross_reference_index(labelled):
    document = topic_ordered_10q(labelled)
    report = extract_sections_with_report(document, "10-Q")
    assert "cross_reference_index" in report.flags
    items = by_item(report.sections)
    assert_well_formed(document, report.sections)
    assert items["I-2"].text.startswith("revenue grew") and items["I-2"].text.endswith("lower input costs.")
    assert items["I-1"].text.startswith("the notes are an integral part")
    assert "Condensed Consolidated Financial Statements" not in items["I-4"].text
    assert items["II-1"].text.startswith("we are defending a patent suit")
    stub = items["II-1A"]
    assert stub.text.startswith("An investment in our securities") and "incorporated_by_reference" in stub.flags
    assert "not_applicable" in items["II-3"].flags and items["II-3"].text == ""
    assert set(items) == set(TEN_Q_ITEMS)


def test_ten_q_index_footnote_makes_a_by_reference_stub():
    """GE's 10-Q: 'Risk Factors | Not applicable(a)', '(a) For a discussion of our risk factors, refer to our 10-K'."""
    path = SHARED_GT.parents[1] / "Archives/edgar/data/40545/000004054523000198/ge-20230630.htm.gz"
    if not path.exists():
        pytest.skip("needs ../shared/edgar (GE 10-Q 2023-06-30)")
    report = report_for(path, "10-Q")
    items = by_item(report.sections)
    assert_well_formed(path.read_bytes(), report.sections)
    assert items["II-1A"].text.startswith("(a) For a discussion of our risk factors, refer to our Annual Report")
    assert "incorporated_by_reference" in items["II-1A"].flags
    assert "(a) For a discussion" not in items["II-6"].text
    assert len(items["I-1"].text) > 20000 and len(items["II-1"].text) > 5000
