"""An 8-K's documents: index.json listings, full-submission <DOCUMENT> blocks, skipped images and PDFs."""

import json
import shutil

import pytest

from finsec_assets.edgar.client import EdgarClient, SAMPLE_DIR
from finsec_assets.edgar.exhibits import eight_k_documents
from finsec_assets.edgar.parsing import (
    FilingRef,
    exhibit_type_from_name,
    full_submission_documents,
    item_id_from_title,
    parse_items,
    submission_header,
)
from finsec_assets.edgar.replay import ReplayServer

UA = "finsec tests tests@example.com"
MMM = FilingRef("0000066740-24-000023", 66740, "8-K", "2024-03-08", "2024-03-08", "mmm-20240308.htm", "8.01,9.01")


def live(server):
    return EdgarClient(source="live", www_url=server.url, data_url=server.url, user_agent=UA, backoff_factor=0.02)


def test_items_and_titles():
    assert parse_items("9.01,2.02") == ["2.02", "9.01"] and parse_items("") == [] and parse_items(None) == []
    assert item_id_from_title("Results of Operations and Financial Condition") == "2.02"
    assert item_id_from_title("Other Events") == "8.01"
    # the header's older and newer wordings of 5.02 both map
    assert item_id_from_title("Departure of Directors or Principal Officers; Election of Directors; "
                              "Appointment of Principal Officers") == "5.02"
    assert item_id_from_title("Departure of Directors or Certain Officers; Election of Directors; Appointment of "
                              "Certain Officers: Compensatory Arrangements of Certain Officers") == "5.02"
    assert item_id_from_title("Something Else Entirely") is None
    assert exhibit_type_from_name("d845033dex991.htm") == "EX-99.1"
    assert exhibit_type_from_name("ex99-2.htm") == "EX-99.2"
    assert exhibit_type_from_name("a8-kexhibit991q4fy17.htm") == "EX-99.1"
    assert exhibit_type_from_name("pressrelease3-8x24.htm") is None
    assert exhibit_type_from_name("ex1099.htm") is None


def test_sample_8k_from_its_full_submission():
    """The sample has no index.json for 3M's 8-K: primary and press release come from the .txt's <DOCUMENT>s."""
    docs, notes = eight_k_documents(EdgarClient(), MMM)
    assert [(d.document_type, d.document, d.source, d.primary) for d in docs] == [
        ("8-K", "mmm-20240308.htm", "full_submission", True),
        ("EX-99.1", "pressrelease3-8x24.htm", "full_submission", False)]
    assert b"Item 8.01" in docs[0].data and b"Solventum" in docs[1].data
    assert any("index.json not found" in n for n in notes)
    data = EdgarClient().get("www", MMM.full_submission_path)
    header = submission_header(data)
    assert header.items == ("8.01",) and header.acceptance_datetime == "2024-03-08T12:01:45" and header.form == "8-K"
    assert [d.type for d in full_submission_documents(data)][:3] == ["8-K", "EX-99.1", "EX-101.SCH"]


def test_primary_alone_without_exhibit_sources_is_not_a_failure():
    ref = FilingRef("0000320193-20-000008", 320193, "8-K", "2020-01-28", "2020-01-28", "a8-kq1202012282019.htm", "2.02,9.01")
    docs, notes = eight_k_documents(EdgarClient(), ref)
    assert [(d.document_type, d.source) for d in docs] == [("8-K", "primary")]
    assert any("exhibits unknown" in n for n in notes)


@pytest.fixture
def listed_folder(tmp_path):
    """A filing folder served with an index.json, like EDGAR's: exhibits typed by name, by the .txt, and unreadable."""
    root = tmp_path / "edgar"
    shutil.copytree(SAMPLE_DIR / "files", root / "files")
    folder = root / "Archives/edgar/data/66740/000006674024000023"
    folder.mkdir(parents=True)
    blocks = full_submission_documents(EdgarClient().get("www", MMM.full_submission_path))
    (folder / "mmm-20240308.htm").write_bytes(blocks[0].body)
    (folder / "pressrelease3-8x24.htm").write_bytes(blocks[1].body)
    (folder / "d1dex992.htm").write_bytes(b"<html><body><p>Second release: guidance reaffirmed.</p></body></html>")
    (folder / "logo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    (folder / "deck.pdf").write_bytes(b"%PDF-1.4 ...")
    (folder / "R1.htm").write_bytes(b"<html>xbrl viewer page</html>")
    (folder / "d1dex101.htm").write_bytes(b"<html>credit agreement</html>")
    header = (b"<SEC-DOCUMENT>\n<SEC-HEADER>\nITEM INFORMATION:\t\tOther Events\n</SEC-HEADER>\n"
              b"<DOCUMENT>\n<TYPE>8-K\n<SEQUENCE>1\n<FILENAME>mmm-20240308.htm\n<TEXT>\n<html></html>\n</TEXT>\n</DOCUMENT>\n"
              b"<DOCUMENT>\n<TYPE>EX-99.1\n<SEQUENCE>2\n<FILENAME>pressrelease3-8x24.htm\n<TEXT>\n<html></html>\n</TEXT>\n</DOCUMENT>\n")
    (folder / "0000066740-24-000023.txt").write_bytes(header)
    names = ["mmm-20240308.htm", "pressrelease3-8x24.htm", "d1dex992.htm", "logo.jpg", "deck.pdf", "R1.htm", "d1dex101.htm",
             "0000066740-24-000023.txt", "0000066740-24-000023-index.html"]
    listing = {"directory": {"name": "/Archives/edgar/data/66740/000006674024000023",
                             "item": [{"name": n, "type": "text.gif", "size": "1", "last-modified": "2024-03-08"} for n in names]}}
    (folder / "index.json").write_text(json.dumps(listing))
    return root


def test_exhibits_through_index_json(listed_folder):
    with ReplayServer(listed_folder) as server:
        docs, notes = eight_k_documents(live(server), MMM)
        by_name = {d.document: d for d in docs}
        assert by_name["mmm-20240308.htm"].primary and by_name["mmm-20240308.htm"].source == "primary"
        assert by_name["d1dex992.htm"].document_type == "EX-99.2" and by_name["d1dex992.htm"].source == "index"
        # no telling name: its type comes from the full submission's <DOCUMENT> block, its bytes from the folder
        assert by_name["pressrelease3-8x24.htm"].document_type == "EX-99.1" and b"Solventum" in by_name["pressrelease3-8x24.htm"].data
        assert by_name["logo.jpg"].data is None and "image" in by_name["logo.jpg"].skip_reason
        assert by_name["deck.pdf"].data is None and "PDF" in by_name["deck.pdf"].skip_reason
        assert "R1.htm" not in by_name and "0000066740-24-000023-index.html" not in by_name
        assert "d1dex101.htm" not in by_name  # an EX-10.1 agreement is no press release
        assert server.hits("/Archives/edgar/data/66740/000006674024000023/d1dex101.htm") == 0
        assert server.hits("/Archives/edgar/data/66740/000006674024000023/index.json") == 1


def test_images_and_pdfs_in_a_full_submission_are_recorded_and_skipped(tmp_path):
    root = tmp_path / "edgar"
    folder = root / "Archives/edgar/data/66740/000006674024000023"
    folder.mkdir(parents=True)
    (folder / "0000066740-24-000023.txt").write_bytes(
        b"<SEC-DOCUMENT>\n<DOCUMENT>\n<TYPE>8-K\n<SEQUENCE>1\n<FILENAME>mmm-20240308.htm\n<TEXT>\n"
        b"<html><body><p>Item 8.01 Other Events.</p><p>News.</p></body></html>\n</TEXT>\n</DOCUMENT>\n"
        b"<DOCUMENT>\n<TYPE>EX-99.1\n<SEQUENCE>2\n<FILENAME>ex991.pdf\n<TEXT>\n<PDF>\nbegin 644 ex991.pdf\nM)5!$\n</PDF>\n</TEXT>\n</DOCUMENT>\n"
        b"<DOCUMENT>\n<TYPE>GRAPHIC\n<SEQUENCE>3\n<FILENAME>chart.jpg\n<TEXT>\nbegin 644 chart.jpg\nM_]C_\nend\n</TEXT>\n</DOCUMENT>\n"
        b"<DOCUMENT>\n<TYPE>EX-101.SCH\n<SEQUENCE>4\n<FILENAME>x.xsd\n<TEXT>\n<xsd/>\n</TEXT>\n</DOCUMENT>\n")
    with ReplayServer(root) as server:
        docs, _ = eight_k_documents(live(server), MMM)
    assert [(d.document_type, d.document, d.data is None) for d in docs] == [
        ("8-K", "mmm-20240308.htm", False), ("EX-99.1", "ex991.pdf", True), ("GRAPHIC", "chart.jpg", True)]
    assert "PDF" in docs[1].skip_reason and "image" in docs[2].skip_reason


def test_submissions_arrays_carry_items_and_acceptance_time():
    from finsec_assets.edgar.parsing import filings_from_submissions_arrays, form_family, wanted_form

    arrays = {"accessionNumber": ["a", "b"], "filingDate": ["2024-03-08", "2024-02-01"], "form": ["8-K", "10-K"],
              "items": ["2.02,9.01", ""], "acceptanceDateTime": ["2024-03-08T16:30:00.000Z", "2024-02-01T06:00:00.000Z"]}
    refs = filings_from_submissions_arrays(arrays, 1, "test")
    assert (refs[0].items, refs[0].acceptance_datetime) == ("2.02,9.01", "2024-03-08T16:30:00.000Z")
    assert refs[1].items is None
    arrays["items"] = ["2.02"]  # the wrong length: read as absent, not misaligned
    assert [r.items for r in filings_from_submissions_arrays(arrays, 1, "test")] == [None, None]
    assert form_family("8-K/A") == "8-K" and form_family("10-K405") == "10-K" and form_family("S-1") is None
    assert wanted_form("8-K/A", ("8-K",)) and not wanted_form("8-K", ("10-K", "10-Q"))
