"""Split an 8-K current report into its items (2.02, 5.02, 8.01, ...) and its press releases (EX-99.1, ...).

An 8-K is short and regular: a cover page, then one heading per reported item
("Item 2.02 Results of Operations and Financial Condition."), then signatures.
How it is read:

1. :func:`finsec_assets.text.html.parse_document` cleans the document into paragraphs.
2. A paragraph that *starts* with "Item N.NN" (or "Items 2.02 and 7.01") is a heading;
   its title is the rest of the paragraph, or the next short paragraph, and a
   heading that runs into its body is cut after the item's official title.
   Paragraphs that start "Item 2.02 of this report ..." are references, not headings.
3. An item heard twice (an index of items on the cover, then the real heading)
   keeps the occurrence followed by the most text. Each item runs to the next
   chosen heading; the last one stops at SIGNATURES.
4. 8-Ks filed before the August 2004 renumbering use Items 1-12 ("Item 5. Other
   Events", "Item 12. Results of Operations"): when no N.NN heading exists, those
   are read and kept with their own numbers, flagged ``legacy_item(s)``.
5. No heading at all: the whole text becomes one section, item ``body``, flagged
   ``no_items``, so nothing of the filing is lost.

Exhibits (the EX-99.1 press release) are separate documents: each becomes one
section whose item is its document type. Given a whole full submission ``.txt``,
:func:`extract_8k_sections_with_report` returns the items of its 8-K document and
one section per EX-99 document in it; an exhibit section's offsets index into that
exhibit's own text. Nothing here raises on bad content.
"""

from __future__ import annotations

import re

from finsec_assets.edgar.parsing import EIGHT_K_ITEMS, LEGACY_EIGHT_K_ITEMS
from finsec_assets.text.html import ParsedDocument, decode_document, parse_document
from finsec_assets.text.sections import Section, SectionReport

__all__ = [
    "EIGHT_K_DOCUMENT_FLAGS",
    "NO_ITEMS_SECTION",
    "extract_8k_sections_with_report",
    "exhibit_section_report",
    "eight_k_sections_from_parsed",
]

NO_ITEMS_SECTION = "body"
EIGHT_K_DOCUMENT_FLAGS = {
    "legacy_items": "items numbered the pre-August-2004 way (Item 5, Item 7, Item 12), ids kept as printed",
    "no_items": "no item heading found: the whole text is one section, item 'body'",
    "exhibit": "the document is an exhibit (EX-99.1 press release ...): one section, item = its document type",
}

_MODERN_RE = re.compile(r"^items?\s*(?:no\.?\s*|number\s*)?(\d{1,2})\s?\.\s?(\d{2})(?!\d)", re.I)
_LEGACY_RE = re.compile(r"^items?\s*(?:no\.?\s*)?(\d{1,2})(?![\d.]\d)\s*[.:\-–—]?", re.I)
_MORE_MODERN_RE = re.compile(r"^\s*(?:,|and|&)\s*(?:items?\s*)?(\d{1,2})\s?\.\s?(\d{2})(?!\d)", re.I)
_MORE_LEGACY_RE = re.compile(r"^\s*(?:,|and|&)\s*(?:items?\s*)?(\d{1,2})(?![\d.]\d)", re.I)
_SEPARATOR_RE = re.compile(r"^[\s.:\-–—)]*")
_REFERENCE_RE = re.compile(r"^(?:of|in|to|under|above|below|hereof|herein|shall|is|are|was|and\s+the)\b", re.I)
_SIGNATURES_RE = re.compile(r"^signatures?\s*[.:]?$", re.I)
_SENTENCE_END_RE = re.compile(r"[.:](?:\s+|$)")
_MAX_HEADING = 300


def _key(text: str) -> str:
    return re.sub(r"[^a-z]+", " ", text.lower()).strip()


_OFFICIAL = {item: _key(title) for item, title in EIGHT_K_ITEMS.items()}
_OFFICIAL_LEGACY = {item: _key(title) for item, title in LEGACY_EIGHT_K_ITEMS.items()}


def _title_run(title: str, official: str) -> int | None:
    """Characters of ``title`` that spell the official title (punctuation-insensitive), when it starts with it."""
    words = official.split()
    pattern = r"\W*".join(re.escape(w) for w in words)
    match = re.match(r"\W*" + pattern, title, re.I)
    if match:
        return match.end()
    # a shortened official title ("Departure of Directors or Certain Officers; ...") counts from 4 words on
    for n in range(len(words) - 1, 3, -1):
        match = re.match(r"\W*" + r"\W*".join(re.escape(w) for w in words[:n]) + r"\b", title, re.I)
        if match:
            return match.end()
    return None


class _Heading:
    __slots__ = ("block", "start", "body_start", "items", "title", "flags")

    def __init__(self, block, start, body_start, items, title, flags):
        self.block, self.start, self.body_start, self.items, self.title, self.flags = block, start, body_start, items, title, flags


def _headings(parsed: ParsedDocument, legacy: bool) -> list[_Heading]:
    text = parsed.text
    first_re, more_re = (_LEGACY_RE, _MORE_LEGACY_RE) if legacy else (_MODERN_RE, _MORE_MODERN_RE)
    known = LEGACY_EIGHT_K_ITEMS if legacy else EIGHT_K_ITEMS
    official = _OFFICIAL_LEGACY if legacy else _OFFICIAL
    out: list[_Heading] = []
    for index, (start, end) in enumerate(parsed.blocks):
        block = text[start:end]
        if not block[:5].lower().startswith("item"):
            continue
        match = first_re.match(block)
        if not match:
            continue
        ids = [_item_id(match, legacy)]
        position = match.end()
        while more := more_re.match(block[position:]):
            ids.append(_item_id(more, legacy))
            position += more.end()
        if any(i not in known for i in ids):
            continue
        separator = _SEPARATOR_RE.match(block[position:])
        title_at = position + (separator.end() if separator else 0)
        title = block[title_at:].strip()
        if title and (title[0].islower() or _REFERENCE_RE.match(title)):
            continue  # "Item 2.02 of this Current Report ..." is a reference, not a heading
        flags: list[str] = ["legacy_item"] if legacy else []
        body_start = end
        if not title and index + 1 < len(parsed.blocks):
            # "Item 2.02" alone: the title is the next paragraph when it is short and not itself an item
            next_start, next_end = parsed.blocks[index + 1]
            following = text[next_start:next_end]
            if len(following) <= 200 and not following[:4].lower().startswith("item"):
                title, body_start = following, next_end
        elif title:
            run = _title_run(title, official[ids[0]])
            cut = None
            if run is not None:
                sentence = _SENTENCE_END_RE.search(title, run)
                if sentence and sentence.end() < len(title) and sentence.start() - run < 40:
                    cut = sentence
            elif len(block) > _MAX_HEADING:
                sentence = _SENTENCE_END_RE.search(title)
                cut = sentence if sentence and sentence.start() <= 200 else None
                if cut is None:
                    continue  # a long paragraph that happens to start with "Item 5": not a heading
            if cut is not None:
                body_start = start + title_at + cut.end()
                title = title[: cut.start()]
                flags.append("run_in_heading")
            elif len(block) > _MAX_HEADING:
                continue
        if len(ids) > 1:
            flags.append("combined_heading")
        title = title.strip(" .:-–—") or known[ids[0]]
        out.append(_Heading(index, start, body_start, ids, title, flags))
    return out


def _item_id(match: re.Match, legacy: bool) -> str:
    if legacy:
        return str(int(match.group(1)))
    return f"{int(match.group(1))}.{match.group(2)}"


def _signatures_block(parsed: ParsedDocument, after: int) -> int:
    for index in range(after + 1, len(parsed.blocks)):
        start, end = parsed.blocks[index]
        if end - start <= 40 and _SIGNATURES_RE.match(parsed.text[start:end].strip()):
            return index
    return len(parsed.blocks)


def _choose(parsed: ParsedDocument, headings: list[_Heading]) -> list[_Heading]:
    """One heading per item: the occurrence followed by the most text before the next heading."""
    text_end = len(parsed.text)
    best: dict[str, tuple[int, _Heading]] = {}
    for n, heading in enumerate(headings):
        following = headings[n + 1].start if n + 1 < len(headings) else text_end
        body = following - heading.body_start
        first = heading.items[0]
        if first not in best or body > best[first][0]:
            best[first] = (body, heading)
    chosen = sorted({id(h): h for _, h in best.values()}.values(), key=lambda h: h.start)
    # a combined heading also covers its other items; drop separate headings that say the same item twice
    return chosen


def eight_k_sections_from_parsed(parsed: ParsedDocument, accession: str | None = None) -> SectionReport:
    """Items of an already parsed 8-K document (see :func:`extract_8k_sections_with_report`)."""
    label = accession or "document"
    report = SectionReport(sections=[], form="8-K", detected_form=None, format=parsed.format, text=parsed.text)
    report.flags.extend(parsed.flags)
    if parsed.flags:
        report.warnings.append(f"{label}: {', '.join(parsed.flags).replace('_', ' ')}; no sections")
        return report
    report.detected_form = "8-K" if re.search(r"form\s+8-k|current\s+report", parsed.text[:6000], re.I) else None
    headings = _headings(parsed, legacy=False)
    if not headings:
        headings = _headings(parsed, legacy=True)
        if headings:
            report.flags.append("legacy_items")
    chosen = _choose(parsed, headings)
    text = parsed.text
    sections: list[Section] = []
    for n, heading in enumerate(chosen):
        end_block = chosen[n + 1].block if n + 1 < len(chosen) else _signatures_block(parsed, heading.block)
        end = parsed.blocks[end_block - 1][1] if 0 < end_block <= len(parsed.blocks) else len(text)
        start = min(heading.body_start, end)
        body = text[start:end]
        start += len(body) - len(body.lstrip())
        end = start + len(body.strip())
        flags = list(heading.flags)
        if start >= end:
            flags.append("empty")
        sections.append(Section(heading.items[0], heading.title, text[start:end], start, end, tuple(flags)))
        for extra in heading.items[1:]:
            if extra not in {c.items[0] for c in chosen}:
                sections.append(Section(extra, heading.title, "", end, end, ("combined_heading", "empty")))
    if not sections:
        report.flags.append("no_items")
        report.warnings.append(f"{label}: no 8-K item headings in {len(text)} characters; the text is one section")
        body = text.strip()
        start = len(text) - len(text.lstrip())
        sections.append(Section(NO_ITEMS_SECTION, "", body, start, start + len(body), ("no_items",)))
    report.sections = sections
    return report


def exhibit_section_report(document: bytes | str | None, document_type: str, accession: str | None = None,
                           description: str | None = None) -> SectionReport:
    """An exhibit (EX-99.1 press release, ...) as one section whose item is its document type."""
    parsed = parse_document(document)
    report = SectionReport(sections=[], form=document_type, detected_form=None, format=parsed.format, text=parsed.text)
    report.flags.extend(parsed.flags + ["exhibit"])
    label = f"{accession or 'document'} {document_type}"
    if parsed.flags:
        report.warnings.append(f"{label}: {', '.join(parsed.flags).replace('_', ' ')}; no section")
        return report
    title = description if description and description.upper() != document_type.upper() else ""
    if not title:
        # the first short paragraph that is not the exhibit label reads as its headline
        for start, end in parsed.blocks[:8]:
            line = parsed.text[start:end].strip()
            if 8 <= len(line) <= 200 and not re.match(r"^(?:exhibit|ex-)\s*99", line, re.I):
                title = line
                break
    body = parsed.text.strip()
    start = len(parsed.text) - len(parsed.text.lstrip())
    report.sections = [Section(document_type.upper(), title, body, start, start + len(body), ("exhibit",))]
    return report


_SGML_DOCUMENT_RE = re.compile(r"<DOCUMENT>(.*?)(?:</DOCUMENT>|$)", re.S | re.I)
_SGML_FIELD_RE = re.compile(r"<(TYPE|DESCRIPTION)>[ \t]*([^\r\n<]*)", re.I)
_SGML_TEXT_RE = re.compile(r"<TEXT>(.*?)(?:</TEXT>|$)", re.S | re.I)


def _press_releases_in_submission(text: str) -> list[tuple[str, str | None, str]]:
    """(type, description, body) of the EX-99 documents of a full submission."""
    out = []
    for block in _SGML_DOCUMENT_RE.findall(text):
        head = block[:2000]
        fields = {m.group(1).upper(): m.group(2).strip() for m in _SGML_FIELD_RE.finditer(head)}
        doc_type = fields.get("TYPE", "").upper()
        if re.match(r"^EX-99(?:\.\d+)?[A-Z]?$", doc_type):
            body = _SGML_TEXT_RE.search(block)
            out.append((doc_type, fields.get("DESCRIPTION"), body.group(1) if body else block))
    return out


def extract_8k_sections_with_report(document: bytes | str | None, accession: str | None = None) -> SectionReport:
    """Items of an 8-K (ids exactly as the form numbers them: '1.01', '2.02', ..., '9.01'; pre-2004 filings
    keep '5', '7', '12' with the ``legacy_items`` flag), plus one section per EX-99 exhibit when ``document``
    is a whole full submission .txt. ``start``/``end`` of item sections index into ``html_to_text(document)``."""
    parsed = parse_document(document, form="8-K")
    report = eight_k_sections_from_parsed(parsed, accession)
    if parsed.document_type is not None:  # an SGML full submission: its press releases come along
        text, _ = decode_document(document)
        for doc_type, description, body in _press_releases_in_submission(text):
            exhibit = exhibit_section_report(body, doc_type, accession, description)
            report.sections.extend(exhibit.sections)
            report.warnings.extend(exhibit.warnings)
    return report
