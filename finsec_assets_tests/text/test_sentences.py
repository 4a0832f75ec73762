import gzip
from pathlib import Path

import pytest

from finsec_assets.text.sentences import split_paragraphs, split_sentences

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar"
AAPL_2000_10Q = SAMPLE / "Archives/edgar/data/320193/000091205700023442/0000912057-00-023442.txt.gz"


def test_plain_sentences_split_on_terminal_punctuation():
    text = "Net sales increased 6%. Did margins improve? Yes! They did."
    assert split_sentences(text) == [
        "Net sales increased 6%.",
        "Did margins improve?",
        "Yes!",
        "They did.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Revenue rose $1.2 billion in fiscal 2024 compared with fiscal 2023.",
        "See Item 1A. Risk Factors for a discussion of risks.",
        "Refer to Note 12. Debt and Note 3. Acquisitions for details.",
        "Results are presented under U.S. GAAP and are unaudited.",
        "Walmart Inc. (\"Walmart\") operates stores in the U.S. and abroad.",
        "Mr. Smith and Dr. Jones joined the Board on Jan. 5 of this year.",
        "Costs, e.g. freight and labor, rose approx. 5% this year.",
        "Under the sub-caption \"II. Certain Other Matters\" we describe them.",
        "Senior notes due 2030, Series No. 4, were issued at par.",
        "John J. Smith, our Chief Executive Officer, signed the report.",
        "A weaker U.S. Dollar reduces costs of our non-U.S. Dollar subsidiaries.",
        "Total NIKE, Inc. EBIT and EBIT Margin are non-GAAP measures.",
        "As described in Item 1. Business, the Company is subject to many laws.",
    ],
)
def test_abbreviations_and_references_do_not_end_sentences(text):
    assert split_sentences(text) == [text]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Our business grew in the U.S. We expect further growth.",
            ["Our business grew in the U.S.", "We expect further growth."],
        ),
        (
            "We sold the unit to Acme Holdings Inc. The sale closed in May.",
            ["We sold the unit to Acme Holdings Inc.", "The sale closed in May."],
        ),
        (
            "The matter is described in Note 10. Net sales were not affected.",
            ["The matter is described in Note 10.", "Net sales were not affected."],
        ),
        (
            'He said "we are done." Then the meeting ended.',
            ['He said "we are done."', "Then the meeting ended."],
        ),
        (
            "Sales rose (see Note 3.) Margins fell.",
            ["Sales rose (see Note 3.)", "Margins fell."],
        ),
        (
            "See additional information in Note 15. 3M's revenue was also updated.",
            ["See additional information in Note 15.", "3M's revenue was also updated."],
        ),
        (
            "Growth continued... eCommerce sales rose 20%.",
            ["Growth continued...", "eCommerce sales rose 20%."],
        ),
    ],
)
def test_real_boundaries_after_ambiguous_periods(text, expected):
    assert split_sentences(text) == expected


def test_blank_lines_are_hard_boundaries_and_single_newlines_are_spaces():
    text = "Liquidity remained strong\n\nWe generated cash from\noperations of $35.7\nbillion."
    assert split_sentences(text) == [
        "Liquidity remained strong",
        "We generated cash from operations of $35.7 billion.",
    ]


def test_headings_and_bullets_start_new_sentences():
    text = (
        "Overview\n"
        "We operate retail stores worldwide and online marketplaces in many countries and regions.\n"
        "Our priorities are as follows:\n"
        "• Growth - serve customers everywhere;\n"
        "• Margin - improve productivity\n"
        "RESULTS OF OPERATIONS\n"
        "Net sales rose."
    )
    assert split_sentences(text) == [
        "Overview",
        "We operate retail stores worldwide and online marketplaces in many countries and regions.",
        "Our priorities are as follows:",
        "• Growth - serve customers everywhere;",
        "• Margin - improve productivity",
        "RESULTS OF OPERATIONS",
        "Net sales rose.",
    ]


def test_wrapped_plain_text_is_joined_even_when_a_line_looks_like_a_title():
    text = (
        "Further information regarding the Company's operating segments may be found in the\n"
        'Notes to Condensed Consolidated Financial Statements at Note 8, "Segment\n'
        'Information and Geographic Data."\n'
        "THE COMPANY'S ACTUAL RESULTS\n"
        "MAY DIFFER SIGNIFICANTLY."
    )
    assert split_sentences(text) == [
        "Further information regarding the Company's operating segments may be found in the "
        'Notes to Condensed Consolidated Financial Statements at Note 8, "Segment Information and Geographic Data."',
        "THE COMPANY'S ACTUAL RESULTS MAY DIFFER SIGNIFICANTLY.",
    ]


def test_bare_enumerators_stay_with_their_text():
    assert split_sentences("1. Overview of results. 2. Outlook is stable.") == [
        "1. Overview of results.",
        "2. Outlook is stable.",
    ]
    assert split_sentences("•\nIn 2021 we sold Asda.") == ["• In 2021 we sold Asda."]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\n", "\t \r\n"])
def test_empty_text_has_no_sentences(text):
    assert split_sentences(text) == []
    assert split_paragraphs(text) == []


def test_junk_and_unpunctuated_text_never_crash():
    junk = bytes(range(256)).decode("latin-1") * 4
    sentences = split_sentences(junk)
    assert all(s and s == s.strip() for s in sentences)
    assert not any(c in "".join(sentences) for c in "\x00\x07\x1b")
    assert split_sentences("no punctuation at all just words") == ["no punctuation at all just words"]
    assert split_sentences("营业收入增长了百分之五。净利润下降。") == ["营业收入增长了百分之五。净利润下降。"]


@pytest.mark.parametrize("bad", [None, b"bytes", 3.5, ["a list"]])
def test_non_string_input_is_a_clear_type_error(bad):
    with pytest.raises(TypeError, match="text must be str"):
        split_sentences(bad)


def test_real_plain_text_mdna_from_bundled_sample():
    raw = gzip.decompress(AAPL_2000_10Q.read_bytes()).decode("latin-1")
    start = raw.index("ITEM 2. MANAGEMENT'S DISCUSSION")
    mdna = raw[start : raw.index("ITEM 3.", start)]
    sentences = split_sentences(mdna)
    assert len(sentences) > 100
    assert "Net sales increased $415 million or 27% to $1.945 billion in the second quarter of 2000 compared to the same quarter in 1999." in sentences
    # Wrapped lines are rejoined: no sentence of prose ends mid-phrase at a line end.
    assert not [s for s in sentences if s.endswith(" the") or s.endswith(" of")]
    # Nothing is lost: every word of the input is in the output, in order.
    assert " ".join(sentences).split() == mdna.split()
