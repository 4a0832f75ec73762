"""Every transformation rule family the filings use, plus the ones the issue names that the corpus lacks."""

import pytest

from finsec_assets.xbrl import transforms
from finsec_assets.xbrl.transforms import TransformError, apply


@pytest.mark.parametrize("fmt, text, expected", [
    ("ixt:num-dot-decimal", "1,234,567.89", "1234567.89"),
    ("ixt:numdotdecimal", "12", "12"),
    ("ixt:num-dot-decimal", " 0.5 ", "0.5"),
    ("ixt:num-comma-decimal", "1.234.567,89", "1234567.89"),
    ("ixt:numcommadecimal", "1 234,5", "1234.5"),
    ("ixt:fixed-zero", "—", "0"),
    ("ixt:zerodash", "–", "0"),
    ("ixt:zerodash", "-", "0"),
    ("ixt-sec:numwordsen", "three", "3"),
    ("ixt-sec:numwordsen", "no", "0"),
    ("ixt-sec:numwordsen", "none", "0"),
    ("ixt-sec:numwordsen", "twenty-one", "21"),
    ("ixt-sec:numwordsen", "one hundred and five", "105"),
    ("ixt-sec:numwordsen", "two thousand three hundred", "2300"),
    ("ixt:num-unit-decimal", "5 dollars and 23 cents", "5.23"),
    ("ixt:date-monthname-day-year-en", "December 31, 2023", "2023-12-31"),
    ("ixt:datemonthdayyearen", "Jan. 28, 2024", "2024-01-28"),
    ("ixt:date-month-day-year", "12/31/2023", "2023-12-31"),
    ("ixt:date-day-month-year", "31.12.23", "2023-12-31"),
    ("ixt:date-monthname-year-en", "September 2023", "2023-09"),
    ("ixt:date-month-day", "12/31", "--12-31"),
    ("ixt:date-monthname-day-en", "July 1", "--07-01"),
    ("ixt:date-year-month-day", "2023-06-30", "2023-06-30"),
    ("ixt:fixed-true", "Yes", "true"),
    ("ixt:fixed-false", "No", "false"),
    ("ixt:booleanfalse", "x", "false"),
    ("ixt-sec:boolballotbox", "☒", "true"),
    ("ixt-sec:boolballotbox", "☐", "false"),
    ("ixt-sec:duryear", "5", "P5Y"),
    ("ixt-sec:duryear", "2.5", "P2Y6M"),
    ("ixt-sec:durmonth", "18", "P18M"),
    ("ixt-sec:durday", "30", "P30D"),
    ("ixt-sec:durwordsen", "two years and six months", "P2Y6M"),
    ("ixt-sec:exchnameen", "The  Nasdaq Stock Market", "The Nasdaq Stock Market"),
    (None, " 1234.5 ", "1234.5"),
])
def test_rules(fmt, text, expected):
    assert apply(fmt, text) == expected


@pytest.mark.parametrize("fmt, text", [
    ("ixt:num-dot-decimal", "12abc"),
    ("ixt:num-dot-decimal", ""),
    ("ixt:zerodash", "5"),
    ("ixt-sec:numwordsen", "several"),
    ("ixt:date-monthname-day-year-en", "Smarch 3, 2023"),
    ("ixt:date-month-day-year", "13/01/2023"),
    ("ixt-sec:boolballotbox", "maybe"),
    ("ixt:no-such-rule", "1"),
])
def test_text_that_does_not_fit_raises(fmt, text):
    with pytest.raises(TransformError):
        apply(fmt, text)


def test_names_are_compared_without_prefix_case_and_hyphens():
    assert transforms.normalize_name("ixt:num-dot-decimal") == transforms.normalize_name("ixt:NumDotDecimal")
