"""Small dataset tables that follow DATASETS.md's contract exactly, cut from the bundled sample's real 10-Ks.

The words are the filers' own; the labels come from the same sources the real dataset assets use, in a
simplified way: NER/QA/relation spans are the documents' inline-XBRL ``ix:nonFraction`` facts (concept
local name as the label, the fact's context year for period relations), paragraph items and risk-factor
headings come from ``extract_sections``. Only the filing-industry embeddings are synthetic (random
vectors with an industry-dependent mean), since pooled embeddings need a model run.

Companies are split by CIK: train = WMT, NVDA, MCD, KHC; validation = TXN; test = JNJ, PEP.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from finsec_assets.ml.understanding.words import split_words

SAMPLE = Path(__file__).resolve().parents[3] / "finsec_assets" / "data" / "edgar" / "Archives" / "edgar" / "data"
# (cik, accession folder, document, split, SIC division)
FILINGS = [
    (104169, "000010416924000056", "wmt-20240131.htm.gz", "train", "G"),
    (1045810, "000104581024000029", "nvda-20240128.htm.gz", "train", "D"),
    (63908, "000006390824000072", "mcd-20231231.htm.gz", "train", "G"),
    (1637459, "000163745924000018", "khc-20231230.htm.gz", "train", "D"),
    (97476, "000009747624000007", "txn-20231231.htm.gz", "validation", "D"),
    (200406, "000020040624000013", "jnj-20231231.htm.gz", "test", "D"),
    (77476, "000007747624000008", "pep-20231230.htm.gz", "test", "D"),
]
# Companies in no split of any frame: a model's "new company" (its filings were never trained, tuned or tested on).
UNSEEN_FILINGS = [
    (1318605, "000162828024002390", "tsla-20231231.htm.gz", "unseen", "E"),
    (40545, "000004054524000027", "ge-20231231.htm.gz", "unseen", "D"),
]
YEAR = re.compile(r"\b(20[0-2]\d)\b")


def _html(cik, folder, document) -> str:
    return gzip.decompress((SAMPLE / str(cik) / folder / document).read_bytes()).decode("utf-8", "replace")


def _local_name(concept: str) -> str:
    return concept.split(":")[-1]


@functools.lru_cache(maxsize=None)
def fact_paragraphs(cik: int, folder: str, document: str, limit: int = 60) -> list[dict]:
    """Prose paragraphs holding numeric facts: text, fact spans (start, end, concept, context year)."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_html(cik, folder, document))
    years = {}
    for ctx in tree.css("xbrli\\:context"):
        end = ctx.css_first("xbrli\\:enddate") or ctx.css_first("xbrli\\:instant")
        if end is not None and ctx.attributes.get("id"):
            years[ctx.attributes["id"]] = end.text().strip()[:4]
    out, seen = [], set()
    for fact in tree.css("ix\\:nonfraction"):
        node = fact.parent
        while node is not None and node.tag not in ("div", "p", "td", "span"):
            node = node.parent
        while node is not None and node.tag == "span":
            node = node.parent
        if node is None or node.tag == "td":
            continue
        text = re.sub(r"\s+", " ", node.text(separator="")).strip()
        if len(text) < 60 or len(text) > 900 or text in seen:
            continue
        seen.add(text)
        spans, cursor = [], 0
        for f in node.css("ix\\:nonfraction"):
            value = re.sub(r"\s+", " ", f.text()).strip()
            at = text.find(value, cursor) if value else -1
            if at < 0:
                continue
            spans.append((at, at + len(value), _local_name(f.attributes.get("name", "")),
                          years.get(f.attributes.get("contextref"), "")))
            cursor = at + len(value)
        if spans:
            out.append({"text": text, "facts": spans})
        if len(out) >= limit:
            break
    return out


@functools.lru_cache(maxsize=None)
def _sections(cik, folder, document):
    from finsec_assets.text.sections import extract_sections

    return {s.item: s.text for s in extract_sections(_html(cik, folder, document).encode(), "10-K")}


def _id(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def ner_frame() -> pd.DataFrame:
    rows = []
    for cik, folder, document, split, _ in FILINGS:
        for n, p in enumerate(fact_paragraphs(cik, folder, document)):
            words, starts = split_words(p["text"])
            tags = ["O"] * len(words)
            for a, b, concept, _ in p["facts"]:
                inside = [i for i, s in enumerate(starts) if a <= s < b]
                for k, i in enumerate(inside):
                    tags[i] = ("B-" if k == 0 else "I-") + concept
            rows.append({"split": split, "cik": cik, "accession": folder, "id": _id("ner", folder, n), "section": "7",
                         "text": p["text"], "tokens": words, "token_starts": starts, "tags": tags})
    return pd.DataFrame(rows)


def _question(concept: str, year: str) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", concept).lower()
    return f"What was {words}" + (f" for {year}?" if year else "?")


def qa_frame() -> pd.DataFrame:
    rows = []
    for cik, folder, document, split, _ in FILINGS:
        paragraphs = fact_paragraphs(cik, folder, document)
        for n, p in enumerate(paragraphs):
            a, b, concept, year = p["facts"][0]
            rows.append({"split": split, "cik": cik, "accession": folder, "id": _id("qa", folder, n),
                         "question": _question(concept, year), "context": p["text"], "answer_text": p["text"][a:b],
                         "answer_start": a, "is_impossible": False, "concept": concept})
            other = paragraphs[(n + 7) % len(paragraphs)]["facts"][0]
            if n % 2 == 0 and other[2] not in {f[2] for f in p["facts"]}:
                rows.append({"split": split, "cik": cik, "accession": folder, "id": _id("qa-x", folder, n),
                             "question": _question(other[2], other[3]), "context": p["text"], "answer_text": "",
                             "answer_start": -1, "is_impossible": True, "concept": other[2]})
    return pd.DataFrame(rows)


def relation_frame() -> pd.DataFrame:
    rows = []
    for cik, folder, document, split, _ in FILINGS:
        for n, p in enumerate(fact_paragraphs(cik, folder, document)):
            for k, (a, b, concept, year) in enumerate(p["facts"][:3]):
                for m in YEAR.finditer(p["text"]):
                    rows.append({"split": split, "cik": cik, "accession": folder, "id": _id("rel", folder, n, k, m.start()),
                                 "text": p["text"], "head_start": a, "head_end": b, "tail_start": m.start(),
                                 "tail_end": m.end(), "tail_type": "period",
                                 "label": "period_of" if m.group(1) == year else "no_relation"})
    return pd.DataFrame(rows)


def item_paragraphs(filings=None, per_item: int = 12) -> pd.DataFrame:
    """Paragraph -> section item rows of the given filings (default: the unseen companies)."""
    from finsec_assets.text.sentences import split_paragraphs

    rows = []
    for cik, folder, document, split, _ in (filings or UNSEEN_FILINGS):
        sections = _sections(cik, folder, document)
        for item in ("1", "1A", "7", "7A"):
            for p in [p for p in split_paragraphs(sections.get(item, "")) if len(p) > 200][:per_item]:
                rows.append({"cik": cik, "text": p, "label": item})
    return pd.DataFrame(rows)


def classification_frame(per_item: int = 12) -> pd.DataFrame:
    from finsec_assets.text.sentences import split_paragraphs

    rows = []
    rng = np.random.default_rng(0)
    centres = {"D": rng.normal(0, 1, 16), "G": rng.normal(0, 1, 16)}
    for cik, folder, document, split, sic in FILINGS:
        sections = _sections(cik, folder, document)
        for item in ("1", "1A", "7", "7A"):
            paragraphs = [p for p in split_paragraphs(sections.get(item, "")) if len(p) > 200][:per_item]
            for n, p in enumerate(paragraphs):
                rows.append({"split": split, "cik": cik, "accession": folder, "id": _id("cls", folder, item, n),
                             "task": "paragraph_item", "text": p, "embedding": None, "label": item})
        vector = (centres[sic] + rng.normal(0, 0.3, 16)).astype(np.float32)
        rows.append({"split": split, "cik": cik, "accession": folder, "id": _id("ind", folder), "task": "filing_industry",
                     "text": None, "embedding": vector, "label": sic})
    return pd.DataFrame(rows)


def summarization_frame(per_filing: int = 12) -> pd.DataFrame:
    """Risk-factor headings (a short paragraph) paired with the body that follows them in Item 1A."""
    from finsec_assets.text.sentences import split_paragraphs

    rows = []
    for cik, folder, document, split, _ in FILINGS:
        paragraphs = split_paragraphs(_sections(cik, folder, document).get("1A", ""))
        found = 0
        for i in range(len(paragraphs) - 1):
            head, body = paragraphs[i], paragraphs[i + 1]
            if 40 <= len(head) <= 300 and len(body) > 300 and not head.isupper() and not head.startswith("•"):
                rows.append({"split": split, "cik": cik, "accession": folder, "id": _id("sum", folder, i),
                             "document": body, "summary": head})
                found += 1
                if found >= per_filing:
                    break
    return pd.DataFrame(rows)


FRAMES = {"ner": ner_frame, "qa": qa_frame, "relation": relation_frame, "classification": classification_frame,
          "summarization": summarization_frame}


def write_frame(task: str, directory: Path) -> Path:
    path = Path(directory) / f"{task}.parquet"
    FRAMES[task]().to_parquet(path)
    return path
