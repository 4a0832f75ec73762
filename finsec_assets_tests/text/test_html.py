import gzip
from pathlib import Path

import pytest

from finsec_assets.text import html_to_text
from finsec_assets.text.html import decode_document, parse_document, select_sgml_document

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
AAPL_10Q_2023 = SAMPLE / "320193/000032019323000077/aapl-20230701.htm.gz"
AAPL_10Q_2000 = SAMPLE / "320193/000091205700023442/0000912057-00-023442.txt.gz"


def paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


def test_block_elements_become_paragraphs_separated_by_blank_lines():
    text = html_to_text(
        "<html><body><div><span>First </span><span>paragraph.</span></div>"
        "<p>Second<br>line</p><div><div>Nested</div> tail</div></body></html>"
    )
    assert paragraphs(text) == ["First paragraph.", "Second", "line", "Nested", "tail"]


def test_inline_tags_and_entities_do_not_split_words_or_headings():
    text = html_to_text("<p><b>I</b><b>TEM</b>&nbsp;7.&#160;&#160;<font>Management&#8217;s Discussion</font></p>")
    assert text == "ITEM 7. Management’s Discussion"


def test_hidden_inline_xbrl_header_scripts_and_display_none_are_dropped():
    text = html_to_text(
        '<html><head><title>t</title><style>p {color: red}</style></head><body>'
        '<div style="display:none"><ix:header><ix:hidden><ix:nonNumeric name="dei:X">HIDDEN FACT</ix:nonNumeric>'
        "</ix:hidden></ix:header></div>"
        '<p style="DISPLAY: NONE">also hidden</p><script>var x = 1;</script>'
        '<p>Revenue was <ix:nonFraction name="us-gaap:Revenues">10</ix:nonFraction> million.</p>'
        "<ix:continuation id='c1'><p>Continued text.</p></ix:continuation></body></html>"
    )
    assert text == "Revenue was 10 million.\n\nContinued text."


def test_data_tables_are_kept_apart_and_layout_tables_read_as_text():
    html = (
        "<p>Before.</p>"
        "<table><tr><td>Net sales</td><td>$</td><td>1,234</td></tr><tr><td>Cost</td><td>(567)</td></tr></table>"
        "<table><tr><td>•</td><td>We depend on suppliers.</td></tr><tr><td>•</td><td>We face competition.</td></tr></table>"
        "<p>After.</p>"
    )
    parsed = parse_document(html)
    assert paragraphs(parsed.text) == ["Before.", "• We depend on suppliers.", "• We face competition.", "After."]
    assert len(parsed.tables) == 1
    table = parsed.tables[0]
    assert table.rows[0] == ("Net sales", "$", "1,234")
    assert table.before_block == 1  # it stood before "• We depend on suppliers."
    assert "Net sales" not in parsed.text


def test_page_numbers_and_repeated_page_footers_are_removed_and_labels_kept():
    pages = []
    for number in range(1, 6):
        pages.append(
            f"<p>Body text of page {number} talks about the business.</p>"
            f"<p>Acme Corp. | 2024 Form 10-K | {number}</p>"
            '<hr style="page-break-after:always"/>'
        )
    pages.append("<p>- 6 -</p><p>Last page.</p>")
    parsed = parse_document("<html><body>" + "".join(pages) + "</body></html>")
    assert "Form 10-K |" not in parsed.text
    assert "- 6 -" not in parsed.text
    assert paragraphs(parsed.text)[:2] == [
        "Body text of page 1 talks about the business.",
        "Body text of page 2 talks about the business.",
    ]
    assert [label for _, label in parsed.page_labels][:5] == ["1", "2", "3", "4", "5"]


def test_stock_answers_repeated_near_page_breaks_are_not_taken_for_footers():
    body = "".join(f"<p>Item {n}. Something</p><p>None.</p><hr/>" for n in range(3, 7))
    text = html_to_text(body)
    assert text.count("None.") == 4
    assert text.count("Item") == 4


def test_pre_blocks_are_read_as_plain_text_paragraphs():
    text = html_to_text("<html><body><pre>ITEM 2. PROPERTIES\nThe company leases\noffices.\n\n     12\n</pre></body></html>")
    assert paragraphs(text) == ["ITEM 2. PROPERTIES", "The company leases offices."]


def test_sgml_submission_picks_the_main_form_document():
    submission = (
        "<SEC-DOCUMENT>0000000000-00-000001.txt\n<SEC-HEADER>\nCONFORMED SUBMISSION TYPE: 10-Q\n</SEC-HEADER>\n"
        "<DOCUMENT>\n<TYPE>EX-27\n<SEQUENCE>2\n<TEXT>\nFINANCIAL DATA SCHEDULE\n</TEXT>\n</DOCUMENT>\n"
        "<DOCUMENT>\n<TYPE>10-Q\n<SEQUENCE>1\n<TEXT>\n<PAGE>\nPART I. FINANCIAL INFORMATION\n\n"
        "ITEM 1. FINANCIAL STATEMENTS\n\n<TABLE>\n<S>   <C>\nNet sales     1,945\n</TABLE>\n\n"
        "Interim information\nis unaudited.\n\n                     3\n</TEXT>\n</DOCUMENT>\n</SEC-DOCUMENT>\n"
    )
    body, doc_type = select_sgml_document(submission, "10-Q")
    assert doc_type == "10-Q"
    parsed = parse_document(submission)
    assert parsed.document_type == "10-Q"
    assert parsed.format == "text"
    assert paragraphs(parsed.text) == [
        "PART I. FINANCIAL INFORMATION",
        "ITEM 1. FINANCIAL STATEMENTS",
        "Interim information is unaudited.",
    ]
    assert parsed.tables and parsed.tables[0].rows[-1] == ("Net sales", "1,945")


def test_real_plain_text_submission_from_2000():
    text = html_to_text(AAPL_10Q_2000.read_bytes())  # gzip bytes are accepted
    assert "<TABLE>" not in text and "<PAGE>" not in text
    assert "PRIVACY-ENHANCED" not in text and "FILER:" not in text  # the SGML header is not the document
    assert "ITEM 2. MANAGEMENT'S DISCUSSION AND ANALYSIS OF FINANCIAL CONDITION AND RESULTS OF OPERATIONS" in text
    assert "\n\n12\n\n" not in text  # page numbers are gone


def test_real_inline_xbrl_document_is_clean():
    parsed = parse_document(gzip.decompress(AAPL_10Q_2023.read_bytes()))
    assert parsed.format == "ixbrl"
    assert "dei:" not in parsed.text and "us-gaap:" not in parsed.text
    assert "Apple Inc. | Q3 2023 Form 10-Q |" not in parsed.text  # the running footer
    assert "\xa0" not in parsed.text and "  " not in parsed.text
    assert "Item 2. Management’s Discussion and Analysis of Financial Condition and Results of Operations" in parsed.text
    assert len(parsed.tables) > 20


@pytest.mark.parametrize(
    ("document", "flag"),
    [
        (b"", "empty_document"),
        (None, "empty_document"),
        ("   \n\t ", "empty_document"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "binary_document"),
        (b"\x00\x01\x02binary\x00\xff" * 100, "binary_document"),
        (gzip.compress(b"PK\x03\x04 zip inside gzip"), "binary_document"),
        (b"\x1f\x8b\x08 broken gzip", "binary_document"),
    ],
)
def test_empty_and_binary_documents_give_empty_text_and_a_flag(document, flag):
    parsed = parse_document(document)
    assert parsed.text == "" and parsed.blocks == []
    assert parsed.flags == [flag]
    assert html_to_text(document) == ""


def test_markup_without_text_is_flagged_empty():
    parsed = parse_document("<html><body><div style='display:none'>x</div><table></table></body></html>")
    assert parsed.text == "" and "empty_document" in parsed.flags


def test_windows_1252_bytes_decode():
    text, flags = decode_document("<p>Management’s “view” — 10¢</p>".encode("cp1252"))
    assert flags == [] and "Management’s “view” — 10¢" in text


def test_utf16_with_bom_is_text_not_binary():
    text, flags = decode_document("<p>Item 7. Management’s Discussion</p>".encode("utf-16"))
    assert flags == [] and "Management’s Discussion" in text


def test_text_tables_are_classified_by_content_and_kept_in_reading_order():
    """Officers' biographies in a Name / Age / Position table are prose; exhibit indexes and figures stay data."""
    bio = (
        "<tr><td>{name}</td><td>{age}</td><td>{position}</td><td><p>{name} has served as {position} since 2019. "
        "Before that, {name} led the company's international business for six years and held finance roles at a "
        "global consumer goods company; {name} began a career in audit at a public accounting firm.</p></td></tr>"
    )
    officers = "".join(
        bio.format(name=n, age=a, position=p)
        for n, a, p in (("Jane Doe", 58, "Chief Executive Officer"), ("John Roe", 51, "Chief Financial Officer"),
                        ("Ann Poe", 47, "General Counsel"))
    )
    exhibits = (
        "<table><tr><td>Exhibit</td><td>Description</td><td>Form</td><td>Filing Date</td></tr>"
        "<tr><td>10.1</td><td>Amended and Restated Credit Agreement, dated as of March 1, 2023, among the Company, the "
        "lenders party thereto and the administrative agent, including the schedules and exhibits thereto</td>"
        "<td>8-K</td><td>3/2/23</td></tr>"
        "<tr><td>10.2</td><td>Second Amendment to the Amended and Restated Credit Agreement, dated as of June 1, 2023, "
        "among the Company, the lenders party thereto and the administrative agent named therein</td>"
        "<td>10-Q</td><td>8/4/23</td></tr></table>"
    )
    commented_figures = (
        "<table><tr><td>Revenue</td><td>1,200</td><td>1,100</td><td>9%</td><td>Higher volumes. Better prices; "
        "and a favourable mix of products across all regions and channels in the quarter.</td></tr>"
        "<tr><td>Cost of sales</td><td>(700)</td><td>(650)</td><td>8%</td><td>Input costs rose. Freight fell; "
        "and productivity savings offset part of the wage inflation in our plants this year.</td></tr></table>"
    )
    html = (
        "<p>Information about our Executive Officers</p>"
        "<table><tr><td>Name</td><td>Age</td><td>Position</td><td>Business Experience</td></tr>" + officers + "</table>"
        "<p>Exhibits follow.</p>" + exhibits + commented_figures + "<p>End.</p>"
    )
    parsed = parse_document(html)
    lines = paragraphs(parsed.text)
    assert lines[1] == "Name | Age | Position | Business Experience"
    assert lines[2].startswith("Jane Doe | 58 | Chief Executive Officer | Jane Doe has served as Chief Executive")
    assert [line.split(" | ")[0] for line in lines[2:5]] == ["Jane Doe", "John Roe", "Ann Poe"]  # reading order
    assert lines[5:] == ["Exhibits follow.", "End."]
    assert len(parsed.tables) == 2  # the exhibit index and the figures with a comment column stay data
    assert {table.rows[0][0] for table in parsed.tables} == {"Exhibit", "Revenue"}
