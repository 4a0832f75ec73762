import datetime as dt

import pytest

from finsec_assets.edgar.client import EdgarClient
from finsec_assets.edgar.parsing import (
    EdgarDataError,
    main_document_from_full_submission,
    normalize_cik,
    quarter_bounds,
    sic_division,
    sniff_content,
    validate_accession,
)


def test_cik_forms():
    assert normalize_cik("0000320193") == normalize_cik("CIK320193") == normalize_cik(320193) == 320193
    for bad in ("", "abc", "12345678901", "-5", "0"):
        with pytest.raises(EdgarDataError, match="not a CIK"):
            normalize_cik(bad)


def test_accession_format():
    assert validate_accession("0000320193-24-000123")
    with pytest.raises(EdgarDataError, match="accession"):
        validate_accession("000032019324000123")


def test_quarter_bounds_and_range():
    assert quarter_bounds("2024-01-01") == (dt.date(2024, 1, 1), dt.date(2024, 4, 1))
    assert quarter_bounds("2023-10-01") == (dt.date(2023, 10, 1), dt.date(2024, 1, 1))
    with pytest.raises(EdgarDataError, match="outside EDGAR's range"):
        quarter_bounds("1992-10-01")
    with pytest.raises(EdgarDataError, match="outside EDGAR's range"):
        quarter_bounds("2031-01-01", today=dt.date(2026, 11, 23))
    with pytest.raises(EdgarDataError, match="first day of a quarter"):
        quarter_bounds("2024-02-01")


def test_sic_division():
    assert sic_division("3571") == "D" and sic_division("5331") == "G" and sic_division("6022") == "H"
    assert sic_division(None) is None


def test_full_submission_main_document():
    raw = EdgarClient().get("www", "/Archives/edgar/data/320193/0000912057-00-023442.txt")
    doc = main_document_from_full_submission(raw, "10-Q")
    assert b"<DOCUMENT>" not in doc and b"QUARTERLY REPORT" in doc.upper()[:5000]
    with pytest.raises(EdgarDataError, match="no <DOCUMENT>"):
        main_document_from_full_submission(b"not sgml", "10-Q")


def test_sniff_content():
    assert sniff_content(b"<html><body>x</body></html>") == "html"
    assert sniff_content(b"%PDF-1.4 ...") == "pdf"
    assert sniff_content(b"") == "empty"
    assert sniff_content(bytes(range(256)) * 4) == "binary"
    assert sniff_content(b"ANNUAL REPORT\nPursuant to section 13") == "text"
