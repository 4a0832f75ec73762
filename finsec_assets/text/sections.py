"""Split a 10-K or 10-Q into its items (Business, Risk Factors, MD&A, ...).

How it reads a filing:

1. :func:`finsec_assets.text.html.parse_document` cleans the document into
   paragraphs (tables apart, page furniture gone) and keeps printed page labels.
2. Every paragraph that *starts* like an item heading ("Item 7.", "ITEM 7A",
   "Items 1 and 2.", "Item No. 1", "PART I - Item 2", a heading split over two
   paragraphs) is a candidate; "PART II" paragraphs set the part context, and a
   10-Q item's part comes from its own title when it names one ("Legal
   Proceedings" is Part II Item 1), so Part I and Part II numbers never collide.
3. One occurrence per item is chosen by dynamic programming: the subsequence of
   candidates in the form's canonical item order with the most weight, where a
   candidate weighs more the more body text follows it and when its title is the
   item's usual title. Table-of-contents entries (little text before the next
   entry, a trailing page number) lose to the real headings.
4. Filings organised by a *cross-reference index* instead of item headings
   (GE) are mapped through that index's page references and the printed page
   numbers; filings with neither fall back to headings that are item titles.
   When headings found some items but a titled index ("Form 10-Q
   cross-reference index") places others (a 10-Q laid out by topic), the index
   fills them in; an index footnote ("Not applicable(a)") that points to the
   annual report becomes the item's text, flagged ``incorporated_by_reference``.

Offsets: ``Section.start``/``end`` index into the text returned by
``html_to_text(document)`` and ``Section.text == full_text[start:end]``; the
heading itself is not part of the span. Nothing here raises on bad content:
:func:`extract_sections_with_report` returns flags and warnings instead.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from finsec_assets.text.html import ParsedDocument, _form_family, parse_document

__all__ = [
    "Section",
    "SectionReport",
    "TEN_K_ITEMS",
    "TEN_Q_ITEMS",
    "MDNA_ITEM",
    "RISK_FACTORS_ITEM",
    "DOCUMENT_FLAGS",
    "SECTION_FLAGS",
    "extract_sections",
    "extract_sections_with_report",
    "sections_from_parsed",
    "is_table_of_contents",
    "required_items",
]

TEN_K_ITEMS: tuple[str, ...] = (
    "1", "1A", "1B", "1C", "2", "3", "4", "4A", "5", "6", "7", "7A", "8",
    "9", "9A", "9B", "9C", "10", "11", "12", "13", "14", "15", "16",
)  # fmt: skip
TEN_Q_ITEMS: tuple[str, ...] = (
    "I-1", "I-2", "I-3", "I-4", "II-1", "II-1A", "II-2", "II-3", "II-4", "II-5", "II-6",
)  # fmt: skip
MDNA_ITEM = {"10-K": "7", "10-Q": "I-2"}
RISK_FACTORS_ITEM = {"10-K": "1A", "10-Q": "II-1A"}

DOCUMENT_FLAGS = {
    "empty_document": "no text at all (empty bytes, or only markup)",
    "binary_document": "PDF, image, archive or other non-text bytes",
    "unsupported_form": "the form is not a 10-K or 10-Q (or their variants)",
    "form_mismatch": "the cover page or SGML type says the other form; items follow the content",
    "no_items_found": "no item could be located",
    "missing_mdna": "no MD&A section located",
    "incorporated_by_reference": "at least one item only points elsewhere (proxy, Exhibit 13)",
    "mdna_incorporated_by_reference": "the MD&A only points elsewhere (usually Exhibit 13)",
    "cross_reference_index": "items located through a Form 10-K/10-Q cross-reference index",
    "title_headings": "items located by their titles, the document has no item labels",
}
SECTION_FLAGS = {
    "incorporated_by_reference": "the section is a pointer to text elsewhere; text is the pointer",
    "combined_heading": "one heading covers several items ('Items 1 and 2.')",
    "empty": "no body text (a combined-heading placeholder or an index entry)",
    "not_applicable": "the body only says None / Not applicable / Reserved",
    "cross_reference_index": "located through the cross-reference index's page references",
    "cross_reference_overlap": "its pages lie inside another item's pages; text left to that item",
    "cross_reference_unresolved": "its page reference could not be matched to printed page numbers",
    "title_heading": "located by its title, without an 'Item' label",
    "run_in_heading": "the heading starts a paragraph that continues with body text",
}


@dataclass(frozen=True)
class Section:
    """One item of a filing. ``text == full_text[start:end]`` (heading excluded)."""

    item: str
    title: str
    text: str
    start: int
    end: int
    flags: tuple[str, ...] = ()


@dataclass
class SectionReport:
    """Sections plus what was odd about the document, for the asset's rows and checks."""

    sections: list[Section]
    form: str
    detected_form: str | None
    format: str
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    text: str = ""

    def get(self, item: str) -> Section | None:
        for section in self.sections:
            if section.item == item:
                return section
        return None


# ------------------------------------------------------------------------ item titles

_TITLE_10K = {
    "1": r"business",
    "1A": r"risk factors",
    "1B": r"unresolved (?:sec )?staff comments",
    "1C": r"cybersecurity",
    "2": r"(?:description of )?propert(?:y|ies)",
    "3": r"legal proceedings",
    "4": r"mine safety disclosures?|submission of matters to a vote|\(?removed and reserved\)?|\[?reserved\]?",
    "4A": r"(?:information about (?:our )?)?executive officers",
    "5": r"market for (?:the )?(?:registrant|company|our)?.{0,3}\s*(?:common )?(?:equity|stock)",
    "6": r"selected (?:consolidated )?financial data|\[?reserved\]?|\(?removed and reserved\)?",
    "7": r"management.{0,2}s discussion and analysis",
    "7A": r"quantitative and qualitative disclosures? (?:about|of|on|regarding|related to) market risks?",
    "8": r"(?:consolidated )?financial statements(?: and supplementa(?:ry|l) (?:data|information))?",
    "9": r"changes in and disagreements with accountants",
    "9A": r"controls and procedures",
    "9B": r"other information",
    "9C": r"disclosure regarding foreign jurisdictions",
    "10": r"directors,? (?:and )?executive officers",
    "11": r"executive compensation",
    "12": r"security ownership of certain beneficial owners",
    "13": r"certain relationships and related transactions",
    "14": r"principal account(?:ant|ing) fees and services",
    "15": r"exhibits?(?:,| and)? (?:and )?financial statement schedules|exhibits",
    "16": r"form 10-k summary",
}
_TITLE_10Q = {
    "I-1": r"(?:condensed |consolidated |interim )*financial statements",
    "I-2": r"management.{0,2}s discussion and analysis",
    "I-3": r"quantitative and qualitative disclosures? (?:about|of|on|regarding|related to) market risks?",
    "I-4": r"controls and procedures",
    "II-1": r"legal proceedings",
    "II-1A": r"risk factors",
    "II-2": r"unregistered sales of equity securities|changes in securities|issuer purchases of equity",
    "II-3": r"defaults upon senior securities",
    "II-4": r"mine safety disclosures?|submission of matters to a vote|\(?removed and reserved\)?|\[?reserved\]?",
    "II-5": r"other information",
    "II-6": r"exhibits",
}
_TITLE_RES = {
    "10-K": {k: re.compile(f"^(?:{v})", re.I) for k, v in _TITLE_10K.items()},
    "10-Q": {k: re.compile(f"^(?:{v})", re.I) for k, v in _TITLE_10Q.items()},
}
_ORDER = {"10-K": {k: i for i, k in enumerate(TEN_K_ITEMS)}, "10-Q": {k: i for i, k in enumerate(TEN_Q_ITEMS)}}

# ------------------------------------------------------------------------ heading grammar

_ROMAN = {"i": "I", "ii": "II", "iii": "III", "iv": "IV", "1": "I", "2": "II", "3": "III", "4": "IV",
          "one": "I", "two": "II", "three": "III", "four": "IV"}  # fmt: skip
_PART_RE = re.compile(r"^part\s*(iv|iii|ii|i|[1-4]|one|two|three|four)(?![a-z0-9])\s*[.:,\-–—]?\s*", re.I)
_ITEM_NUMBER = r"(\d{1,2})(?:\s?\(?([a-d])\)?(?![a-z]))?"
_ITEM_RE = re.compile(r"^items?\s*(?:no\.?|number|#)?\s*" + _ITEM_NUMBER + r"(?!\d|\.\d|,\d{3})", re.I)
_MORE_RE = re.compile(
    r"^\s*(,|and|&|through|thru|to|-|–|—)\s*(?:items?\s*)?" + _ITEM_NUMBER + r"(?![\d])", re.I
)
_SEPARATOR_RE = re.compile(r"^[\s.:\-–—)]*")
_SENTENCE_END_RE = re.compile(r"[.:](?:\s+|$)")
_TRAILING_PAGE_RE = re.compile(r"(?:\.{2,}|\s)\s*(?:page\s*)?(?:[A-Z]{1,2}-)?\d{1,3}\s*$", re.I)
_LOWER_START_RE = re.compile(r"^[a-z]")
_SIGNATURES_RE = re.compile(r"^signatures?\b\s*[.:]?\s*$|^signatures?\s*\n", re.I)
_EXHIBIT_ITEMS = {"15", "II-6"}  # exhibit lists cite earlier filings by nature
_RESERVED_TITLE_RE = re.compile(r"\[?\(?reserved\]?\)?\s*$|^\W*removed and reserved", re.I)
_POINTER_RE = re.compile(
    r"(?:information|disclosures?|discussion|matters|response)\b[^.]{0,200}?\b"
    r"(?:is|are|will\s+be|has\s+been|have\s+been|shall\s+be)\s+(?:hereby\s+|also\s+)?"
    r"(?:incorporated\s+(?:herein\s+)?by\s+reference"
    r"|(?:set\s+forth|contained|included|presented|found|located|provided|disclosed|discussed)\s+(?:in|under|on|within|at)\b)"
    r"|incorporated\s+(?:herein\s+)?by\s+reference\s+(?:herein|in\s+this\s+item)",
    re.I,
)
_RUN_IN_CAPS_RE = re.compile(r"^[A-Z][A-Z0-9 ,’'&()\-–—/]{3,}[.:]\s+")
_SEE_ELSEWHERE_RE = re.compile(
    r"^(?:for\s+(?:a|an|more|additional|further)?\s*(?:discussion|information|description)\b[^.]{0,200}?,\s*)?"
    r"(?:please\s+)?(?:refer\s+to|see)\b",
    re.I,
)
# A short body whose point is "see the annual report / proxy statement" (a 10-Q's Risk Factors
# stub): "... refer to Part I, Item 1A, Risk Factors, in our Annual Report on Form 10-K ...".
_ELSEWHERE_POINTER_RE = re.compile(
    r"\b(?:refer\s+to|see|described\s+(?:in|under)|discussed\s+(?:in|under)|set\s+forth\s+(?:in|under)"
    r"|included\s+in|contained\s+in|disclosed\s+in|incorporated\s+(?:herein\s+)?by\s+reference)\b"
    r"[^.]{0,200}?\b(?:our|the|its|the\s+company[’']s|the\s+registrant[’']s)\s+(?:\d{4}\s+)?"
    r"(?:annual\s+report|form\s+10-k|proxy\s+statement)\b",
    re.I,
)
_STUB_MAX_CHARS = 1000
_NOT_APPLICABLE_RE = re.compile(
    r"^(?:none|not\s+applicable|n/a|\[?reserved\]?|omitted|nothing to report|no\s+(?:matters|items?)\b[^.]*)\.?$",
    re.I,
)

_MAX_HEADING_CHARS = 300
_CROSS_REFERENCE_RE = re.compile(
    r"\b(?:of|in|to)\s+(?:our|the|this|its|such)\s+(?:\d{4}\s+)?(?:annual\s+report|form\s+10-[kq]|quarterly\s+report|report)\b",
    re.I,
)


def _is_heading_text(rest: str) -> bool:
    """'FINANCIAL INFORMATION', 'Other Information' or nothing: a heading, not a sentence."""
    rest = rest.strip(" .:-–—")
    return not rest or (len(rest) <= 80 and (rest.isupper() or _is_title_case(rest)))


@dataclass
class _Candidate:
    block: int
    start: int  # heading start offset
    body_start: int  # first offset after the heading
    keys: list[str]  # possible item keys for the first item (10-Q Part I/II ambiguity)
    span: list[str]  # all item numbers of a combined heading ("1", "2")
    title: str
    flags: list[str]
    weight_bonus: dict[str, float]
    toc_like: bool = False


def _normalize_title(title: str) -> str:
    return title.replace("’", "'").replace("‘", "'").replace("`", "'").strip(" .:-–—")


def _item_id(number: str, letter: str | None) -> str:
    return f"{int(number)}{(letter or '').upper()}"


def _title_matches(form: str, key: str, title: str) -> bool:
    regex = _TITLE_RES[form].get(key)
    return bool(regex and regex.match(_normalize_title(title)))


def _matching_keys(form: str, title: str) -> list[str]:
    normalized = _normalize_title(title)
    return [key for key, regex in _TITLE_RES[form].items() if regex.match(normalized)]


def _parse_heading(text: str) -> tuple[str | None, list[str], str, int] | None:
    """'PART II, Item 1A. Risk Factors' -> ('II', ['1A'], 'Risk Factors', title_offset)."""
    part = None
    offset = 0
    part_match = _PART_RE.match(text)
    if part_match:
        part = _ROMAN[part_match.group(1).lower()]
        rest = text[part_match.end():]
        item_at = re.search(r"\bitems?\b", rest[:80], re.I)
        if not item_at:
            return None
        offset = part_match.end() + item_at.start()
    match = _ITEM_RE.match(text, offset) if offset == 0 else _ITEM_RE.match(text[offset:])
    if not match:
        return None
    numbers = [_item_id(match.group(1), match.group(2))]
    position = offset + match.end()
    while True:
        more = _MORE_RE.match(text[position:])
        if not more:
            break
        connector = more.group(1).lower()
        numbers.append(("..." if connector in {"through", "thru", "to"} else "") + _item_id(more.group(2), more.group(3)))
        position += more.end()
    separator = _SEPARATOR_RE.match(text[position:])
    title_offset = position + (separator.end() if separator else 0)
    return part, numbers, text[title_offset:], title_offset


def _expand_span(form: str, part: str | None, numbers: list[str]) -> list[str]:
    """['1', '...3'] -> ['1', '1A', '1B', '1C', '2', '3'] in canonical order (10-K ids)."""
    order = TEN_K_ITEMS if form == "10-K" else tuple(k.split("-")[1] for k in TEN_Q_ITEMS if k.startswith((part or "I") + "-"))
    out: list[str] = []
    for number in numbers:
        if number.startswith("...") and out and out[-1] in order and number[3:] in order:
            low, high = order.index(out[-1]), order.index(number[3:])
            out.extend(order[low + 1: high + 1])
        else:
            out.append(number.lstrip("."))
    return out


# ---------------------------------------------------------------------- candidates


def _find_candidates(parsed: ParsedDocument, form: str) -> tuple[list[_Candidate], list[tuple[int, str]]]:
    """Item-heading candidates and PART markers (block index, part) in document order."""
    text = parsed.text
    candidates: list[_Candidate] = []
    parts: list[tuple[int, str]] = []
    part_context: str | None = None
    n_blocks = len(parsed.blocks)
    for index, (start, end) in enumerate(parsed.blocks):
        block = text[start:end]
        head = block[:12].lower()
        if not (head.startswith("item") or head.startswith("part")):
            continue
        parsed_heading = _parse_heading(block)
        if parsed_heading is None:
            part_match = _PART_RE.match(block)
            if part_match and len(block) <= 200 and _is_heading_text(block[part_match.end():]):
                part_context = _ROMAN[part_match.group(1).lower()]
                parts.append((index, part_context))
            continue
        part, numbers, title, title_offset = parsed_heading
        flags: list[str] = []
        body_start = end
        title = title.strip()
        if not title:
            # "Item 7." alone: the title is the next paragraph when it is short and not a heading.
            if index + 1 < n_blocks:
                next_start, next_end = parsed.blocks[index + 1]
                following = text[next_start:next_end]
                if len(following) <= 200 and not re.match(r"^(?:items?|part)\b", following, re.I):
                    title = following
                    body_start = next_end
        elif _LOWER_START_RE.match(title) and not title.lower().startswith(("and", "&")):
            continue  # "Item 7 of our Annual Report ..." is a cross-reference, not a heading
        if _CROSS_REFERENCE_RE.search(title[:160]):
            continue  # "Item 1A, Risk Factors, of our 2023 Form 10-K describes ..."
        known = _matching_keys(form, title) if title else []
        if form == "10-Q":
            keys = _ten_q_keys(numbers[0], part, part_context, known)
        else:
            keys = [numbers[0]] if numbers[0] in _ORDER["10-K"] else []
        if not keys:
            continue
        # A heading that runs into its body ("Item 5. Other Information. None." or a long
        # paragraph): cut the title after the known title at the first sentence end.
        if title and body_start == end:
            cut = None
            regex = next((_TITLE_RES[form][k] for k in keys if _title_matches(form, k, title)), None)
            if regex is not None:
                normalized = _normalize_title(title)
                lead = len(title) - len(title.lstrip(" .:-–—"))
                matched = regex.match(normalized)
                sentence_end = _SENTENCE_END_RE.search(title, lead + matched.end())
                if sentence_end and sentence_end.end() < len(title):
                    cut = sentence_end
            if cut is not None:
                body_start = start + title_offset + cut.end()
                title = title[: cut.start()]
                flags.append("run_in_heading")
            elif len(block) > _MAX_HEADING_CHARS:
                continue
        if part:
            part_context = part
            parts.append((index, part))
        toc_like = bool(_TRAILING_PAGE_RE.search(title)) and len(title) < 200
        bonus = {key: (2.0 if _title_matches(form, key, title) else (-3.0 if known else 0.0)) for key in keys}
        span = _expand_span(form, part or (keys[0].split("-")[0] if form == "10-Q" else None), numbers)
        candidates.append(
            _Candidate(
                block=index,
                start=start,
                body_start=body_start,
                keys=keys,
                span=span,
                title=_normalize_title(title) if title else "",
                flags=flags,
                weight_bonus=bonus,
                toc_like=toc_like,
            )
        )
    return candidates, parts


def _ten_q_keys(number: str, part: str | None, context: str | None, known: list[str]) -> list[str]:
    valid = set(TEN_Q_ITEMS)
    if part:  # an explicit "PART II - Item 1" wins; "Part I, Item 1A" is no 10-Q heading
        key = f"{part}-{number}"
        return [key] if key in valid else []
    by_title = [k for k in known if k.split("-")[1] == number]
    if by_title:
        return by_title[:1]
    options = [f"{p}-{number}" for p in ("I", "II") if f"{p}-{number}" in valid]
    if context and f"{context}-{number}" in valid:
        # The PART context decides first; the other part stays possible for the DP.
        preferred = f"{context}-{number}"
        return [preferred] + [o for o in options if o != preferred]
    return options


# ---------------------------------------------------------------------- selection


def _choose(candidates: list[_Candidate], form: str, text_length: int) -> list[tuple[_Candidate, str]]:
    """Max-weight subsequence of candidates in canonical item order."""
    order = _ORDER[form]
    n = len(candidates)
    if n == 0:
        return []
    starts = [c.start for c in candidates] + [text_length]
    nodes: list[tuple[int, str, int, int, float]] = []  # (candidate, key, first order, last order, weight)
    for i, candidate in enumerate(candidates):
        body = max(0, starts[i + 1] - candidate.body_start)
        for rank, key in enumerate(candidate.keys):
            first = order[key]
            last = first
            for extra in candidate.span[1:]:
                extra_key = extra if form == "10-K" else f"{key.split('-')[0]}-{extra}"
                if extra_key in order and order[extra_key] > last:
                    last = order[extra_key]
            weight = 1.0 + math.log1p(body) + candidate.weight_bonus.get(key, 0.0) - 0.25 * rank
            if candidate.toc_like:
                weight -= 4.0
            nodes.append((i, key, first, last, weight))
    best = [0.0] * len(nodes)
    back = [-1] * len(nodes)
    for j, (cj, _, first_j, _, weight_j) in enumerate(nodes):
        best[j] = weight_j
        for i in range(j):
            ci, _, _, last_i, _ = nodes[i]
            if ci < cj and last_i < first_j and best[i] + weight_j > best[j]:
                best[j] = best[i] + weight_j
                back[j] = i
    j = max(range(len(nodes)), key=lambda k: best[k])
    chosen = []
    while j != -1:
        chosen.append((candidates[nodes[j][0]], nodes[j][1]))
        j = back[j]
    chosen.reverse()
    # An item starts at the first of a run of its own headings ("Item 7" then running
    # headers "Item 7 (continued)"): walk back over same-item candidates only.
    index_of = {id(c): i for i, c in enumerate(candidates)}
    merged = []
    floor = -1
    for candidate, key in chosen:
        i = index_of[id(candidate)]
        while i - 1 > floor and key in candidates[i - 1].keys and not candidates[i - 1].toc_like:
            i -= 1
        merged.append((candidates[i], key))
        floor = index_of[id(candidate)]
    return merged


# ---------------------------------------------------------------------- assembly


def _section_flags(body: str, base: list[str], key: str = "", title: str = "") -> list[str]:
    flags = list(base)
    stripped = body.strip()
    if not stripped:
        flags.append("empty")
    if (stripped and len(stripped) <= 60 and _NOT_APPLICABLE_RE.match(stripped)) or (
        len(stripped) <= 60 and _RESERVED_TITLE_RE.search(title)
    ):
        flags.append("not_applicable")
    elif stripped and len(stripped) <= 1500 and key not in _EXHIBIT_ITEMS:
        pointer = _POINTER_RE.search(stripped)
        probe = _RUN_IN_CAPS_RE.sub("", stripped, count=1)  # "LEGAL PROCEEDINGS. Refer to ..."
        if (
            (pointer and pointer.start() < 600)
            or (len(stripped) <= 600 and _SEE_ELSEWHERE_RE.match(probe))
            or (len(stripped) <= _STUB_MAX_CHARS and _ELSEWHERE_POINTER_RE.search(stripped))
        ):
            flags.append("incorporated_by_reference")
    return flags


def _build_sections(
    parsed: ParsedDocument,
    form: str,
    chosen: list[tuple[_Candidate, str]],
    parts: list[tuple[int, str]],
) -> list[Section]:
    text = parsed.text
    blocks = parsed.blocks
    # Only paragraphs that change the PART end a section (not a repeated "PART I" header).
    part_blocks = []
    current_part = None
    for index, part in sorted(parts):
        if part != current_part:
            part_blocks.append(index)
        current_part = part
    sections: list[Section] = []
    for n, (candidate, key) in enumerate(chosen):
        if n + 1 < len(chosen):
            end_block = chosen[n + 1][0].block
        else:
            end_block = _signatures_block(parsed, candidate.block)
        # A PART marker paragraph between two items belongs to neither.
        for part_block in part_blocks:
            if candidate.block < part_block < end_block:
                end_block = part_block
                break
        end = blocks[end_block - 1][1] if end_block - 1 >= 0 and end_block <= len(blocks) else len(text)
        if end_block <= candidate.block:
            end = candidate.body_start
        start = min(candidate.body_start, end)
        body = text[start:end]
        # Trim whitespace at the edges but keep start/end exact.
        stripped_left = len(body) - len(body.lstrip())
        start += stripped_left
        end = start + len(body.strip())
        body = text[start:end]
        flags = list(candidate.flags)
        extra_items = []
        if len(candidate.span) > 1:
            flags.append("combined_heading")
            prefix = key.split("-")[0] + "-" if form == "10-Q" else ""
            extra_items = [prefix + item for item in candidate.span[1:] if prefix + item in _ORDER[form]]
        title = candidate.title
        sections.append(Section(key, title, body, start, end, tuple(_section_flags(body, flags, key, title))))
        for extra in extra_items:
            sections.append(Section(extra, title, "", end, end, ("combined_heading", "empty")))
    return sections


def _signatures_block(parsed: ParsedDocument, after_block: int) -> int:
    text = parsed.text
    for index in range(after_block + 1, len(parsed.blocks)):
        start, end = parsed.blocks[index]
        if end - start <= 40 and _SIGNATURES_RE.match(text[start:end]):
            return index
    return len(parsed.blocks)


# ------------------------------------------------------------- cross-reference index

_XREF_TITLE_RE = re.compile(r"cross[\s-]*reference\s+index|form\s+10-[kq]\s+(?:cross[\s-]*reference|index)", re.I)
_PAGE_RANGE_RE = re.compile(r"((?:[A-Z]{1,2}-)?\d{1,3})(?:\s*[-–—]\s*((?:[A-Z]{1,2}-)?\d{1,3}))?")


def _cross_reference_sections(parsed: ParsedDocument, form: str, titled_only: bool = False) -> list[Section] | None:
    """Sections from a 'Form 10-K Cross Reference Index' table mapped through page labels."""
    table = _cross_reference_table(parsed, titled_only)
    if table is None or not parsed.page_labels:
        return None
    pages = _PageMap(parsed)
    entries = _cross_reference_entries(table, form, pages)
    if len(entries) < 4:
        return None
    if not any(_PAGE_RANGE_RE.search(e.reference) and _PAGE_RANGE_RE.search(e.reference).group(2) for e in entries):
        # Only start pages are given (McDonald's): an item runs until the next item starts.
        for entry in entries:
            entry.spans = [(first, max(last, _signatures_block(parsed, first))) for first, last in entry.spans]

    # Each item keeps its first page range that is not embedded in another item's larger
    # range (GE's Item 7A is a few pages inside MD&A): no text is claimed twice.
    placed: list[tuple[int, int, int]] = []  # (start block, end block, entry)
    for n, entry in enumerate(entries):
        for first, last in entry.spans:
            title_block = _find_title_block(parsed, form, entry.key, first, pages.page_end(first))
            if not _embedded(n, first, last, title_block, entries, parsed, form, pages):
                start = first
                if title_block is not None:
                    start = title_block + 1 if _is_bare_title(parsed, form, entry.key, title_block) else title_block
                placed.append((start, last, n))
                break
    placed.sort()
    text = parsed.text
    blocks = parsed.blocks
    spans: dict[int, tuple[int, int]] = {}
    for k, (first, last, n) in enumerate(placed):
        if k + 1 < len(placed):
            next_start = placed[k + 1][0]
            # the next item's own title paragraph is not part of this one
            if next_start > 0 and next_start - 1 > first and _find_title_block(
                parsed, form, entries[placed[k + 1][2]].key, next_start - 1, next_start
            ) is not None:
                next_start -= 1
            last = min(last, next_start)
        if last > first:
            spans[n] = (first, last)
    anchor = blocks[min(table.before_block, len(blocks) - 1)][0] if blocks else 0
    for first, last in spans.values():  # empty entries sit where no other section is
        if blocks[first][0] <= anchor < blocks[last - 1][1]:
            anchor = blocks[last - 1][1]
    sections = []
    entries_by_key = {entry.key: entry for entry in entries}
    footnote_uses = Counter(entry.footnote_block for entry in entries)  # "(b)" shared by Items 10-14: no text
    for n, entry in enumerate(entries):
        if n in spans:
            first, last = spans[n]
            start, end = blocks[first][0], blocks[last - 1][1]
            body = text[start:end]
            flags = _section_flags(body, ["cross_reference_index"], entry.key, entry.title)
            sections.append(Section(entry.key, entry.title, body, start, end, tuple(flags)))
            continue
        if entry.footnote_block is not None and footnote_uses[entry.footnote_block] == 1:
            # "Not applicable(a)" + "(a) For a discussion of our risk factors, refer to our Annual
            # Report on Form 10-K": the footnote is the item's (pointer) text.
            start, end = blocks[entry.footnote_block]
            body = text[start:end]
            flags = _section_flags(body, ["cross_reference_index"], entry.key, entry.title)
            if "incorporated_by_reference" in flags:
                sections.append(Section(entry.key, entry.title, body, start, end, tuple(flags)))
                continue
        flags = ["cross_reference_index", "empty"]
        if entry.spans:
            flags.append("cross_reference_overlap")
        elif _PAGE_RANGE_RE.search(entry.reference) and not re.fullmatch(r"\W*\(?[a-z]\)?\W*", entry.reference):
            flags.append("cross_reference_unresolved")
        elif _NOT_APPLICABLE_REF_RE.search(entry.reference):
            flags.append("not_applicable")
        elif entry.reference:
            flags.append("incorporated_by_reference")
        sections.append(Section(entry.key, entry.title, "", anchor, anchor, tuple(flags)))
    # A footnote given to an item is not also the tail of the section that ran into it.
    for n, footnote in enumerate(sections):
        if not footnote.text or entries_by_key[footnote.item].footnote_block is None:
            continue
        for i, section in enumerate(sections):
            if i == n or not section.text or section.end <= footnote.start or footnote.end <= section.start:
                continue
            if section.start < footnote.start and section.end == footnote.end:
                body = text[section.start:footnote.start].rstrip()
                sections[i] = Section(section.item, section.title, body, section.start, section.start + len(body),
                                      section.flags)
            else:  # inside another item's text: the index's own flags stand
                flags = ("cross_reference_index", "empty", "incorporated_by_reference")
                sections[n] = Section(footnote.item, footnote.title, "", anchor, anchor, flags)
                break
    order = _ORDER[form]
    sections.sort(key=lambda s: (s.start, order[s.item]))
    return sections


_NOT_APPLICABLE_REF_RE = re.compile(r"not\s+applicable|\bnone\b|\bn/a\b|\[?reserved\]?", re.I)


@dataclass
class _IndexEntry:
    key: str
    title: str
    reference: str
    spans: list[tuple[int, int]]  # (first block, end block) per page range
    footnote_block: int | None = None  # "Not applicable(a)": the "(a) ..." paragraph under the index


def _cross_reference_table(parsed: ParsedDocument, titled_only: bool = False):
    """The document's item -> pages index table; titled: named so in its header or the paragraph above it."""
    best = None
    for table in parsed.tables:
        item_rows = sum(1 for row in table.rows if any(_ITEM_RE.match(c) for c in row[:2] if c))
        header = " ".join(" ".join(row) for row in table.rows[:3])
        above = parsed.block_text(table.before_block - 1) if 0 < table.before_block <= len(parsed.blocks) else ""
        titled = bool(_XREF_TITLE_RE.search(header) or (len(above) <= 120 and _XREF_TITLE_RE.search(above)))
        if titled_only and not titled:
            continue
        if item_rows >= 4 and (titled or item_rows >= 8) and (best is None or (titled and not best[1])):
            best = (table, titled)
    return best[0] if best else None


_FOOTNOTE_MARK_RE = re.compile(r"\(([a-z])\)\s*$")


def _footnote_block(parsed: ParsedDocument, table, reference: str) -> int | None:
    """The paragraph under the index that a reference's trailing "(a)" points to."""
    mark = _FOOTNOTE_MARK_RE.search(reference)
    if not mark:
        return None
    for index in range(table.before_block, min(table.before_block + 12, len(parsed.blocks))):
        if parsed.block_text(index).startswith(f"({mark.group(1)})"):
            return index
    return None


def _cross_reference_entries(table, form: str, pages: "_PageMap") -> list[_IndexEntry]:
    entries: list[_IndexEntry] = []
    part = "I"
    for row in table.rows:
        cells = [c for c in row if c]
        if not cells:
            continue
        part_match = _PART_RE.match(cells[0])
        if part_match:
            part = _ROMAN[part_match.group(1).lower()]
            rest = cells[0][part_match.end():]
            cells = ([rest] if rest else []) + cells[1:]
            if not cells:
                continue
        heading = _parse_heading(cells[0])
        if heading is None:
            continue
        _, numbers, title_rest, _ = heading
        title = title_rest or (cells[1] if len(cells) > 2 else "")
        key = numbers[0] if form == "10-K" else f"{part}-{numbers[0]}"
        if key not in _ORDER[form]:
            continue
        reference = cells[-1] if len(cells) >= 2 else ""
        spans = []
        if not _NOT_APPLICABLE_REF_RE.search(reference):
            for match in _PAGE_RANGE_RE.finditer(reference):
                span = pages.span(match.group(1).upper(), (match.group(2) or match.group(1)).upper())
                if span:
                    spans.append(span)
        footnote = None if spans else _footnote_block(pages.parsed, table, reference)
        entries.append(_IndexEntry(key, _normalize_title(title), reference, spans, footnote))
    return entries


class _PageMap:
    """Printed page labels -> paragraph ranges (numeric labels tolerate a missing footer)."""

    def __init__(self, parsed: ParsedDocument):
        self.parsed = parsed
        self.starts = [block for block, _ in parsed.page_labels]
        self.labels = [label for _, label in parsed.page_labels]

    def page_end(self, block: int) -> int:
        for start in self.starts:
            if start > block:
                return start
        return len(self.parsed.blocks)

    def span(self, first: str, last: str) -> tuple[int, int] | None:
        if first.isdigit() and last.isdigit():
            lo, hi = int(first), int(last)
            indexes = [i for i, label in enumerate(self.labels) if label.isdigit() and lo <= int(label) <= hi]
            if not indexes:
                return None
            i, j = indexes[0], indexes[-1]
        else:
            if first not in self.labels or last not in self.labels:
                return None
            i, j = self.labels.index(first), self.labels.index(last)
        if j < i:
            return None
        end = self.starts[j + 1] if j + 1 < len(self.starts) else _signatures_block(self.parsed, self.starts[j])
        return self.starts[i], end


def _embedded(n, first, last, title_block, entries, parsed, form, pages) -> bool:
    """Whether range [first, last) of entry n sits inside a larger range of another entry."""
    for m, other in enumerate(entries):
        if m == n:
            continue
        for other_first, other_last in other.spans:
            if (other_first, other_last) == (first, last):
                # Two items on the same pages: the one whose title heading is there owns them.
                other_title = _find_title_block(parsed, form, other.key, other_first, pages.page_end(other_first))
                if title_block is None and (other_title is not None or m < n):
                    return True
                continue
            if not (other_first <= first and last <= other_last and other_last - other_first > last - first):
                continue
            if last == other_last and first > other_first:
                continue  # the tail of the other range (Legal Proceedings after Risk Factors)
            if first == other_first:
                other_title = _find_title_block(parsed, form, other.key, other_first, pages.page_end(other_first))
                if title_block is not None and (other_title is None or title_block < other_title):
                    continue  # the head of the other range
                if title_block is None and other_title is not None and other_title > first:
                    continue  # the other item's title comes mid-page: the text before it is this item
            return True
    return False


def _is_bare_title(parsed: ParsedDocument, form: str, key: str, index: int) -> bool:
    """The paragraph is the title and nothing else (a run-in heading carries body text)."""
    block = _normalize_title(parsed.block_text(index))
    match = _TITLE_RES[form][key].match(block)
    rest = block[match.end():] if match else block
    return len(rest) <= 120 and not _SENTENCE_END_RE.search(rest.strip(" .:"))


def _find_title_block(parsed: ParsedDocument, form: str, key: str, first: int, last: int) -> int | None:
    """A paragraph in [first, last) that is, or starts with, the item's usual title as a heading."""
    regex = _TITLE_RES[form].get(key)
    if regex is None:
        return None
    for index in range(first, min(last, len(parsed.blocks))):
        block = parsed.block_text(index)
        if not block[:1].isupper():
            continue
        normalized = _normalize_title(block)
        match = regex.match(normalized)
        if not match:
            continue
        head = re.split(r"[.:](?:\s|$)", block, maxsplit=1)[0]
        if len(block) <= 200 and (block.isupper() or _is_title_case(block)):
            return index
        if len(head) <= 200 and head.isupper():
            return index  # run-in heading: "RISK FACTORS. The following ..."
    return None


# ---------------------------------------------------------------- title-only fallback


def _title_candidates(parsed: ParsedDocument, form: str) -> list[_Candidate]:
    """Headings that are an item's title without an 'Item' label ('RISK FACTORS')."""
    out = []
    text = parsed.text
    for index, (start, end) in enumerate(parsed.blocks):
        block = text[start:end]
        if len(block) > 200 or not block[:1].isalpha():
            continue
        if not (block.isupper() or _is_title_case(block)):
            continue
        keys = _matching_keys(form, block)
        normalized = _normalize_title(block)
        keys = [k for k in keys if len(normalized) <= _TITLE_RES[form][k].match(normalized).end() + 70]
        if not keys:
            continue
        out.append(
            _Candidate(
                block=index, start=start, body_start=end, keys=keys[:1], span=[keys[0]], title=normalized,
                flags=["title_heading"], weight_bonus={keys[0]: 0.0},
            )
        )
    return out


_MINOR_WORDS = {"and", "of", "the", "in", "on", "for", "to", "a", "an", "about", "by", "with", "or", "from", "that"}


def _is_title_case(block: str) -> bool:
    words = re.findall(r"[A-Za-z][A-Za-z']*", block)
    return bool(words) and all(w[0].isupper() or w.lower() in _MINOR_WORDS for w in words)


# ------------------------------------------------------------------- helpers for checks

_TOC_LINE_RE = re.compile(
    r"^(?:part\s+[ivx]+\b.{0,80}|items?\s*\d{1,2}[a-c]?\b.{0,160}|.{3,160}?(?:\.{2,}|\s)\s*(?:page\s*)?(?:[A-Z]-)?\d{1,3})$",
    re.I,
)


def is_table_of_contents(text: str) -> bool:
    """Whether a section's text reads as a table of contents (mostly item/part or page-numbered lines)."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 4:
        return False
    toc_lines = sum(1 for line in lines if len(line) <= 200 and _TOC_LINE_RE.match(line.strip()))
    return toc_lines >= 4 and toc_lines >= 0.5 * len(lines)


def required_items(form: str, filing_date: str | None = None, period_of_report: str | None = None) -> set[str]:
    """Items every filing of this form must have: 10-K 1 and 7 (and 1A once required), 10-Q I-2.

    Item 1A became mandatory for fiscal years ending on or after 2005-12-01; with
    only the filing date known, filings from 2006-03-01 on are held to it.
    Dates are ISO strings (or anything whose str() starts with one).
    """
    family = _form_family(form)
    if family == "10-Q":
        return {"I-2"}
    if family != "10-K":
        return set()
    items = {"1", "7"}
    if period_of_report:
        if str(period_of_report)[:10] >= "2005-12-01":
            items.add("1A")
    elif filing_date and str(filing_date)[:10] >= "2006-03-01":
        items.add("1A")
    return items


# ------------------------------------------------------------------------- public API

_COVER_FORM_RE = re.compile(r"form\s+10-?([kq])\b", re.I)
_QUARTERLY_RE = re.compile(r"quarterly\s+report\s+(?:pursuant|under)", re.I)
_ANNUAL_RE = re.compile(r"annual\s+report\s+(?:pursuant|under)", re.I)


def _detect_form(parsed: ParsedDocument) -> str | None:
    """The form the cover page (or SGML type) claims: '10-K', '10-Q' or None."""
    if parsed.document_type:
        family = _form_family(parsed.document_type)
        if family in ("10-K", "10-Q"):
            return family
    cover = parsed.text[:6000]
    quarterly = bool(_QUARTERLY_RE.search(cover))
    annual = bool(_ANNUAL_RE.search(cover))
    if quarterly != annual:
        return "10-Q" if quarterly else "10-K"
    match = _COVER_FORM_RE.search(cover[:3000])
    if match:
        return f"10-{match.group(1).upper()}"
    return None


def sections_from_parsed(parsed: ParsedDocument, form: str, accession: str | None = None) -> SectionReport:
    """Sections of an already parsed document (see :func:`extract_sections_with_report`)."""
    label = accession or "document"
    family = _form_family(form) if isinstance(form, str) else None
    report = SectionReport(sections=[], form=form, detected_form=None, format=parsed.format, text=parsed.text)
    report.flags.extend(parsed.flags)
    if parsed.flags:
        report.warnings.append(f"{label}: {', '.join(parsed.flags).replace('_', ' ')}; no sections")
        return report
    if family not in ("10-K", "10-Q"):
        report.flags.append("unsupported_form")
        report.warnings.append(f"{label}: form {form!r} is not a 10-K or 10-Q; no sections")
        return report
    detected = _detect_form(parsed)
    report.detected_form = detected
    if detected and detected != family:
        report.flags.append("form_mismatch")
        report.warnings.append(
            f"{label}: labelled {form} but the document is a {detected}; items read as {detected} items"
        )
        family = detected

    candidates, parts = _find_candidates(parsed, family)
    chosen = _choose(candidates, family, len(parsed.text))
    sections = _build_sections(parsed, family, chosen, parts)
    mdna = MDNA_ITEM[family]
    labelled_items = {s.item for s in sections}
    if mdna not in labelled_items or len(labelled_items) < 3:
        xref = _cross_reference_sections(parsed, family)
        if xref and len({s.item for s in xref if s.text}) > len({s.item for s in sections if s.text}):
            sections = xref
            report.flags.append("cross_reference_index")
        else:
            titled = _choose(_title_candidates(parsed, family), family, len(parsed.text))
            titled_sections = _build_sections(parsed, family, titled, parts)
            if len(titled_sections) > len(sections) and any(s.item == mdna for s in titled_sections):
                sections = titled_sections
                report.flags.append("title_headings")

    if "cross_reference_index" not in report.flags:
        filled = _fill_from_cross_reference(parsed, family, sections)
        if filled is not None:
            sections = filled
            report.flags.append("cross_reference_index")

    report.sections = sections
    items = {s.item for s in sections}
    if not sections:
        report.flags.append("no_items_found")
        report.warnings.append(f"{label}: no {family} items found in {len(parsed.text)} characters of text")
        return report
    if mdna not in items:
        report.flags.append("missing_mdna")
        report.warnings.append(f"{label}: no MD&A (item {mdna}) found")
    if any("incorporated_by_reference" in s.flags for s in sections):
        report.flags.append("incorporated_by_reference")
    mdna_section = report.get(mdna)
    if mdna_section is not None and "incorporated_by_reference" in mdna_section.flags:
        report.flags.append("mdna_incorporated_by_reference")
        pointer = " ".join(mdna_section.text.split())[:300]
        report.warnings.append(f"{label}: MD&A is incorporated by reference: {pointer!r}")
    return report


_CONTENT_FLAGS = {"empty", "not_applicable", "incorporated_by_reference"}  # recomputed when a body changes


def _fill_from_cross_reference(parsed: ParsedDocument, form: str, sections: list[Section]) -> list[Section] | None:
    """Items that item headings missed, taken from a titled cross-reference index, or None.

    A filing laid out by topic (a 10-Q with a "Form 10-Q cross-reference index"
    at its end) may label a few items and not the others; the index's page
    references place the rest. An index item is added when headings found it
    not, or found it empty, and its pages do not begin before a found item's
    heading; a found item whose text runs into those pages ends where they
    begin (the index is the filer's own map of its items).
    """
    xref = _cross_reference_sections(parsed, form, titled_only=True)
    if not xref:
        return None
    have = {s.item: s for s in sections}
    merged = list(sections)
    added = False
    for extra in xref:
        current = have.get(extra.item)
        if current is not None and current.text:
            continue
        if not extra.text:
            if current is None:  # "Not applicable" in the index: the item is still listed, between sections
                at = next((t.end for t in merged if t.text and t.start < extra.start < t.end), extra.start)
                merged.append(Section(extra.item, extra.title, "", at, at, extra.flags))
            continue
        cut = extra.start
        first = next((i for i, (start, _) in enumerate(parsed.blocks) if start == extra.start), None)
        if first and _find_title_block(parsed, form, extra.item, first - 1, first) is not None:
            cut = parsed.blocks[first - 1][0]  # the item's own title heading is not the previous item's text
        overlapping = [i for i, t in enumerate(merged) if t.text and t.start < extra.end and extra.start < t.end]
        if any(merged[i].start >= extra.start for i in overlapping):
            continue  # the index's pages would swallow a found item's heading: headings win
        for i in overlapping:
            # The index gives these pages to another item: the section ends where they start.
            section = merged[i]
            body = parsed.text[section.start:max(section.start, cut)].rstrip()
            merged[i] = Section(section.item, section.title, body, section.start, section.start + len(body),
                                tuple(_section_flags(body, [f for f in section.flags if f not in _CONTENT_FLAGS],
                                                     section.item, section.title)))
        if current is not None:
            merged.remove(current)
        merged.append(extra)
        added = True
    if not added:
        return None
    order = _ORDER[form]
    merged.sort(key=lambda s: (s.start, order[s.item]))
    return merged


def extract_sections_with_report(
    document: bytes | str | None, form: str, accession: str | None = None
) -> SectionReport:
    """Sections plus document flags and warnings (naming ``accession``); never raises on content.

    ``document`` is a primary document as bytes (gzip accepted) or str: HTML,
    inline XBRL, or an SGML full submission whose main 10-K/10-Q is used. An 8-K goes to
    :mod:`finsec_assets.text.sections_8k` (items 1.01 ... 9.01 and its EX-99 press releases).
    """
    if isinstance(form, str) and form.strip().upper().startswith("8-K"):
        from finsec_assets.text.sections_8k import extract_8k_sections_with_report

        return extract_8k_sections_with_report(document, accession)
    parsed = parse_document(document, form=form)
    return sections_from_parsed(parsed, form, accession)


def extract_sections(document: bytes | str | None, form: str) -> list[Section]:
    """Items of a 10-K, 10-Q or 8-K (amendments and old variants accepted) in document order.

    10-K ids: "1", "1A", ..., "7", "7A", ..., "16"; 10-Q ids: "I-1", "I-2" (MD&A),
    ..., "II-1A", ..., "II-6"; 8-K ids: "1.01", "2.02", ..., "9.01" (pre-2004: "5", "12"), and
    "EX-99.1" ... for the press releases of a full submission. ``start``/``end`` index into ``html_to_text(document)``.
    """
    return extract_sections_with_report(document, form).sections
