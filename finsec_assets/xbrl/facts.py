"""Every inline-XBRL fact of a filing's primary document, placed in its section's clean text.

Parser choice. ``benchmarks/xbrl.py`` compared three readers on the iXBRL 10-K/10-Q documents of the project
corpus, against SEC's companyfacts (each SEC fact of the filing found with the same value, period and unit):

- this module (lxml, recovering XML parser): 100% of 9,366 SEC facts over 22 filings, and the fastest even though
  its time includes the alignment to section text;
- Arelle, the reference implementation, offline (no DTS download, so concepts are untyped): 99.8% on the 6 filings
  the peers read, about half our speed for reading facts alone, and no link from a fact to the cleaned text;
- ``ixbrlparse`` (BeautifulSoup): 96.4%, a third of our speed; it lacks the ixt-sec duration rules (duryear,
  durwordsen ...) and keeps no document position.

Alignment needs the fact *elements* in document order with their visible neighbours, which only a tree walk of
our own gives; with that walk the rest (contexts, units, the transformation rules of
:mod:`finsec_assets.xbrl.transforms`) is small, so the reader is our own and Arelle is the benchmark's reference.

Alignment. Section text comes from :mod:`finsec_assets.text.html` (whitespace
collapsed, data tables dropped, page furniture removed). Rather than hooking into
that pipeline, each fact's *line* (the text between two block boundaries, or the
table row for a fact in a cell, whitespace collapsed the same way) is searched for
in the clean text, in document order; the fact's span inside the line gives its
offsets, and ``section_text[start:end]`` equals the fact's displayed text by
construction (checked). Facts in data tables (dropped from the text), in
``ix:hidden`` or outside every section keep their row with empty offsets and a flag.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field

import pandas as pd
from lxml import etree

from finsec_assets.text.html import _BLOCK_TAGS, _INVISIBLE_RE, decode_document, parse_document
from finsec_assets.text.sections import Section, sections_from_parsed

from . import transforms

__all__ = ["FACT_COLUMNS", "FACT_FLAGS", "extract_facts", "has_inline_xbrl"]

IX_NS = ("http://www.xbrl.org/2013/inlineXBRL", "http://www.xbrl.org/2008/inlineXBRL")
XBRLI = "http://www.xbrl.org/2003/instance"
XBRLDI = "http://xbrl.org/2006/xbrldi"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"

FACT_COLUMNS = [
    "fact_id", "concept", "is_numeric", "value", "text", "normalized", "display_text", "unit", "decimals", "scale",
    "sign", "format", "is_nil", "context_id", "period_start", "period_end", "dimensions", "is_hidden", "in_table",
    "parent_fact_id", "section", "start", "end", "doc_start", "doc_end", "flags",
]
FACT_FLAGS = {
    "missing_context": "contextRef names no context in ix:resources (period and dimensions empty)",
    "missing_unit": "a numeric fact whose unitRef names no unit",
    "bad_value": "the displayed text does not fit its format (value NaN); the message is in the row's flags",
    "unknown_format": "a transformation rule this reader does not know (value NaN)",
    "broken_continuation": "continuedAt names a missing ix:continuation or loops",
    "recovered_markup": "the document is not well-formed XML; lxml recovered the tree",
    "hidden": "inside ix:hidden: not displayed, so not in the text",
    "not_in_text": "could not be found in the clean text (a dropped data table, page furniture)",
    "outside_sections": "found in the text but before, between or after the items (cover page, signatures)",
}
_IX_HINT_RE = re.compile(rb"inlineXBRL|<ix:header", re.I)
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>")
_DISPLAY_NONE_RE = re.compile(r"display\s*:\s*none", re.I)
_HIDDEN_TAGS = {"head", "script", "style", "noscript", "template", "header"}  # header: ix:header
_BLOCKS = set(_BLOCK_TAGS)


def has_inline_xbrl(document: bytes | str | None) -> bool:
    text, flags = decode_document(document)
    return not flags and bool(_IX_HINT_RE.search(text[:2_000_000].encode("utf-8", "ignore")))


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _ns(tag) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _is_ix(el, name: str) -> bool:
    return _ns(el.tag) in IX_NS and _local(el.tag) == name.lower()


def _collapse(text: str) -> str:
    return " ".join(_INVISIBLE_RE.sub("", text).split())


# ------------------------------------------------------------------------ contexts, units


def _read_contexts(root) -> dict[str, dict]:
    contexts = {}
    for ctx in root.iter(f"{{{XBRLI}}}context"):
        period = ctx.find(f"{{{XBRLI}}}period")
        start = end = ""
        if period is not None:
            instant = period.findtext(f"{{{XBRLI}}}instant")
            if instant:
                end = instant.strip()[:10]
            else:
                start = (period.findtext(f"{{{XBRLI}}}startDate") or "").strip()[:10]
                end = (period.findtext(f"{{{XBRLI}}}endDate") or "").strip()[:10]
        dims = {}
        for member in ctx.iter(f"{{{XBRLDI}}}explicitMember", f"{{{XBRLDI}}}typedMember"):
            axis = member.get("dimension", "").strip()
            if _local(member.tag) == "explicitmember":
                dims[axis] = (member.text or "").strip()
            else:
                dims[axis] = _collapse("".join(member.itertext()))
        contexts[ctx.get("id", "")] = {"start": start, "end": end, "dimensions": dims}
    return contexts


def _measure(el) -> str:
    return "*".join(m.text.strip().rsplit(":", 1)[-1] for m in el.iter(f"{{{XBRLI}}}measure") if m.text)


def _read_units(root) -> dict[str, str]:
    units = {}
    for unit in root.iter(f"{{{XBRLI}}}unit"):
        divide = unit.find(f"{{{XBRLI}}}divide")
        if divide is not None:
            num = divide.find(f"{{{XBRLI}}}unitNumerator")
            den = divide.find(f"{{{XBRLI}}}unitDenominator")
            units[unit.get("id", "")] = f"{_measure(num) if num is not None else ''}/{_measure(den) if den is not None else ''}"
        else:
            units[unit.get("id", "")] = _measure(unit)
    return units


# ------------------------------------------------------------------------------ tree walk


@dataclass
class _Walk:
    """The document's visible text as html.py flattens it: '\\n' at every block tag, hidden parts left out."""

    parts: list[str] = field(default_factory=list)
    pos: int = 0
    spans: dict = field(default_factory=dict)  # element -> (start, end) in the stream
    cell_spans: list[tuple[int, int]] = field(default_factory=list)
    row_of: dict = field(default_factory=dict)  # fact element -> indexes into cell_spans of its row
    hidden: set[int] = field(default_factory=set)
    in_table: set[int] = field(default_factory=set)

    def emit(self, text: str | None) -> None:
        if text:
            self.parts.append(text)
            self.pos += len(text)


def _walk_stream(body) -> tuple[str, _Walk]:
    walk = _Walk()
    row_stack: list[list[int]] = []
    open_cells: list[int] = []
    table_depth = 0
    stack = [(body, False)]
    while stack:
        el, closing = stack.pop()
        name = _local(el.tag)
        if closing:
            if el in walk.spans:
                walk.spans[el] = (walk.spans[el][0], walk.pos)
            if name in ("td", "th") and open_cells:
                index = open_cells.pop()
                walk.cell_spans[index] = (walk.cell_spans[index][0], walk.pos)
            if name in _BLOCKS:
                walk.emit("\n")
            if name == "tr" and row_stack:
                row_stack.pop()
            if name == "table":
                table_depth -= 1
            walk.emit(el.tail)
            continue
        if not isinstance(el.tag, str):
            walk.emit(el.tail)
            continue
        style = el.get("style")
        if (name in _HIDDEN_TAGS and (name != "header" or _ns(el.tag) in IX_NS)) or (style and _DISPLAY_NONE_RE.search(style)):
            for sub in el.iter():
                walk.hidden.add(sub)
            walk.emit(el.tail)
            continue
        if name in _BLOCKS:
            walk.emit("\n")
        if name == "table":
            table_depth += 1
        if name == "tr":
            row_stack.append([])
        if name in ("td", "th") and row_stack:
            row_stack[-1].append(len(walk.cell_spans))
            open_cells.append(len(walk.cell_spans))
            walk.cell_spans.append((walk.pos, walk.pos))
        if _ns(el.tag) in IX_NS:
            walk.spans[el] = (walk.pos, walk.pos)
            if row_stack:
                walk.row_of[el] = row_stack[-1]
            if table_depth:
                walk.in_table.add(el)
        walk.emit(el.text)
        stack.append((el, True))
        for child in reversed(el):
            stack.append((child, False))
    return "".join(walk.parts), walk


def _collapse_with_map(pieces: list[tuple[str, int]]) -> tuple[str, list[int]]:
    """Join (text, stream offset) pieces with spaces, collapse whitespace; return the line and, for each
    character of it, the stream offset it came from (-1 for a joining space)."""
    out: list[str] = []
    origin: list[int] = []
    pending_space = False
    for n, (text, offset) in enumerate(pieces):
        if n:
            pending_space = True
        for i, ch in enumerate(text):
            if ch.isspace():
                pending_space = True
                continue
            if _INVISIBLE_RE.match(ch):
                continue
            if pending_space and out:
                out.append(" ")
                origin.append(-1)
            pending_space = False
            out.append(ch)
            origin.append(offset + i)
    return "".join(out), origin


def _piece(stream: str, walk: _Walk, el, span: tuple[int, int]) -> tuple[str, int, int] | None:
    """The collapsed line (or table row) holding ``span`` of the stream, and the span's place inside it."""
    start, end = span
    row = walk.row_of.get(el)
    if row:
        pieces = [(stream[a:b], a) for a, b in (walk.cell_spans[i] for i in row)]
    else:
        line_start = stream.rfind("\n", 0, start) + 1
        line_end = stream.find("\n", start)
        line_end = len(stream) if line_end < 0 else line_end
        pieces = [(stream[line_start:line_end], line_start)]
    line, origin = _collapse_with_map(pieces)
    inside = [i for i, o in enumerate(origin) if start <= o < end]
    if not inside:
        return None
    return line, inside[0], inside[-1] + 1


def _visible_bounds(stream: str, span: tuple[int, int]) -> tuple[int, int] | None:
    """First and last+1 stream offsets of visible (non-space) characters in ``span``."""
    start, end = span
    text = stream[start:end]
    stripped = text.lstrip()
    if not _collapse(stripped):
        return None
    first = start + len(text) - len(stripped)
    last = start + len(text.rstrip())
    return first, last


def _first_and_last_piece(stream: str, walk: _Walk, chain: list) -> tuple[tuple | None, tuple | None]:
    """The line pieces where a fact (with its continuations) starts and ends; the second is None on one line."""
    head = _visible_bounds(stream, walk.spans[chain[0]]) if chain[0] in walk.spans else None
    tail_el = chain[-1]
    tail = _visible_bounds(stream, walk.spans[tail_el]) if tail_el in walk.spans else None
    if head is None:
        return None, None
    head_line_end = stream.find("\n", head[0], head[1])
    first_span = (head[0], head[1] if head_line_end < 0 else head_line_end)
    first = _piece(stream, walk, chain[0], first_span)
    if len(chain) == 1 and head_line_end < 0:
        return first, None
    if tail is None:
        return first, None
    tail_line_start = stream.rfind("\n", tail[0], tail[1])
    last_span = (tail[0] if tail_line_start < 0 else tail_line_start + 1, tail[1])
    return first, _piece(stream, walk, tail_el, last_span)


# --------------------------------------------------------------------------- the facts


def _chain_text(el, continuations: dict[str, object], flags: list[str]) -> tuple[str, list]:
    """The fact's text with its continuedAt chain, ix:exclude left out; also the elements of the chain."""
    def own_text(node) -> str:
        out: list[str] = []

        def flat(text: str | None) -> str:  # newlines in the source are spaces; block tags make the breaks
            return (text or "").replace("\r", " ").replace("\n", " ")

        def visit(n) -> None:
            if _is_ix(n, "exclude"):
                if n is not node:
                    out.append(flat(n.tail))
                return
            if isinstance(n.tag, str):
                block = _local(n.tag) in _BLOCKS
                if block:
                    out.append("\n")
                out.append(flat(n.text))
                for child in n:
                    visit(child)
                if block:
                    out.append("\n")
            if n is not node:
                out.append(flat(n.tail))

        visit(node)
        return "".join(out)

    texts = [own_text(el)]
    chain = [el]
    seen = set()
    following = el.get("continuedAt")
    while following:
        if following in seen or following not in continuations:
            flags.append("broken_continuation")
            break
        seen.add(following)
        part = continuations[following]
        chain.append(part)
        texts.append(own_text(part))
        following = part.get("continuedAt")
    return "\n".join(texts), chain


def _parse_root(text: str) -> tuple[object | None, bool]:
    data = _XML_DECL_RE.sub("", text, count=1).encode("utf-8")
    parser = etree.XMLParser(recover=True, huge_tree=True, resolve_entities=False, no_network=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        root = None
    recovered = len(parser.error_log) > 0
    if root is None or not any(_ns(el.tag) in IX_NS for el in root.iter() if isinstance(el.tag, str)):
        # Not XHTML at all (e.g. an HTML entity lxml's XML parser refuses): read it as HTML, keeping prefixes.
        from lxml import html as lxml_html

        root = lxml_html.fromstring(data)
        recovered = True
        root = _html_to_namespaced(root)
    return root, recovered


def _html_to_namespaced(root):
    """lxml.html keeps 'ix:nonfraction' as a plain tag name: give such tags their namespaces back."""
    ns = {"ix": IX_NS[0], "xbrli": XBRLI, "xbrldi": XBRLDI}
    for el in root.iter():
        if isinstance(el.tag, str) and ":" in el.tag:
            prefix, local = el.tag.split(":", 1)
            if prefix in ns:
                canonical = {"nonfraction": "nonFraction", "nonnumeric": "nonNumeric", "explicitmember": "explicitMember",
                             "typedmember": "typedMember", "startdate": "startDate", "enddate": "endDate",
                             "unitnumerator": "unitNumerator", "unitdenominator": "unitDenominator"}.get(local, local)
                el.tag = f"{{{ns[prefix]}}}{canonical}"
        for key in list(el.attrib):
            if key.lower() == "xsi:nil":
                el.set(XSI_NIL, el.attrib.pop(key))
            elif key.lower() in ("contextref", "unitref", "continuedat"):
                el.set({"contextref": "contextRef", "unitref": "unitRef", "continuedat": "continuedAt"}[key.lower()], el.attrib.pop(key))
    return root


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _DTYPES.items()})[FACT_COLUMNS]


_DTYPES = {
    "fact_id": "object", "concept": "object", "is_numeric": "bool", "value": "float64", "text": "object",
    "normalized": "object", "display_text": "object", "unit": "object", "decimals": "object", "scale": "Int64",
    "sign": "object", "format": "object", "is_nil": "bool", "context_id": "object", "period_start": "object",
    "period_end": "object", "dimensions": "object", "is_hidden": "bool", "in_table": "bool", "parent_fact_id": "object",
    "section": "object", "start": "Int64", "end": "Int64", "doc_start": "Int64", "doc_end": "Int64", "flags": "object",
}


def _document_type(rows: list[dict]) -> str | None:
    for row in rows:
        if row["concept"] == "dei:DocumentType" and row["text"]:
            return row["text"].strip()
    return None


def extract_facts(document: bytes | str | None, form: str | None = None,
                  sections: list[Section] | None = None) -> pd.DataFrame:
    """One row per ix:nonFraction / ix:nonNumeric (columns :data:`FACT_COLUMNS`), in document order.

    ``form`` steers section extraction (default: the filing's own dei:DocumentType); ``sections`` (as
    ``extract_sections`` returns them, e.g. rebuilt from ``filing_sections`` rows) skip that step. ``start``/``end``
    index into the section's text, ``doc_start``/``doc_end`` into ``html_to_text(document)``. A document
    without inline XBRL (old HTML, SGML .txt, empty, binary) gives an empty frame.
    """
    text, problems = decode_document(document)
    if problems or not _IX_HINT_RE.search(text[:2_000_000].encode("utf-8", "ignore")):
        return _empty()
    root, recovered = _parse_root(text)
    contexts = _read_contexts(root)
    units = _read_units(root)
    continuations = {el.get("id"): el for el in root.iter(f"{{{IX_NS[0]}}}continuation", f"{{{IX_NS[1]}}}continuation")}
    body = next((el for el in root.iter() if _local(el.tag) == "body"), root)
    stream, walk = _walk_stream(body)

    rows: list[dict] = []
    elements = []
    fact_tags = {f"{{{ns}}}{name}" for ns in IX_NS for name in ("nonFraction", "nonNumeric")}
    for n, el in enumerate(el for el in root.iter() if el.tag in fact_tags):
        flags: list[str] = ["recovered_markup"] if recovered else []
        numeric = _local(el.tag) == "nonfraction"
        fmt = el.get("format")
        is_nil = (el.get(XSI_NIL) or "").strip().lower() in ("true", "1")
        raw, chain = _chain_text(el, continuations, flags) if not numeric else ("".join(el.itertext()), [el])
        display = _collapse(raw)
        value = math.nan
        normalized = None
        scale = el.get("scale")
        try:
            scale_int = int(scale) if scale not in (None, "") else 0
        except ValueError:
            scale_int = 0
            flags.append("bad_value")
        if not is_nil:
            try:
                normalized = transforms.apply(fmt, display if not numeric else _collapse("".join(el.itertext())))
                if numeric:
                    number = float(normalized) if normalized not in ("", None) else math.nan
                    if normalized and not math.isinf(number) and not math.isnan(number):
                        number = float(f"{normalized}e{scale_int}") if scale_int else number
                    value = -number if el.get("sign") == "-" else number
            except transforms.TransformError as exc:
                flags.append("unknown_format" if "unknown transformation" in str(exc) else "bad_value")
            except ValueError:
                flags.append("bad_value")
        context_id = el.get("contextRef") or ""
        context = contexts.get(context_id)
        if context is None:
            flags.append("missing_context")
        unit_id = el.get("unitRef")
        unit = units.get(unit_id) if unit_id else None
        if numeric and unit is None:
            flags.append("missing_unit")
        parent = el.getparent()
        parent_id = None
        while parent is not None:
            if parent.tag in fact_tags:
                parent_id = parent.get("id")
                break
            parent = parent.getparent()
        hidden = el in walk.hidden
        if hidden:
            flags.append("hidden")
        rows.append({
            "fact_id": el.get("id") or f"fact-{n}", "concept": (el.get("name") or "").strip(), "is_numeric": numeric,
            "value": value, "text": None if numeric else (None if is_nil else _collapse_paragraphs(raw)),
            "normalized": normalized, "display_text": display, "unit": unit, "decimals": el.get("decimals"),
            "scale": scale_int, "sign": el.get("sign"), "format": fmt, "is_nil": is_nil, "context_id": context_id,
            "period_start": (context or {}).get("start", ""), "period_end": (context or {}).get("end", ""),
            "dimensions": dict((context or {}).get("dimensions", {})), "is_hidden": hidden,
            "in_table": el in walk.in_table, "parent_fact_id": parent_id,
            "section": None, "start": None, "end": None, "doc_start": None, "doc_end": None, "flags": flags,
        })
        elements.append((el, chain))
    if not rows:
        return _empty()

    parsed = parse_document(text, form=form)
    if sections is None:
        sections = sections_from_parsed(parsed, form or _document_type(rows) or "10-K").sections
    _align(parsed.text, stream, walk, rows, elements, sections)
    df = pd.DataFrame(rows, columns=FACT_COLUMNS)
    return df.astype({c: t for c, t in _DTYPES.items() if t in ("Int64", "float64", "bool")})


def _collapse_paragraphs(raw: str) -> str:
    """A text block's value: paragraphs kept apart by blank lines, whitespace collapsed inside each."""
    return "\n\n".join(p for p in (_collapse(line) for line in raw.split("\n")) if p)


def _align(clean: str, stream: str, walk: _Walk, rows: list[dict], elements: list, sections: list[Section]) -> None:
    """Place each visible fact in the clean text, in document order, verifying the span reads as the fact."""
    section_starts = [s.start for s in sections]
    cursor = 0
    for row, (el, chain) in zip(rows, elements):
        if row["is_hidden"] or not row["display_text"]:
            continue  # nothing displayed (ix:hidden, an empty nil fact): nothing to place
        first, last = _first_and_last_piece(stream, walk, chain)
        found = _find(clean, first, cursor, allow_context=el not in walk.in_table) if first else None
        if found is not None and last is not None:
            found_end = _find(clean, last, found[0], allow_context=False)
            found = (found[0], found_end[1]) if found_end and found_end[1] > found[0] else None
        if found is None:
            row["flags"].append("not_in_text")
            continue
        start, end = found
        if last is None and clean[start:end] != first[0][first[1]:first[2]]:
            row["flags"].append("not_in_text")  # cannot happen by construction; never emit a wrong span
            continue
        cursor = max(cursor, start - 2000)
        row["doc_start"], row["doc_end"] = start, end
        k = bisect.bisect_right(section_starts, start) - 1
        if k >= 0 and sections[k].start <= start and end <= sections[k].end:
            row["section"] = sections[k].item
            row["start"], row["end"] = start - sections[k].start, end - sections[k].start
        else:
            row["flags"].append("outside_sections")


def _find(clean: str, located: tuple[str, int, int], cursor: int, allow_context: bool) -> tuple[int, int] | None:
    """The fact's (start, end) in the clean text: its whole line first, then (prose only) a context window."""
    line, a, b = located
    for origin in (cursor, 0):
        at = _find_paragraph(clean, line, origin)
        if at >= 0:
            return at + a, at + b
    if allow_context:
        left = max(0, a - 40)
        window = line[left:b + 20]
        for origin in (cursor, 0):
            at = clean.find(window, origin)
            if at >= 0:
                return at + (a - left), at + (b - left)
    return None


def _find_paragraph(clean: str, line: str, origin: int) -> int:
    """Where ``line`` stands as a whole paragraph of the clean text (-1 if nowhere)."""
    at = clean.find(line, origin)
    while at >= 0:
        before = clean[at - 1] if at else "\n"
        after = clean[at + len(line)] if at + len(line) < len(clean) else "\n"
        if before == "\n" and after == "\n":
            return at
        at = clean.find(line, at + 1)
    return -1
