"""Five document-understanding datasets labelled by what filers themselves wrote.

Labels come from the inline-XBRL tags of 10-K/10-Q filings (``xbrl_facts``, aligned character
for character to ``filing_sections`` text), from the section structure, from SIC codes and from
the headings Regulation S-K Item 105 requires on every risk factor. Schemas are the contract in
DATASETS.md; every table has ``split`` (by company: no CIK in two splits), ``cik``, ``accession``
and a unique ``id``. Everything is deterministic: same inputs, same rows, same splits.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import date

import numpy as np
import pandas as pd

from finsec_assets.text.sentences import split_sentences

__all__ = [
    "SPLITS", "assign_splits", "split_of", "concept_label", "member_label", "period_phrase", "tokenize",
    "ner_dataset", "qa_dataset", "relation_dataset", "classification_dataset", "summarization_dataset",
    "risk_factors", "data_card",
]

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
# Items whose prose carries tagged numbers: MD&A and the financial statements' notes (Item 8; Item 15 where the
# statements are filed as an exhibit-style section), Part I Items 1-2 of a 10-Q.
NUMERIC_TEXT_ITEMS = ("7", "8", "15", "I-1", "I-2")
RISK_FACTOR_ITEMS = ("1A", "II-1A")
# 10-Q items read as their 10-K counterparts, so one paragraph_item label means one kind of text.
TEN_Q_TO_TEN_K = {"I-1": "8", "I-2": "7", "I-3": "7A", "I-4": "9A", "II-1": "3", "II-1A": "1A", "II-2": "5",
                  "II-3": "3", "II-4": "4", "II-5": "9B", "II-6": "15"}


# ---------------------------------------------------------------------------------- splits


def _unit_hash(cik: int, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{int(cik)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(cik: int, salt: str = "finsec") -> str:
    """A company's split from a hash of its CIK: stable when companies are added or removed."""
    u = _unit_hash(cik, salt)
    return "train" if u < SPLIT_FRACTIONS[0] else ("validation" if u < sum(SPLIT_FRACTIONS[:2]) else "test")


def assign_splits(ciks, salt: str = "finsec") -> tuple[dict[int, str], str]:
    """CIK -> split, and the method used.

    ``hash``: each CIK's own hash bucket (70/15/15), stable as the corpus grows. A small corpus (the bundled
    sample has 12 companies) can leave a bucket empty; then ``rank``: companies ordered by that hash, the first
    15% (at least one) to test, the next to validation, the rest to train. Either way no CIK is in two splits.
    """
    ciks = sorted({int(c) for c in ciks})
    by_hash = {c: split_of(c, salt) for c in ciks}
    if len(ciks) < 3 or set(by_hash.values()) == set(SPLITS):
        return by_hash, "hash"
    ordered = sorted(ciks, key=lambda c: _unit_hash(c, salt))
    n_test = max(1, round(len(ciks) * SPLIT_FRACTIONS[2]))
    n_val = max(1, round(len(ciks) * SPLIT_FRACTIONS[1]))
    out = {}
    for i, c in enumerate(ordered):
        out[c] = "test" if i < n_test else ("validation" if i < n_test + n_val else "train")
    return out, "rank"


def _with_splits(df: pd.DataFrame, splits: dict[int, str], prefix: str) -> pd.DataFrame:
    df = df.copy()
    df["split"] = df["cik"].map(lambda c: splits[int(c)])
    df.insert(0, "id", [f"{prefix}-{i:07d}" for i in range(len(df))])
    return df


# -------------------------------------------------------------------------------- labels

_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def concept_label(concept: str) -> str:
    """'us-gaap:RevenueFromContractWithCustomerExcludingAssessedTax' -> 'revenue from contract with customer
    excluding assessed tax' (taxonomy label files are not fetched offline; the element names are labels in camel case)."""
    name = concept.rsplit(":", 1)[-1]
    words = _CAMEL_RE.sub(" ", name).split()
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in words)


def member_label(member: str) -> str:
    """'us-gaap:AutomotiveSegmentMember' -> 'automotive segment'."""
    label = concept_label(member)
    return re.sub(r"\s+member$", "", label)


def _date_phrase(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.strftime('%B')} {d.day}, {d.year}"


def period_phrase(start: str | None, end: str) -> str:
    """'the year ended December 31, 2023', 'the three months ended July 1, 2023', 'December 31, 2023' (instant)."""
    if not start:
        return _date_phrase(end)
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    months = round(days / 30.44)
    if months >= 12 and months <= 13:
        return f"the year ended {_date_phrase(end)}"
    words = {1: "one month", 3: "three months", 6: "six months", 9: "nine months"}
    if months in words:
        return f"the {words[months]} ended {_date_phrase(end)}"
    return f"the period from {_date_phrase(start)} to {_date_phrase(end)}"


def question_for(concept: str, start: str | None, end: str, dimensions: dict | None) -> str:
    members = [member_label(m) for m in (dimensions or {}).values()]
    label = concept_label(concept)
    when = f"as of {period_phrase(start, end)}" if not start else f"for {period_phrase(start, end)}"
    of = f" for {' and '.join(members)}" if members else ""
    return f"What was {label}{of} {when}?"


# ------------------------------------------------------------------------------ text units

_TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?|\S", re.UNICODE)
_NUMBER_RE = re.compile(r"^\d+(?:[.,]\d+)*$")


def tokenize(text: str) -> tuple[list[str], list[int]]:
    """Words, whole numbers ('1,234.5') and single punctuation marks, with their character offsets."""
    tokens, starts = [], []
    for m in _TOKEN_RE.finditer(text):
        tokens.append(m.group(0))
        starts.append(m.start())
    return tokens, starts


def number_shape(token: str) -> str:
    """FiNER's fix for subword fragmentation: '1,234.5' -> '[X,XXX.X]'."""
    return "[" + re.sub(r"\d", "X", token) + "]" if _NUMBER_RE.match(token) else token


def _sentences_with_offsets(text: str) -> list[tuple[int, int]]:
    spans = []
    position = 0
    for sentence in split_sentences(text):
        at = text.find(sentence, position)
        if at < 0:
            continue
        spans.append((at, at + len(sentence)))
        position = at + len(sentence)
    return spans


def _paragraphs_with_offsets(text: str) -> list[tuple[int, int]]:
    spans = []
    position = 0
    for part in text.split("\n\n"):
        if part.strip():
            spans.append((position, position + len(part)))
        position += len(part) + 2
    return spans


def dimensions_of(value) -> dict:
    """A fact's dimensions as a dict, from the library's dict or the table's JSON text."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        return json.loads(value)
    return {}


def _aligned_numeric(facts: pd.DataFrame, items) -> pd.DataFrame:
    """Numeric, visible facts placed in one of ``items``' text, with digits in their displayed text."""
    if facts.empty:
        return facts
    keep = (facts["is_numeric"].astype(bool) & facts["section"].isin(list(items)) & facts["start"].notna()
            & facts["display_text"].fillna("").str.contains(r"\d"))
    out = facts[keep].copy()
    out["start"] = out["start"].astype(int)
    out["end"] = out["end"].astype(int)
    out["dimensions"] = out["dimensions"].map(dimensions_of)
    return out


def _section_texts(sections: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {(a, i): t for a, i, t in zip(sections["accession"], sections["item"], sections["text"].fillna(""))}


# ------------------------------------------------------------------------------------ NER


def ner_dataset(facts: pd.DataFrame, sections: pd.DataFrame, top_k: int = 40, items=NUMERIC_TEXT_ITEMS,
                salt: str = "finsec") -> tuple[pd.DataFrame, dict]:
    """FiNER-style sentences tagged IOB2 with the us-gaap concept of each numeric fact (top-K concepts, rest O).

    A sentence is kept when it holds at least one aligned numeric fact (any concept, so sentences whose
    concepts fall outside the top K are all-O negatives, as in FiNER-139).
    """
    numeric = _aligned_numeric(facts, items)
    numeric = numeric[numeric["concept"].str.startswith("us-gaap:")]
    counts = Counter(numeric["concept"])
    top = {c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]}
    texts = _section_texts(sections)
    rows, overlaps = [], 0
    for (accession, item), group in numeric.groupby(["accession", "section"], sort=True):
        text = texts.get((accession, item))
        if not text:
            continue
        cik = int(group["cik"].iloc[0])
        spans = sorted(zip(group["start"], group["end"], group["concept"]))
        for s_start, s_end in _sentences_with_offsets(text):
            inside = [(a - s_start, b - s_start, c) for a, b, c in spans if a >= s_start and b <= s_end]
            if not inside:
                continue
            sentence = text[s_start:s_end]
            tokens, starts = tokenize(sentence)
            tags = ["O"] * len(tokens)
            for a, b, concept in inside:
                if concept not in top:
                    continue
                name = concept.split(":", 1)[1]
                hit = [i for i, st in enumerate(starts) if st < b and st + len(tokens[i]) > a]
                if any(tags[i] != "O" for i in hit):
                    overlaps += 1  # the same number tagged twice (duplicate facts): first concept kept
                    continue
                for n, i in enumerate(hit):
                    tags[i] = ("B-" if n == 0 else "I-") + name
            rows.append({"cik": cik, "accession": accession, "section": item, "text": sentence, "tokens": tokens,
                         "token_starts": starts, "tags": tags, "shape_tokens": [number_shape(t) for t in tokens]})
    columns = ["cik", "accession", "section", "text", "tokens", "token_starts", "tags", "shape_tokens"]
    df = pd.DataFrame(rows, columns=columns)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "ner")
    entity_counts = Counter(t[2:] for tags in df["tags"] for t in tags if t.startswith("B-"))
    card = data_card(
        df, "ner", labels=dict(entity_counts.most_common()), split_method=method,
        derived=(f"Sentences of items {', '.join(items)} holding at least one numeric inline-XBRL fact "
                 f"(aligned to the section text character for character). Each fact's tokens are tagged B-/I-<us-gaap "
                 f"concept> for the {len(top)} most frequent us-gaap concepts (top_k={top_k}); other tokens O. "
                 "shape_tokens replaces numbers by their shape ('[X,XXX.X]'), FiNER's fix for subword fragmentation."),
        noise=[f"{overlaps} spans carried two facts (duplicate or nested tags); the first concept was kept",
               "untagged numbers are O even when a filer tagged the same figure elsewhere (tagging is per occurrence)",
               "concepts outside the top K are O, so the same number shape can be O in one sentence and tagged in another",
               "sentence boundaries come from the text splitter and can cut at abbreviations"])
    return df, card


# ------------------------------------------------------------------------------------- QA


def qa_dataset(facts: pd.DataFrame, sections: pd.DataFrame, items=NUMERIC_TEXT_ITEMS, impossible_share: float = 1 / 3,
               seed: int = 0, salt: str = "finsec") -> tuple[pd.DataFrame, dict]:
    """SQuAD 2.0 from tagged facts: the question names the concept, period (and members), the answer is the span.

    Unanswerable questions (``impossible_share`` of all) ask a filing's question against another paragraph of the
    same filing that holds no fact of that concept and period.
    """
    numeric = _aligned_numeric(facts, items)
    texts = _section_texts(sections)
    answerable, pools = [], {}
    for (accession, item), group in numeric.groupby(["accession", "section"], sort=True):
        text = texts.get((accession, item))
        if not text:
            continue
        paragraphs = _paragraphs_with_offsets(text)
        starts = [p[0] for p in paragraphs]
        seen = set()
        for row in group.sort_values("start").itertuples(index=False):
            k = int(np.searchsorted(starts, row.start, side="right")) - 1
            if k < 0 or row.end > paragraphs[k][1]:
                continue
            p_start, p_end = paragraphs[k]
            question = question_for(row.concept, row.period_start or None, row.period_end, row.dimensions)
            key = (question, k)
            if key in seen:
                continue
            seen.add(key)
            context = text[p_start:p_end]
            answer_start = row.start - p_start
            answerable.append({"cik": int(row.cik), "accession": accession, "section": item, "question": question,
                               "context": context, "answer_text": context[answer_start:row.end - p_start],
                               "answer_start": answer_start, "is_impossible": False, "concept": row.concept,
                               "period_start": row.period_start or "", "period_end": row.period_end,
                               "_paragraph": (item, k)})
            pools.setdefault(accession, {}).setdefault((item, k), set()).add((row.concept, row.period_start or "",
                                                                                row.period_end))
            pools[accession].setdefault("_text", {})[(item, k)] = context
    rng = np.random.default_rng(seed)
    n_impossible = int(round(len(answerable) * impossible_share / (1 - impossible_share)))
    impossible = []
    order = rng.permutation(len(answerable)) if answerable else []
    for i in order:
        if len(impossible) >= n_impossible:
            break
        a = answerable[i]
        filing = pools[a["accession"]]
        key = (a["concept"], a["period_start"], a["period_end"])
        candidates = sorted(p for p in filing if p != "_text" and p != a["_paragraph"] and key not in filing[p]
                            and not any(c == a["concept"] for c, _, _ in filing[p]))
        if not candidates:
            continue
        paragraph = candidates[int(rng.integers(len(candidates)))]
        impossible.append({**a, "context": filing["_text"][paragraph], "section": paragraph[0], "answer_text": "",
                           "answer_start": -1, "is_impossible": True})
    columns = ["cik", "accession", "section", "question", "context", "answer_text", "answer_start", "is_impossible",
               "concept", "period_start", "period_end"]
    df = pd.DataFrame(answerable + impossible, columns=columns)
    df = df.sort_values(["accession", "section", "is_impossible", "question"], kind="stable").reset_index(drop=True)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "qa")
    card = data_card(
        df, "qa", labels={"answerable": int((~df["is_impossible"]).sum()), "impossible": int(df["is_impossible"].sum())},
        split_method=method,
        derived=("SQuAD 2.0. Each numeric fact tagged in a paragraph of items " + ", ".join(items) + " gives a question "
                 "'What was <concept label> [for <members>] for <period>?' (label from the element name, period from "
                 "its context); the answer is the tagged span. Unanswerable: the same question over another paragraph "
                 "of the filing that holds no fact of that concept."),
        noise=["labels are element names split into words (the taxonomy's label linkbase is not fetched offline)",
               "an unanswerable paragraph may state the figure untagged",
               "a question with several equal tagged spans in one paragraph keeps the first"])
    return df, card


# ------------------------------------------------------------------------------- relations

_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_TIME_RE = re.compile(
    rf"(?P<full>{_MONTH}\s+\d{{1,2}},\s+(?P<fy>\d{{4}}))"
    rf"|(?P<monthyear>{_MONTH}\s+(?P<my>\d{{4}}))"
    r"|(?P<fiscal>(?:fiscal|calendar)(?:\s+year)?\s+(?P<fiscal_y>\d{4}))"
    r"|(?P<year>(?<![\d,.$])(?:19|20)\d{2}(?![\d,.%]))"
)


def _time_mentions(sentence: str) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, value): kind 'date' (ISO), 'month' (YYYY-MM) or 'year' (YYYY)."""
    out = []
    for m in _TIME_RE.finditer(sentence):
        text = m.group(0)
        if m.group("full"):
            try:
                d = pd.Timestamp(text).date()
            except ValueError:
                continue
            out.append((m.start(), m.end(), "date", d.isoformat()))
        elif m.group("monthyear"):
            d = pd.Timestamp("1 " + text).date()
            out.append((m.start(), m.end(), "month", d.isoformat()[:7]))
        elif m.group("fiscal"):
            out.append((m.start(), m.end(), "year", m.group("fiscal_y")))
        else:
            out.append((m.start(), m.end(), "year", text))
    return out


def _period_matches(kind: str, value: str, period_end: str) -> bool:
    if kind == "date":
        return period_end == value
    if kind == "month":
        return period_end[:7] == value
    return period_end[:4] == value


def relation_dataset(facts: pd.DataFrame, sections: pd.DataFrame, items=NUMERIC_TEXT_ITEMS, max_pairs_per_sentence: int = 12,
                     salt: str = "finsec") -> tuple[pd.DataFrame, dict]:
    """Pairs (numeric fact, time expression or member mention) in one sentence, labelled from the fact's context."""
    numeric = _aligned_numeric(facts, items)
    texts = _section_texts(sections)
    member_names: dict[str, dict[str, str]] = {}
    for accession, dims in zip(facts["accession"], facts["dimensions"]):
        for member in dimensions_of(dims).values():
            label = member_label(member)
            if len(label) >= 4 and not label.isdigit():
                member_names.setdefault(accession, {})[member] = label
    rows = []
    for (accession, item), group in numeric.groupby(["accession", "section"], sort=True):
        text = texts.get((accession, item))
        if not text:
            continue
        members = member_names.get(accession, {})
        member_res = [(m, re.compile(r"\b" + re.escape(label) + r"\b", re.I)) for m, label in sorted(members.items())]
        group = group.sort_values("start")
        facts_list = list(group.itertuples(index=False))
        for s_start, s_end in _sentences_with_offsets(text):
            inside = [f for f in facts_list if f.start >= s_start and f.end <= s_end]
            if not inside:
                continue
            sentence = text[s_start:s_end]
            tails = [(a, b, "period", (kind, value)) for a, b, kind, value in _time_mentions(sentence)]
            for member, pattern in member_res:
                for m in pattern.finditer(sentence):
                    tails.append((m.start(), m.end(), "member", member))
            pairs = 0
            seen = set()
            for f in inside:
                head = (f.start - s_start, f.end - s_start)
                for a, b, tail_type, value in tails:
                    if a < head[1] and b > head[0]:
                        continue  # the time expression is the number itself
                    if (head, a, b) in seen or pairs >= max_pairs_per_sentence:
                        continue
                    seen.add((head, a, b))
                    if tail_type == "period":
                        label = "period_of" if _period_matches(value[0], value[1], f.period_end) else "no_relation"
                    else:
                        label = "member_of" if value in set((f.dimensions or {}).values()) else "no_relation"
                    rows.append({"cik": int(f.cik), "accession": accession, "section": item, "text": sentence,
                                 "head_start": head[0], "head_end": head[1], "tail_start": a, "tail_end": b,
                                 "tail_type": tail_type, "label": label, "concept": f.concept})
                    pairs += 1
    columns = ["cik", "accession", "section", "text", "head_start", "head_end", "tail_start", "tail_end", "tail_type",
               "label", "concept"]
    df = pd.DataFrame(rows, columns=columns)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "rel")
    labels = df.groupby(["tail_type", "label"]).size() if len(df) else pd.Series(dtype=int)
    card = data_card(
        df, "relation", labels={f"{t}/{lab}": int(n) for (t, lab), n in labels.items()}, split_method=method,
        derived=("In each sentence with a tagged numeric fact: every time expression (a full date, month and year, "
                 "'fiscal YYYY' or a bare year) is paired with the fact, period_of when the fact's context period ends "
                 "on that date / in that month / in that year, else no_relation; every mention of a dimension member "
                 "used in the filing (member element name in words) is paired, member_of when the fact's context "
                 "carries that member, else no_relation."),
        noise=["a bare year matches any period ending in that year (a quarter and the full year alike)",
               "fiscal years named after their end year and calendar years mentioned for them can disagree",
               "member mentions are found by their element names in words, so paraphrased members are missed"])
    return df, card


# -------------------------------------------------------------------------- classification


def classification_dataset(sections: pd.DataFrame, embeddings: pd.DataFrame | None, universe: pd.DataFrame | None,
                           max_paragraphs_per_section: int = 30, min_words: int = 20, seed: int = 0,
                           salt: str = "finsec") -> tuple[pd.DataFrame, dict]:
    """paragraph_item: a paragraph's section item (10-Q items read as their 10-K counterparts);
    filing_industry: a filing's SIC division from its mean pooled embedding."""
    rng = np.random.default_rng(seed)
    rows = []
    for rec in sections.sort_values(["accession", "start"]).itertuples(index=False):
        paragraphs = [p for p in str(rec.text or "").split("\n\n") if len(p.split()) >= min_words]
        if not paragraphs:
            continue
        if len(paragraphs) > max_paragraphs_per_section:
            keep = sorted(rng.choice(len(paragraphs), max_paragraphs_per_section, replace=False))
            paragraphs = [paragraphs[i] for i in keep]
        label = TEN_Q_TO_TEN_K.get(rec.item, rec.item)
        for p in paragraphs:
            rows.append({"cik": int(rec.cik), "accession": rec.accession, "task": "paragraph_item", "text": p,
                         "embedding": None, "label": label, "source_item": rec.item})
    industry_rows = 0
    if embeddings is not None and len(embeddings) and universe is not None and len(universe):
        division = dict(zip(universe["cik"].astype(int), universe["industry_code"]))
        for (accession, cik), group in embeddings.sort_values(["accession", "item"]).groupby(["accession", "cik"], sort=True):
            label = division.get(int(cik))
            vectors = [np.asarray(v, dtype=np.float32) for v in group["embedding"] if v is not None]
            if not label or not vectors:
                continue
            rows.append({"cik": int(cik), "accession": accession, "task": "filing_industry", "text": None,
                         "embedding": np.mean(vectors, axis=0).astype(np.float32), "label": label,
                         "source_item": ",".join(sorted(group["item"]))})
            industry_rows += 1
    columns = ["cik", "accession", "task", "text", "embedding", "label", "source_item"]
    df = pd.DataFrame(rows, columns=columns)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "cls")
    labels = {f"{t}/{lab}": int(n) for (t, lab), n in df.groupby(["task", "label"]).size().items()} if len(df) else {}
    card = data_card(
        df, "classification", labels=labels, split_method=method,
        derived=(f"paragraph_item: paragraphs of at least {min_words} words of every extracted section (at most "
                 f"{max_paragraphs_per_section} per section, sampled with seed {seed}), labelled with the section's "
                 "item; 10-Q items carry their 10-K counterpart (I-2 -> 7, II-1A -> 1A ...; source_item keeps the "
                 "original). filing_industry: the mean of a filing's pooled_embeddings vectors, labelled with the "
                 f"company's SIC division (company_universe.industry_code); {industry_rows} filings."),
        noise=["section boundaries come from extract_sections; a misplaced boundary mislabels its paragraphs",
               "industry labels are per company, so filing_industry has few distinct companies per label in small corpora"])
    return df, card


# --------------------------------------------------------------------------- summarization

_ENDS_LIKE_SENTENCE = re.compile(r"[.!?]['\"’”)]*$")


def risk_factors(text: str, min_body_words: int = 60) -> list[tuple[str, str]]:
    """(heading, body) pairs of a Risk Factors section.

    A paragraph is a risk factor's heading when it is one sentence of 6-80 words and the paragraph after it is
    longer body prose (at least 40 words and longer than the heading); the body runs to the next heading.
    Category headings ('Risks Related to Our Business') are short and followed by a heading, so they are skipped.
    """
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    words = [len(p.split()) for p in paragraphs]

    def is_heading(i: int) -> bool:
        if i + 1 >= len(paragraphs) or not 6 <= words[i] <= 80:
            return False
        p = paragraphs[i]
        if p.endswith(":") or p[:1].islower() or len(split_sentences(p)) > 1:
            return False
        return words[i + 1] >= 40 and words[i + 1] > words[i] and _ENDS_LIKE_SENTENCE.search(paragraphs[i + 1]) is not None

    heads = [i for i in range(len(paragraphs)) if is_heading(i)]
    pairs = []
    for n, i in enumerate(heads):
        stop = heads[n + 1] if n + 1 < len(heads) else len(paragraphs)
        body_parts = paragraphs[i + 1:stop]
        # A trailing short title-like paragraph is the next category heading, not body.
        while body_parts and len(body_parts[-1].split()) < 12 and not _ENDS_LIKE_SENTENCE.search(body_parts[-1]):
            body_parts.pop()
        body = "\n\n".join(body_parts)
        if len(body.split()) >= min_body_words:
            pairs.append((paragraphs[i], body))
    return pairs


def summarization_dataset(sections: pd.DataFrame, items=RISK_FACTOR_ITEMS, salt: str = "finsec") -> tuple[pd.DataFrame, dict]:
    """Each risk factor's body paired with its own heading (Regulation S-K Item 105 requires one per risk factor)."""
    rows = []
    chosen = sections[sections["item"].isin(list(items))].sort_values(["accession", "start"])
    for rec in chosen.itertuples(index=False):
        for heading, body in risk_factors(str(rec.text or "")):
            rows.append({"cik": int(rec.cik), "accession": rec.accession, "section": rec.item, "document": body,
                         "summary": heading})
    df = pd.DataFrame(rows, columns=["cik", "accession", "section", "document", "summary"])
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "sum")
    lengths = {"median_document_words": int(df["document"].str.split().map(len).median()) if len(df) else 0,
               "median_summary_words": int(df["summary"].str.split().map(len).median()) if len(df) else 0}
    card = data_card(
        df, "summarization", labels=lengths, split_method=method,
        derived=("Risk Factors sections (items " + ", ".join(items) + ") cut at their risk-factor headings: a "
                 "one-sentence paragraph of 6-80 words followed by longer prose; the heading is the summary, the "
                 "paragraphs up to the next heading the document."),
        noise=["headings are recognised from text shape (bold/italic formatting is not kept in section text)",
               "a one-sentence body paragraph can be taken for a heading, splitting a risk factor in two",
               "10-Q risk factor sections that only refer to the 10-K yield no rows"])
    return df, card


# ------------------------------------------------------------------------------ data card


def data_card(df: pd.DataFrame, name: str, labels: dict, split_method: str, derived: str, noise: list[str]) -> dict:
    """Sizes, label distribution, how labels were derived and known noise, as plain values for metadata."""
    sizes = {s: int((df["split"] == s).sum()) for s in SPLITS} if len(df) else dict.fromkeys(SPLITS, 0)
    companies = {s: int(df.loc[df["split"] == s, "cik"].nunique()) for s in SPLITS} if len(df) else dict.fromkeys(SPLITS, 0)
    return {"dataset": name, "rows": len(df), "filings": int(df["accession"].nunique()) if len(df) else 0,
            "sizes": sizes, "companies": companies, "split_method": split_method, "labels": labels,
            "derived": derived, "noise": noise}
