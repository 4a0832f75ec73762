"""extract_facts on a hand-written inline-XBRL 10-K (every feature once) and on real sample filings."""

import gzip
import math
from pathlib import Path

import pytest

from finsec_assets.text.sections import extract_sections
from finsec_assets.xbrl import FACT_COLUMNS, extract_facts

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
BODY = "We sell products and services to customers around the world through several channels and partners. " * 3

RESOURCES = """
<ix:resources>
 <xbrli:context id="FY2023"><xbrli:entity><xbrli:identifier scheme="http://www.sec.gov/CIK">0000000001</xbrli:identifier></xbrli:entity>
  <xbrli:period><xbrli:startDate>2023-01-01</xbrli:startDate><xbrli:endDate>2023-12-31</xbrli:endDate></xbrli:period></xbrli:context>
 <xbrli:context id="I2023"><xbrli:entity><xbrli:identifier scheme="http://www.sec.gov/CIK">0000000001</xbrli:identifier></xbrli:entity>
  <xbrli:period><xbrli:instant>2023-12-31</xbrli:instant></xbrli:period></xbrli:context>
 <xbrli:context id="FY2023_auto"><xbrli:entity><xbrli:identifier scheme="http://www.sec.gov/CIK">0000000001</xbrli:identifier>
  <xbrli:segment><xbrldi:explicitMember dimension="us-gaap:StatementBusinessSegmentsAxis">acme:AutomotiveSegmentMember</xbrldi:explicitMember>
  <xbrldi:typedMember dimension="acme:PlanAxis"><acme:PlanDomain>Plan A</acme:PlanDomain></xbrldi:typedMember></xbrli:segment></xbrli:entity>
  <xbrli:period><xbrli:startDate>2023-01-01</xbrli:startDate><xbrli:endDate>2023-12-31</xbrli:endDate></xbrli:period></xbrli:context>
 <xbrli:unit id="usd"><xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unit>
 <xbrli:unit id="shares"><xbrli:measure>xbrli:shares</xbrli:measure></xbrli:unit>
 <xbrli:unit id="usdPerShare"><xbrli:divide><xbrli:unitNumerator><xbrli:measure>iso4217:USD</xbrli:measure></xbrli:unitNumerator>
  <xbrli:unitDenominator><xbrli:measure>xbrli:shares</xbrli:measure></xbrli:unitDenominator></xbrli:divide></xbrli:unit>
</ix:resources>"""


def ixbrl(body: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:ix="http://www.xbrl.org/2013/inlineXBRL"
 xmlns:ixt="http://www.xbrl.org/inlineXBRL/transformation/2020-02-12" xmlns:ixt-sec="http://www.sec.gov/inlineXBRL/transformation/2015-08-31"
 xmlns:xbrli="http://www.xbrl.org/2003/instance" xmlns:xbrldi="http://xbrl.org/2006/xbrldi" xmlns:iso4217="http://www.xbrl.org/2003/iso4217"
 xmlns:us-gaap="http://fasb.org/us-gaap/2023" xmlns:dei="http://xbrl.sec.gov/dei/2023" xmlns:acme="http://acme.example/2023"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><head><title>acme 10-K</title></head><body>
<div style="display:none"><ix:header><ix:hidden>
 <ix:nonNumeric name="dei:DocumentType" contextRef="FY2023" id="h1">10-K</ix:nonNumeric>
 <ix:nonFraction name="us-gaap:AdvertisingExpense" contextRef="FY2023" unitRef="usd" decimals="-6" scale="6" id="h2">7</ix:nonFraction>
</ix:hidden>{RESOURCES}</ix:header></div>
<p>UNITED STATES SECURITIES AND EXCHANGE COMMISSION</p><p>FORM 10-K</p><p>ANNUAL REPORT PURSUANT TO SECTION 13</p>
{body}
</body></html>""".encode()


DOCUMENT = ixbrl(f"""
<p>PART I</p>
<p>Item 1. Business</p>
<p>{BODY}</p>
<p>Item 7. Management's Discussion and Analysis of Financial Condition and Results of Operations</p>
<p>Revenue was $<ix:nonFraction name="us-gaap:Revenues" contextRef="FY2023" unitRef="usd" decimals="-5" scale="6" format="ixt:num-dot-decimal" id="f1">1,234.5</ix:nonFraction> million
 for the year ended December 31, 2023, and the net loss was $<ix:nonFraction name="us-gaap:NetIncomeLoss" contextRef="FY2023" unitRef="usd" decimals="-6" scale="6" sign="-" format="ixt:num-dot-decimal" id="f2">12</ix:nonFraction> million.</p>
<p>We had <ix:nonFraction name="us-gaap:NumberOfReportableSegments" contextRef="FY2023" unitRef="shares" decimals="INF" format="ixt-sec:numwordsen" id="f3">three</ix:nonFraction> segments;
 automotive segment revenue was $<ix:nonFraction name="us-gaap:Revenues" contextRef="FY2023_auto" unitRef="usd" decimals="-5" scale="9" format="ixt:num-comma-decimal" id="f4">1,5</ix:nonFraction> billion
 and impairment was <ix:nonFraction name="us-gaap:GoodwillImpairmentLoss" contextRef="FY2023" unitRef="usd" decimals="0" format="ixt:fixed-zero" id="f5">—</ix:nonFraction>.</p>
<p><ix:nonNumeric name="us-gaap:RevenueRecognitionPolicyTextBlock" contextRef="FY2023" id="f6" continuedAt="c1">Revenue policy. We recognise
 <ix:nonFraction name="us-gaap:ContractWithCustomerLiability" contextRef="I2023" unitRef="usd" decimals="-6" scale="6" id="f7">40</ix:nonFraction> million of deferred revenue<ix:exclude> (see page 7)</ix:exclude>.</ix:nonNumeric></p>
<p>An unrelated paragraph sits between the two parts of the policy text block, as page breaks often do.</p>
<p><ix:continuation id="c1">The policy continues here and ends.</ix:continuation></p>
<p>Dividends per share were $<ix:nonFraction name="us-gaap:CommonStockDividendsPerShareDeclared" contextRef="FY2023" unitRef="usdPerShare" decimals="2" id="f8">0.52</ix:nonFraction>;
 the nil fact <ix:nonFraction name="us-gaap:Goodwill" contextRef="I2023" unitRef="usd" xsi:nil="true" id="f9"></ix:nonFraction>is empty;
 a bad one <ix:nonFraction name="us-gaap:Goodwill" contextRef="NOPE" unitRef="usd" decimals="0" id="f10">5</ix:nonFraction>,
 one without unit <ix:nonFraction name="us-gaap:Goodwill" contextRef="I2023" unitRef="nounit" decimals="0" id="f11">6</ix:nonFraction>
 and one that is not a number <ix:nonFraction name="us-gaap:Goodwill" contextRef="I2023" unitRef="usd" decimals="0" format="ixt:num-dot-decimal" id="f12">n/a</ix:nonFraction>.
 Fiscal year end <ix:nonNumeric name="dei:DocumentPeriodEndDate" contextRef="FY2023" format="ixt:date-monthname-day-year-en" id="f13">December 31, 2023</ix:nonNumeric>.</p>
<table><tr><td>Revenue</td><td>$</td><td><ix:nonFraction name="us-gaap:Revenues" contextRef="FY2023" unitRef="usd" decimals="-5" scale="6" format="ixt:num-dot-decimal" id="f14">1,234.5</ix:nonFraction></td></tr>
<tr><td>Cost</td><td>$</td><td><ix:nonFraction name="us-gaap:CostOfRevenue" contextRef="FY2023" unitRef="usd" decimals="-5" scale="6" id="f15">900.0</ix:nonFraction></td></tr></table>
<p>Item 8. Financial Statements and Supplementary Data</p>
<p>{BODY}</p>
""")


@pytest.fixture(scope="module")
def facts():
    df = extract_facts(DOCUMENT)
    return df.set_index("fact_id", drop=False)


def test_columns_and_one_row_per_fact(facts):
    assert list(facts.columns) == FACT_COLUMNS
    assert len(facts) == 17  # 15 in the body, 2 in ix:hidden
    assert facts.index.is_unique


def test_values_after_format_scale_and_sign(facts):
    assert facts.loc["f1", "value"] == 1_234_500_000
    assert facts.loc["f2", "value"] == -12_000_000
    assert facts.loc["f3", "value"] == 3
    assert facts.loc["f4", "value"] == 1_500_000_000  # num-comma-decimal "1,5" at scale 9
    assert facts.loc["f5", "value"] == 0
    assert facts.loc["f8", "value"] == 0.52
    assert facts.loc["h2", "value"] == 7_000_000
    assert facts.loc["f13", "normalized"] == "2023-12-31"


def test_units_periods_and_dimensions(facts):
    assert facts.loc["f1", "unit"] == "USD" and facts.loc["f8", "unit"] == "USD/shares" and facts.loc["f3", "unit"] == "shares"
    assert (facts.loc["f1", "period_start"], facts.loc["f1", "period_end"]) == ("2023-01-01", "2023-12-31")
    assert (facts.loc["f7", "period_start"], facts.loc["f7", "period_end"]) == ("", "2023-12-31")
    assert facts.loc["f4", "dimensions"] == {"us-gaap:StatementBusinessSegmentsAxis": "acme:AutomotiveSegmentMember",
                                             "acme:PlanAxis": "Plan A"}
    assert facts.loc["f1", "dimensions"] == {}


def test_nil_hidden_nested_and_continuations(facts):
    assert facts.loc["f9", "is_nil"] and math.isnan(facts.loc["f9", "value"]) and not facts.loc["f9", "flags"]
    assert facts.loc["h1", "is_hidden"] and facts.loc["h1", "text"] == "10-K" and "hidden" in facts.loc["h1", "flags"]
    assert facts.loc["h1", "start"] is None or facts.loc["h1", "start"] is __import__("pandas").NA
    assert facts.loc["f7", "parent_fact_id"] == "f6"  # nested in the text block, and a row of its own
    text = facts.loc["f6", "text"]
    assert text.startswith("Revenue policy. We recognise 40 million of deferred revenue.")
    assert "(see page 7)" not in text  # ix:exclude
    assert text.endswith("The policy continues here and ends.")  # continuedAt chain joined
    assert "unrelated paragraph" not in text


def test_malformed_facts_are_flagged_and_the_rest_lands(facts):
    assert "missing_context" in facts.loc["f10", "flags"] and facts.loc["f10", "value"] == 5
    assert "missing_unit" in facts.loc["f11", "flags"]
    assert "bad_value" in facts.loc["f12", "flags"] and math.isnan(facts.loc["f12", "value"])
    clean = facts[facts["fact_id"].isin(["f1", "f2", "f3", "f4", "f5", "f8"])]
    assert all(not f for f in clean["flags"])


def test_facts_line_up_with_section_text_character_for_character(facts):
    sections = {s.item: s for s in extract_sections(DOCUMENT, "10-K")}
    assert {"1", "7", "8"} <= set(sections)
    prose = ["f1", "f2", "f3", "f4", "f5", "f7", "f8", "f10", "f11", "f12", "f13"]
    for fact_id in prose:
        row = facts.loc[fact_id]
        assert row["section"] == "7", (fact_id, row["flags"])
        assert sections["7"].text[row["start"]:row["end"]] == row["display_text"]
    assert sections["7"].text[facts.loc["f1", "start"] - 1:facts.loc["f1", "end"] + 8] == "$1,234.5 million"
    # The text block spans paragraphs: from its first word to the end of its continuation.
    block = sections["7"].text[facts.loc["f6", "start"]:facts.loc["f6", "end"]]
    assert block.startswith("Revenue policy.") and block.endswith("continues here and ends.")


def test_facts_in_data_tables_keep_their_row_with_a_flag(facts):
    for fact_id in ("f14", "f15"):
        row = facts.loc[fact_id]
        assert row["in_table"] and "not_in_text" in row["flags"] and row["start"] is __import__("pandas").NA
        assert row["value"] > 0


@pytest.mark.parametrize("document", [
    b"", b"\x00\x01binary" * 100, b"<html><body><p>An old HTML 10-K without tags.</p></body></html>",
    b"<SEC-DOCUMENT>\n<DOCUMENT>\n<TYPE>10-K\n<TEXT>\nplain text filing\n</TEXT>\n</DOCUMENT>", None,
])
def test_documents_without_inline_xbrl_give_an_empty_frame(document):
    df = extract_facts(document)
    assert df.empty and list(df.columns) == FACT_COLUMNS


def test_broken_markup_still_lands():
    broken = DOCUMENT.replace(b"<p>Item 8.", b"<p><b>unclosed <i>tags</p><p>Item 8.").replace(b"&", b"&amp;")
    df = extract_facts(broken)
    assert len(df) == 17
    assert df.set_index("fact_id").loc["f1", "value"] == 1_234_500_000


def test_sample_10k_alignment_and_values():
    path = SAMPLE / "1045810" / "000104581024000029" / "nvda-20240128.htm.gz"
    document = path.read_bytes()
    df = extract_facts(document)
    sections = {s.item: s for s in extract_sections(gzip.decompress(document), "10-K")}
    aligned = df[df["section"].notna() & df["is_numeric"]]
    assert len(aligned) > 100
    for row in aligned.itertuples():
        assert sections[row.section].text[row.start:row.end] == row.display_text
    revenue = df[(df["concept"] == "us-gaap:Revenues") & (df["period_end"] == "2024-01-28")
                 & (df["period_start"] == "2023-01-30") & df["dimensions"].map(lambda d: not d)]
    assert set(revenue["value"]) == {60_922_000_000.0}
