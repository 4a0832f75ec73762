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
from collections.abc import Callable, Iterable  # noqa: F401  (the Chunks annotations)
from datetime import date

import numpy as np
import pandas as pd

from finsec_assets.text.sentences import split_sentences

__all__ = [
    "SPLITS", "assign_splits", "split_of", "concept_label", "member_label", "period_phrase", "tokenize",
    "ner_dataset", "qa_dataset", "relation_dataset", "classification_dataset", "summarization_dataset",
    "risk_factors", "data_card", "ner_dataset_batches", "qa_dataset_batches", "relation_dataset_batches",
    "summarization_dataset_batches", "SplitTally",
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


def _with_splits(df: pd.DataFrame, splits: dict[int, str], prefix: str, first: int = 0) -> pd.DataFrame:
    df = df.copy()
    df["split"] = df["cik"].map(lambda c: splits[int(c)])
    df.insert(0, "id", [f"{prefix}-{i:07d}" for i in range(first, first + len(df))])
    return df


class SplitTally:
    """Rows, filings and companies per split of a dataset written in batches (what ``data_card`` reads from a frame)."""

    def __init__(self):
        self.rows, self.accessions = 0, set()
        self.sizes, self.companies = dict.fromkeys(SPLITS, 0), {s: set() for s in SPLITS}

    def add(self, df: pd.DataFrame) -> None:
        self.rows += len(df)
        self.accessions.update(df["accession"])
        for split, cik in zip(df["split"], df["cik"]):
            self.sizes[split] += 1
            self.companies[split].add(int(cik))


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
    numeric = _ner_numeric(facts, items)
    top = _top_concepts(Counter(numeric["concept"]), top_k)
    rows, overlaps = _ner_rows(numeric, _section_texts(sections), top)
    df = pd.DataFrame(rows, columns=NER_COLUMNS)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "ner")
    entity_counts = Counter(t[2:] for tags in df["tags"] for t in tags if t.startswith("B-"))
    return df, _ner_card(df, entity_counts, method, items, top, top_k, overlaps)


NER_COLUMNS = ["cik", "accession", "section", "text", "tokens", "token_starts", "tags", "shape_tokens"]


def _ner_numeric(facts: pd.DataFrame, items) -> pd.DataFrame:
    numeric = _aligned_numeric(facts, items)
    return numeric[numeric["concept"].str.startswith("us-gaap:")] if len(numeric) else numeric


def _top_concepts(counts: Counter, top_k: int) -> set:
    return {c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k]}


def _ner_rows(numeric: pd.DataFrame, texts: dict, top: set) -> tuple[list[dict], int]:
    """The NER rows of these filings' sections, in (accession, section) order, and how many spans overlapped."""
    rows, overlaps = [], 0
    if numeric.empty:
        return rows, overlaps
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
    return rows, overlaps


def _ner_card(df, entity_counts: Counter, method: str, items, top: set, top_k: int, overlaps: int) -> dict:
    return data_card(
        df, "ner", labels=dict(entity_counts.most_common()), split_method=method,
        derived=(f"Sentences of items {', '.join(items)} holding at least one numeric inline-XBRL fact "
                 f"(aligned to the section text character for character). Each fact's tokens are tagged B-/I-<us-gaap "
                 f"concept> for the {len(top)} most frequent us-gaap concepts (top_k={top_k}); other tokens O. "
                 "shape_tokens replaces numbers by their shape ('[X,XXX.X]'), FiNER's fix for subword fragmentation."),
        noise=[f"{overlaps} spans carried two facts (duplicate or nested tags); the first concept was kept",
               "untagged numbers are O even when a filer tagged the same figure elsewhere (tagging is per occurrence)",
               "concepts outside the top K are O, so the same number shape can be O in one sentence and tagged in another",
               "sentence boundaries come from the text splitter and can cut at abbreviations"])


# ------------------------------------------------------------------------------------- QA


def qa_dataset(facts: pd.DataFrame, sections: pd.DataFrame, items=NUMERIC_TEXT_ITEMS, impossible_share: float = 1 / 3,
               seed: int = 0, salt: str = "finsec") -> tuple[pd.DataFrame, dict]:
    """SQuAD 2.0 from tagged facts: the question names the concept, period (and members), the answer is the span.

    Unanswerable questions (``impossible_share`` of all) ask a filing's question against another paragraph of the
    same filing that holds no fact of that concept and period.
    """
    answerable, pools = _qa_answerable(_aligned_numeric(facts, items), _section_texts(sections))
    rng = np.random.default_rng(seed)
    n_impossible = int(round(len(answerable) * impossible_share / (1 - impossible_share)))
    impossible = []
    order = rng.permutation(len(answerable)) if answerable else []
    for i in order:
        if len(impossible) >= n_impossible:
            break
        a = answerable[i]
        candidates = _qa_candidates(a, pools[a["accession"]])
        if not candidates:
            continue
        impossible.append(_qa_impossible(a, pools[a["accession"]], candidates[int(rng.integers(len(candidates)))]))
    df = _qa_frame(answerable + impossible)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "qa")
    return df, _qa_card(df, int((~df["is_impossible"]).sum()), int(df["is_impossible"].sum()), method, items)


QA_COLUMNS = ["cik", "accession", "section", "question", "context", "answer_text", "answer_start", "is_impossible",
              "concept", "period_start", "period_end"]


def _qa_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=QA_COLUMNS)
    return df.sort_values(["accession", "section", "is_impossible", "question"], kind="stable").reset_index(drop=True)


def _qa_candidates(a: dict, filing: dict) -> list:
    """Paragraphs of the question's filing that hold no fact of its concept: where its unanswerable twin may go."""
    key = (a["concept"], a["period_start"], a["period_end"])
    return sorted(p for p in filing if p != "_text" and p != a["_paragraph"] and key not in filing[p]
                  and not any(c == a["concept"] for c, _, _ in filing[p]))


def _qa_impossible(a: dict, filing: dict, paragraph) -> dict:
    return {**a, "context": filing["_text"][paragraph], "section": paragraph[0], "answer_text": "",
            "answer_start": -1, "is_impossible": True}


def _qa_answerable(numeric: pd.DataFrame, texts: dict) -> tuple[list[dict], dict]:
    """Answerable questions of these filings in (accession, section, start) order, and each filing's paragraphs
    with the (concept, period) of the facts they hold (the pool unanswerable questions are drawn from)."""
    answerable, pools = [], {}
    if numeric.empty:
        return answerable, pools
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
    return answerable, pools


def _qa_card(df, answerable: int, impossible: int, method: str, items) -> dict:
    return data_card(
        df, "qa", labels={"answerable": answerable, "impossible": impossible},
        split_method=method,
        derived=("SQuAD 2.0. Each numeric fact tagged in a paragraph of items " + ", ".join(items) + " gives a question "
                 "'What was <concept label> [for <members>] for <period>?' (label from the element name, period from "
                 "its context); the answer is the tagged span. Unanswerable: the same question over another paragraph "
                 "of the filing that holds no fact of that concept."),
        noise=["labels are element names split into words (the taxonomy's label linkbase is not fetched offline)",
               "an unanswerable paragraph may state the figure untagged",
               "a question with several equal tagged spans in one paragraph keeps the first"])


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
    rows = _relation_rows(facts, _aligned_numeric(facts, items), _section_texts(sections), max_pairs_per_sentence)
    df = pd.DataFrame(rows, columns=RELATION_COLUMNS)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "rel")
    labels = df.groupby(["tail_type", "label"]).size() if len(df) else pd.Series(dtype=int)
    return df, _relation_card(df, {f"{t}/{lab}": int(n) for (t, lab), n in labels.items()}, method)


RELATION_COLUMNS = ["cik", "accession", "section", "text", "head_start", "head_end", "tail_start", "tail_end",
                    "tail_type", "label", "concept"]


def _relation_rows(facts: pd.DataFrame, numeric: pd.DataFrame, texts: dict, max_pairs_per_sentence: int) -> list[dict]:
    """The relation rows of these filings (``facts``: every fact of them, for the dimension members they use)."""
    if numeric.empty:
        return []
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
    return rows


def _relation_card(df, labels: dict, method: str) -> dict:
    return data_card(
        df, "relation", labels=labels, split_method=method,
        derived=("In each sentence with a tagged numeric fact: every time expression (a full date, month and year, "
                 "'fiscal YYYY' or a bare year) is paired with the fact, period_of when the fact's context period ends "
                 "on that date / in that month / in that year, else no_relation; every mention of a dimension member "
                 "used in the filing (member element name in words) is paired, member_of when the fact's context "
                 "carries that member, else no_relation."),
        noise=["a bare year matches any period ending in that year (a quarter and the full year alike)",
               "fiscal years named after their end year and calendar years mentioned for them can disagree",
               "member mentions are found by their element names in words, so paraphrased members are missed"])


# -------------------------------------------------------------------------- classification


CLASSIFICATION_COLUMNS = ["cik", "accession", "task", "text", "embedding", "label", "source_item"]


def _paragraphs(text, min_words: int) -> list[str]:
    return [p for p in str(text or "").split("\n\n") if len(p.split()) >= min_words]


def _section_rng(seed: int, accession: str, item: str, start) -> np.random.Generator:
    """A section's own draw (from the seed and the section's identity), so which paragraphs a section keeps does not
    depend on which sections were read before it: not on chunk order, nor on quarters added later."""
    key = hashlib.sha256(f"{accession}|{item}|{start}".encode()).digest()[:8]
    return np.random.default_rng([int(seed), int.from_bytes(key, "little")])


def _paragraph_rows(sections: pd.DataFrame, seed: int, max_paragraphs_per_section: int, min_words: int) -> list[dict]:
    rows = []
    for rec in sections.sort_values(["accession", "start"]).itertuples(index=False):
        paragraphs = _paragraphs(rec.text, min_words)
        if not paragraphs:
            continue
        if len(paragraphs) > max_paragraphs_per_section:
            rng = _section_rng(seed, rec.accession, rec.item, rec.start)
            keep = sorted(rng.choice(len(paragraphs), max_paragraphs_per_section, replace=False))
            paragraphs = [paragraphs[i] for i in keep]
        label = TEN_Q_TO_TEN_K.get(rec.item, rec.item)
        for p in paragraphs:
            rows.append({"cik": int(rec.cik), "accession": rec.accession, "task": "paragraph_item", "text": p,
                         "embedding": None, "label": label, "source_item": rec.item})
    return rows


def _industry_rows(embeddings: pd.DataFrame, division: dict) -> list[dict]:
    rows = []
    if embeddings is None or not len(embeddings) or not division:
        return rows
    for (accession, cik), group in embeddings.sort_values(["accession", "item"]).groupby(["accession", "cik"], sort=True):
        label = division.get(int(cik))
        vectors = [np.asarray(v, dtype=np.float32) for v in group["embedding"] if v is not None]
        if not label or not vectors:
            continue
        rows.append({"cik": int(cik), "accession": accession, "task": "filing_industry", "text": None,
                     "embedding": np.mean(vectors, axis=0).astype(np.float32), "label": label,
                     "source_item": ",".join(sorted(group["item"]))})
    return rows


def _division(universe: pd.DataFrame | None) -> dict:
    if universe is None or not len(universe):
        return {}
    return dict(zip(universe["cik"].astype(int), universe["industry_code"]))


def _classification_card(df, labels: dict, method: str, industry_rows: int, max_paragraphs_per_section: int,
                         min_words: int, seed: int) -> dict:
    return data_card(
        df, "classification", labels=labels, split_method=method,
        derived=(f"paragraph_item: paragraphs of at least {min_words} words of every extracted section (at most "
                 f"{max_paragraphs_per_section} per section, sampled with seed {seed}), labelled with the section's "
                 "item; 10-Q items carry their 10-K counterpart (I-2 -> 7, II-1A -> 1A ...; source_item keeps the "
                 "original). filing_industry: the mean of a filing's pooled_embeddings vectors, labelled with the "
                 f"company's SIC division (company_universe.industry_code); {industry_rows} filings."),
        noise=["section boundaries come from extract_sections; a misplaced boundary mislabels its paragraphs",
               "industry labels are per company, so filing_industry has few distinct companies per label in small corpora"])


def classification_dataset(sections: pd.DataFrame, embeddings: pd.DataFrame | None, universe: pd.DataFrame | None,
                           max_paragraphs_per_section: int = 30, min_words: int = 20, seed: int = 0,
                           salt: str = "finsec") -> tuple[pd.DataFrame, dict]:
    """paragraph_item: a paragraph's section item (10-Q items read as their 10-K counterparts);
    filing_industry: a filing's SIC division from its mean pooled embedding."""
    rows = _paragraph_rows(sections, seed, max_paragraphs_per_section, min_words)
    industry = _industry_rows(embeddings, _division(universe))
    df = pd.DataFrame(rows + industry, columns=CLASSIFICATION_COLUMNS)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "cls")
    labels = {f"{t}/{lab}": int(n) for (t, lab), n in df.groupby(["task", "label"]).size().items()} if len(df) else {}
    return df, _classification_card(df, labels, method, len(industry), max_paragraphs_per_section, min_words, seed)


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
    df = pd.DataFrame(_summarization_rows(sections, items), columns=SUMMARIZATION_COLUMNS)
    splits, method = assign_splits(df["cik"], salt) if len(df) else ({}, "hash")
    df = _with_splits(df, splits, "sum")
    lengths = {"median_document_words": int(df["document"].str.split().map(len).median()) if len(df) else 0,
               "median_summary_words": int(df["summary"].str.split().map(len).median()) if len(df) else 0}
    return df, _summarization_card(df, lengths, method, items)


SUMMARIZATION_COLUMNS = ["cik", "accession", "section", "document", "summary"]


def _summarization_rows(sections: pd.DataFrame, items) -> list[dict]:
    rows = []
    chosen = sections[sections["item"].isin(list(items))].sort_values(["accession", "start"])
    for rec in chosen.itertuples(index=False):
        for heading, body in risk_factors(str(rec.text or "")):
            rows.append({"cik": int(rec.cik), "accession": rec.accession, "section": rec.item, "document": body,
                         "summary": heading})
    return rows


def _summarization_card(df, lengths: dict, method: str, items) -> dict:
    return data_card(
        df, "summarization", labels=lengths, split_method=method,
        derived=("Risk Factors sections (items " + ", ".join(items) + ") cut at their risk-factor headings: a "
                 "one-sentence paragraph of 6-80 words followed by longer prose; the heading is the summary, the "
                 "paragraphs up to the next heading the document."),
        noise=["headings are recognised from text shape (bold/italic formatting is not kept in section text)",
               "a one-sentence body paragraph can be taken for a heading, splitting a risk factor in two",
               "10-Q risk factor sections that only refer to the 10-K yield no rows"])


# ------------------------------------------------------------------------------ data card


def data_card(df: pd.DataFrame, name: str, labels: dict, split_method: str, derived: str, noise: list[str]) -> dict:
    """Sizes, label distribution, how labels were derived and known noise, as plain values for metadata (``df``: the
    dataset, or the SplitTally of a dataset written in batches)."""
    if isinstance(df, SplitTally):
        return {"dataset": name, "rows": df.rows, "filings": len(df.accessions), "sizes": dict(df.sizes),
                "companies": {s: len(c) for s, c in df.companies.items()}, "split_method": split_method,
                "labels": labels, "derived": derived, "noise": noise}
    sizes = {s: int((df["split"] == s).sum()) for s in SPLITS} if len(df) else dict.fromkeys(SPLITS, 0)
    companies = {s: int(df.loc[df["split"] == s, "cik"].nunique()) for s in SPLITS} if len(df) else dict.fromkeys(SPLITS, 0)
    return {"dataset": name, "rows": len(df), "filings": int(df["accession"].nunique()) if len(df) else 0,
            "sizes": sizes, "companies": companies, "split_method": split_method, "labels": labels,
            "derived": derived, "noise": noise}


# ------------------------------------------------------------------------------ streamed
#
# The same datasets built from chunks of filings (each chunk: every fact of its filings, and their sections), so memory
# holds one chunk, not every filing. ``chunks`` is called twice and must give the same chunks in the same order both
# times (the assets: quarter, then accession): the first pass finds what needs every filing (the companies that get
# rows, so the splits; the top-K concepts; the draw of unanswerable questions, from counts only), the second builds the
# rows. The rows, their order, ids and splits are those the whole-frame functions above give for the chunks concatenated.
# The data card goes into ``card`` once the batches are used up. A dataset without rows still gives one empty frame
# (its columns). Kept for every filing: keys and counts only (the CIKs, concept counts, and for QA two integers per
# answerable question).

Chunks = "Callable[[], Iterable[tuple[pd.DataFrame, pd.DataFrame]]]"


def _splits_of(ciks: set, salt: str) -> tuple[dict[int, str], str]:
    return assign_splits(ciks, salt) if ciks else ({}, "hash")


def ner_dataset_batches(chunks: Chunks, card: dict, top_k: int = 40, items=NUMERIC_TEXT_ITEMS, salt: str = "finsec"):
    """``ner_dataset`` one chunk of filings at a time (see above)."""
    counts, ciks = Counter(), set()
    for facts, sections in chunks():
        numeric = _ner_numeric(facts, items)
        counts.update(numeric["concept"] if len(numeric) else [])
        rows, _ = _ner_rows(numeric, _section_texts(sections), set())  # which sentences, not their tags
        ciks.update(r["cik"] for r in rows)
    facts = sections = numeric = rows = None  # the last chunk of the first pass is not kept through the second
    top = _top_concepts(counts, top_k)
    splits, method = _splits_of(ciks, salt)
    tally, entities, overlaps = SplitTally(), Counter(), 0
    for facts, sections in chunks():
        rows, overlapped = _ner_rows(_ner_numeric(facts, items), _section_texts(sections), top)
        overlaps += overlapped
        df = _with_splits(pd.DataFrame(rows, columns=NER_COLUMNS), splits, "ner", tally.rows)
        entities.update(t[2:] for tags in df["tags"] for t in tags if t.startswith("B-"))
        tally.add(df)
        yield df
    if not tally.rows:
        yield _with_splits(pd.DataFrame(columns=NER_COLUMNS), splits, "ner")  # no rows: still the columns
    card.update(_ner_card(tally, entities, method, items, top, top_k, overlaps))


def qa_dataset_batches(chunks: Chunks, card: dict, items=NUMERIC_TEXT_ITEMS, impossible_share: float = 1 / 3,
                       seed: int = 0, salt: str = "finsec"):
    """``qa_dataset`` one chunk of filings at a time: the first pass keeps, per answerable question, only how many
    paragraphs of its filing could take its unanswerable twin, which is all the seeded draw needs."""
    choices, ciks = [], set()
    for facts, sections in chunks():
        answerable, pools = _qa_answerable(_aligned_numeric(facts, items), _section_texts(sections))
        choices.append(np.array([len(_qa_candidates(a, pools[a["accession"]])) for a in answerable], dtype=np.int64))
        ciks.update(a["cik"] for a in answerable)
    facts = sections = answerable = pools = None  # the last chunk of the first pass is not kept through the second
    choices = np.concatenate(choices) if choices else np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n_impossible = int(round(len(choices) * impossible_share / (1 - impossible_share)))
    # Which answerable questions get an unanswerable twin, and which candidate paragraph, in the order drawn.
    drawn_question, drawn_paragraph, n_drawn = np.zeros(n_impossible, np.int64), np.zeros(n_impossible, np.int64), 0
    for i in (rng.permutation(len(choices)) if len(choices) else []):
        if n_drawn >= n_impossible:
            break
        if choices[i]:
            drawn_question[n_drawn], drawn_paragraph[n_drawn] = i, rng.integers(int(choices[i]))
            n_drawn += 1
    drawn_question, drawn_paragraph = drawn_question[:n_drawn], drawn_paragraph[:n_drawn]
    by_question = np.argsort(drawn_question, kind="stable")  # draws ordered by question, to find a chunk's by bisection
    sorted_questions = drawn_question[by_question]
    del choices
    splits, method = _splits_of(ciks, salt)
    tally, first, n_answerable, seen = SplitTally(), 0, 0, 0
    for facts, sections in chunks():
        answerable, pools = _qa_answerable(_aligned_numeric(facts, items), _section_texts(sections))
        lo, hi = np.searchsorted(sorted_questions, [first, first + len(answerable)])
        impossible = []
        for d in np.sort(by_question[lo:hi]):  # this chunk's draws, in the order drawn
            a = answerable[int(drawn_question[d]) - first]
            pool = pools[a["accession"]]
            impossible.append(_qa_impossible(a, pool, _qa_candidates(a, pool)[int(drawn_paragraph[d])]))
        first += len(answerable)
        n_answerable += len(answerable)
        df = _with_splits(_qa_frame(answerable + impossible), splits, "qa", tally.rows)
        tally.add(df)
        seen += 1
        yield df
    if not seen:
        yield _with_splits(_qa_frame([]), splits, "qa")
    card.update(_qa_card(tally, n_answerable, n_drawn, method, items))


def relation_dataset_batches(chunks: Chunks, card: dict, items=NUMERIC_TEXT_ITEMS, max_pairs_per_sentence: int = 12,
                             salt: str = "finsec"):
    """``relation_dataset`` one chunk of filings at a time (see above)."""
    ciks = set()
    for facts, sections in chunks():
        rows = _relation_rows(facts, _aligned_numeric(facts, items), _section_texts(sections), max_pairs_per_sentence)
        ciks.update(r["cik"] for r in rows)
    facts = sections = rows = None  # the last chunk of the first pass is not kept through the second
    splits, method = _splits_of(ciks, salt)
    tally, labels = SplitTally(), Counter()
    for facts, sections in chunks():
        rows = _relation_rows(facts, _aligned_numeric(facts, items), _section_texts(sections), max_pairs_per_sentence)
        df = _with_splits(pd.DataFrame(rows, columns=RELATION_COLUMNS), splits, "rel", tally.rows)
        labels.update(zip(df["tail_type"], df["label"]))
        tally.add(df)
        yield df
    if not tally.rows:
        yield _with_splits(pd.DataFrame(columns=RELATION_COLUMNS), splits, "rel")  # no rows: still the columns
    card.update(_relation_card(tally, {f"{t}/{lab}": int(n) for (t, lab), n in sorted(labels.items())}, method))


def summarization_dataset_batches(chunks: "Callable[[], Iterable[pd.DataFrame]]", card: dict, items=RISK_FACTOR_ITEMS,
                                  salt: str = "finsec"):
    """``summarization_dataset`` one chunk of filings' sections at a time (see above); the medians are taken over
    word counts kept for every row (one number a row)."""
    ciks = set()
    for sections in chunks():
        ciks.update(r["cik"] for r in _summarization_rows(sections, items))
    sections = None  # the last chunk of the first pass is not kept through the second
    splits, method = _splits_of(ciks, salt)
    tally, document_words, summary_words = SplitTally(), [], []
    for sections in chunks():
        df = _with_splits(pd.DataFrame(_summarization_rows(sections, items), columns=SUMMARIZATION_COLUMNS), splits,
                          "sum", tally.rows)
        document_words += df["document"].str.split().map(len).tolist()
        summary_words += df["summary"].str.split().map(len).tolist()
        tally.add(df)
        yield df
    if not tally.rows:
        yield _with_splits(pd.DataFrame(columns=SUMMARIZATION_COLUMNS), splits, "sum")  # no rows: still the columns
    lengths = {"median_document_words": int(pd.Series(document_words).median()) if document_words else 0,
               "median_summary_words": int(pd.Series(summary_words).median()) if summary_words else 0}
    card.update(_summarization_card(tally, lengths, method, items))


def classification_dataset_batches(section_chunks: "Callable[[], Iterable[pd.DataFrame]]",
                                   embedding_chunks: "Callable[[], Iterable[pd.DataFrame]]", universe: pd.DataFrame | None,
                                   card: dict, max_paragraphs_per_section: int = 30, min_words: int = 20, seed: int = 0,
                                   salt: str = "finsec"):
    """``classification_dataset`` one chunk of filings at a time: the paragraphs chunk by chunk (each section sampled
    with its own seeded draw, so the rows do not depend on the chunks), then the filings' mean vectors.
    The first pass keeps only the CIKs that get a row."""
    division = _division(universe)
    ciks: set = set()
    for sections in section_chunks():
        ciks.update(int(rec.cik) for rec in sections.itertuples(index=False) if _paragraphs(rec.text, min_words))
    for embeddings in embedding_chunks() if division else ():
        ciks.update(r["cik"] for r in _industry_rows(embeddings, division))
    sections = embeddings = None  # the last chunk of the first pass is not kept through the second
    splits, method = _splits_of(ciks, salt)
    tally, labels, industry = SplitTally(), Counter(), 0

    def batch(rows: list[dict]) -> pd.DataFrame:
        df = _with_splits(pd.DataFrame(rows, columns=CLASSIFICATION_COLUMNS), splits, "cls", tally.rows)
        labels.update(zip(df["task"], df["label"]))
        tally.add(df)
        return df

    for sections in section_chunks():
        rows = _paragraph_rows(sections, seed, max_paragraphs_per_section, min_words)
        if rows:
            yield batch(rows)
    for embeddings in embedding_chunks() if division else ():
        rows = _industry_rows(embeddings, division)
        industry += len(rows)
        if rows:
            yield batch(rows)
    if not tally.rows:
        yield _with_splits(pd.DataFrame(columns=CLASSIFICATION_COLUMNS), splits, "cls")  # no rows: still the columns
    card.update(_classification_card(tally, {f"{t}/{lab}": int(n) for (t, lab), n in sorted(labels.items())}, method,
                                     industry, max_paragraphs_per_section, min_words, seed))
