"""Small filing_sections-shaped corpora cut from the bundled sample's real filings, for the training tests.

Section boundaries are synthetic (fixed-size spans labelled with item ids); the words are real
10-K/10-Q text, so tokenizers and models see filing language.
"""

from __future__ import annotations

import functools
import gzip
import re
from pathlib import Path

import pandas as pd
from selectolax.lexbor import LexborHTMLParser

SAMPLE = Path(__file__).resolve().parents[2] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
# (cik, accession folder, document, form, filing date)
FILINGS = [
    (104169, "000010416924000056", "wmt-20240131.htm.gz", "10-K", "2024-03-15"),
    (104169, "000010416923000097", "wmt-20230731.htm.gz", "10-Q", "2023-08-31"),
    (1045810, "000104581024000029", "nvda-20240128.htm.gz", "10-K", "2024-02-21"),
    (63908, "000006390824000072", "mcd-20231231.htm.gz", "10-K", "2024-02-22"),
    (97476, "000009747624000007", "txn-20231231.htm.gz", "10-K", "2024-02-07"),
]
ITEMS = {"10-K": ["1", "1A", "7"], "10-Q": ["I-1", "I-2", "II-1A"]}


@functools.lru_cache(maxsize=None)
def _filing_text(cik: int, folder: str, document: str) -> str:
    html = gzip.decompress((SAMPLE / str(cik) / folder / document).read_bytes()).decode("utf-8", "replace")
    tree = LexborHTMLParser(html)
    for node in tree.css("ix\\:header, script, style"):
        node.decompose()
    text = re.sub(r"\s+", " ", tree.body.text(separator=" ")).strip()
    words = [w for w in text.split(" ") if not re.fullmatch(r"[\d.,$%()\-—]+", w)]  # prose, not table cells
    return " ".join(words)


def sample_sections(chars_per_section: int = 6000, filings=FILINGS) -> pd.DataFrame:
    """Three sections per filing (10-K: 1, 1A, 7; 10-Q: I-1, I-2, II-1A), each ``chars_per_section`` long."""
    rows = []
    for cik, folder, document, form, date in filings:
        text = _filing_text(cik, folder, document)
        start = len(text) // 5  # past the cover page and table of contents
        for n, item in enumerate(ITEMS[form]):
            body = text[start + n * chars_per_section: start + (n + 1) * chars_per_section]
            rows.append({"accession": folder, "cik": cik, "form": form, "filing_date": date, "item": item,
                         "title": f"Item {item}", "text": body, "n_chars": len(body), "n_words": len(body.split()),
                         "flags": []})
    return pd.DataFrame(rows)
