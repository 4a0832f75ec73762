"""Filing documents (HTML, inline XBRL, SGML full submissions, plain text) to clean text.

The output is a sequence of paragraphs separated by blank lines. Hidden content
(the inline-XBRL ``ix:header``, anything styled ``display:none``, scripts and
styles) never reaches it, and neither do page furniture (page numbers, running
headers and footers repeated at page breaks).

Tables: *data* tables (any row holding a number, amount, percentage or dash in
a cell other than its first, e.g. financial statements, tables of contents with
page numbers, exhibit indexes) are dropped from the text and kept apart in
:attr:`ParsedDocument.tables` with the paragraph index they stood before.
*Layout* tables (bullet lists, footnotes, headings laid out in cells) are read
as text, one paragraph per row. *Text* tables are classified by their content,
not their layout: when most of a table's characters sit in cells that hold
sentences and at most half of its cells are figures (officers' biographies in a
Name / Age / Position table), the table is prose and stays in the text in
reading order, one paragraph per row with its cells separated by `` | ``. The
rule is the same for every document, so a section's text is its prose, which is
what scoring, summaries and language models downstream want.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

__all__ = [
    "ParsedDocument",
    "DroppedTable",
    "html_to_text",
    "parse_document",
    "decode_document",
    "select_sgml_document",
]

# Formats reported in ParsedDocument.format.
FORMAT_HTML = "html"
FORMAT_IXBRL = "ixbrl"
FORMAT_TEXT = "text"
FORMAT_EMPTY = "empty"
FORMAT_BINARY = "binary"

# Private-use characters mark structure in the flattened text (never whitespace,
# never in filings, never in the output).
_PAGE_BREAK = "\ue000"
_TABLE_OPEN = "\ue001"
_TABLE_CLOSE = "\ue002"
_PRE_NEWLINE = "\ue003"


@dataclass(frozen=True)
class DroppedTable:
    """A data table removed from the text, kept apart with where it stood."""

    before_block: int  # index of the paragraph that followed the table
    rows: tuple[tuple[str, ...], ...]

    @property
    def text(self) -> str:
        return "\n".join(" | ".join(cell for cell in row if cell) for row in self.rows)


@dataclass
class ParsedDocument:
    """Clean text of one filing document plus the structure section extraction needs.

    ``blocks`` are (start, end) character offsets of the paragraphs in ``text``;
    ``page_break_before`` holds the indexes of paragraphs that open a new page.
    """

    text: str
    blocks: list[tuple[int, int]]
    format: str
    document_type: str | None = None
    flags: list[str] = field(default_factory=list)
    tables: list[DroppedTable] = field(default_factory=list)
    page_break_before: set[int] = field(default_factory=set)
    page_labels: list[tuple[int, str]] = field(default_factory=list)  # (first block of page, printed label)
    source_bytes: int = 0

    def block_text(self, index: int) -> str:
        start, end = self.blocks[index]
        return self.text[start:end]


# --------------------------------------------------------------------------- decoding

_BINARY_MAGIC = (
    b"%PDF",
    b"PK\x03\x04",
    b"\x89PNG",
    b"GIF87a",
    b"GIF89a",
    b"\xff\xd8\xff",
    b"\xd0\xcf\x11\xe0",  # OLE2: .doc / .xls
    b"II*\x00",
    b"MM\x00*",
)
_CONTROL_BYTES = bytes(range(0, 9)) + bytes(range(14, 27)) + bytes(range(28, 32))


def decode_document(document: bytes | bytearray | memoryview | str | None) -> tuple[str, list[str]]:
    """Bytes or str (optionally gzip-compressed) to str; flags say why it is empty.

    Returns ``(text, flags)``; flags may hold ``"empty_document"`` or
    ``"binary_document"``, in which case text is ``""``.
    """
    if document is None:
        return "", ["empty_document"]
    if isinstance(document, str):
        text = document
    else:
        data = bytes(document)
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                return "", ["binary_document"]
        if not data.strip():
            return "", ["empty_document"]
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            data = data.decode("utf-16", errors="replace").encode("utf-8")
        head = data[:8192]
        if head.lstrip().startswith(_BINARY_MAGIC) or b"\x00" in head:
            return "", ["binary_document"]
        if sum(head.count(bytes([b])) for b in _CONTROL_BYTES) > 0.05 * len(head):
            return "", ["binary_document"]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return "", ["empty_document"]
    head = text[:8192]
    controls = sum(1 for ch in head if ord(ch) < 32 and ch not in "\t\n\r\x0c")
    if "\x00" in head or controls > 0.05 * len(head):
        return "", ["binary_document"]
    return text, []


# ---------------------------------------------------------------------- SGML submissions

_SGML_TYPE_RE = re.compile(r"<TYPE>[ \t]*([^\r\n<]+)", re.I)


def _is_sgml_submission(text: str) -> bool:
    head = text[:20000]
    return ("<DOCUMENT>" in head or "<document>" in head) and bool(_SGML_TYPE_RE.search(head))


def _find_tag(text: str, tag: str, start: int = 0) -> int:
    position = text.find(tag, start)
    if position < 0:
        position = text.find(tag.lower(), start)
    return position


def select_sgml_document(text: str, form: str | None = None) -> tuple[str, str | None]:
    """Pick the main ``<DOCUMENT>`` of an SGML full submission and return (body, TYPE).

    The main document is the first whose TYPE is in the requested form's family
    (10-K, 10-K405, 10-K/A... for a 10-K), else the first 10-K or 10-Q document,
    else the first document. Real submissions hold one such document, so
    ``html_to_text`` (no form) and section extraction read the same one.
    """
    family = _form_family(form) if form else None
    documents: list[tuple[str, int, int]] = []  # (type, body start, body end)
    position = _find_tag(text, "<DOCUMENT>")
    while position >= 0:
        end = _find_tag(text, "</DOCUMENT>", position)
        end = len(text) if end < 0 else end
        type_match = _SGML_TYPE_RE.search(text, position, min(end, position + 2000))
        doc_type = type_match.group(1).strip().upper() if type_match else ""
        body_start = _find_tag(text, "<TEXT>", position)
        if 0 <= body_start < end:
            body_start += len("<TEXT>")
            body_end = _find_tag(text, "</TEXT>", body_start)
            body_end = end if body_end < 0 or body_end > end else body_end
        else:
            body_start, body_end = position, end
        documents.append((doc_type, body_start, body_end))
        position = _find_tag(text, "<DOCUMENT>", end)
    if not documents:
        return text, None
    wanted = {family} if family else {"10-K", "10-Q"}
    for candidates in (wanted, {"10-K", "10-Q"}):
        for doc_type, body_start, body_end in documents:
            if _form_family(doc_type) in candidates:
                return text[body_start:body_end], doc_type
    doc_type, body_start, body_end = documents[0]
    return text[body_start:body_end], doc_type


def _form_family(form: str | None) -> str | None:
    """'10-K405', '10-K/A', '10-KSB' -> '10-K'; '10-Q/A', '10-QSB' -> '10-Q'."""
    if not form:
        return None
    normalized = form.strip().upper().replace(" ", "")
    if normalized.startswith("10-K") or normalized.startswith("10K"):
        return "10-K"
    if normalized.startswith("10-Q") or normalized.startswith("10Q"):
        return "10-Q"
    return normalized


# ------------------------------------------------------------------------ HTML -> lines

_HTML_HINT_RE = re.compile(r"<(?:html|body|div|font|br|span|td)\b|<p[\s>]", re.I)
_PRE_RE = re.compile(r"<pre\b[^>]*>.*?</pre\s*>", re.S | re.I)
_BLOCK_TAGS = ("p", "div", "br", "tr", "td", "th", "table", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5",
               "h6", "hr", "center", "blockquote", "pre", "dt", "dd", "dl", "caption", "title", "section",
               "article", "header", "footer", "address")


def _case_free(word: str) -> str:
    # [pP][rR][eE]: explicit classes run about twice as fast as re.IGNORECASE here
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


_BLOCK_TAG_RE = re.compile(
    r"<(?=/?(?:" + "|".join(_case_free(t) for t in sorted(_BLOCK_TAGS, key=len, reverse=True)) + r")[\s/>])"
)
_HIDDEN_TAGS = {"ix:header", "script", "style", "head", "noscript", "template"}
_HIDDEN_OR_BREAK_SELECTOR = (
    '[style*="display:none" i], [style*="display: none" i], ix\\:header, script, style, head, noscript, '
    'template, [style*="break-before" i], [style*="break-after" i], hr, page'
)
_DISPLAY_NONE_RE = re.compile(r"display\s*:\s*none", re.I)
_BREAK_BEFORE_RE = re.compile(r"(?:page-)?break-before\s*:\s*(?:always|page|left|right)", re.I)
_BREAK_AFTER_RE = re.compile(r"(?:page-)?break-after\s*:\s*(?:always|page|left|right)", re.I)

# A cell that holds a figure: amounts, percentages, page numbers, dashes for zero.
_NUMERIC_CELL_RE = re.compile(
    r"^[\s$€£¥(\[]*(?:[-–—+]?\s*[\d][\d.,]*|[-–—]+|n/?a|nm)\s*[%)\]x*]*\s*(?:[-–—]\s*[\d.,]+)?\s*$"
    r"|^(?:pages?\s*)?(?:(?:[A-Z]{1,2}-)?\d{1,4}(?:\s*[-–—]\s*(?:[A-Z]{1,2}-)?\d{1,4})?|\([a-z]\))"
    r"(?:\s*(?:,|and)\s*(?:(?:[A-Z]{1,2}-)?\d{1,4}(?:\s*[-–—]\s*(?:[A-Z]{1,2}-)?\d{1,4})?|\([a-z]\)))*\.?$",
    re.I,
)
_INVISIBLE_RE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def _clean_line(line: str) -> str:
    """Collapse all whitespace (non-breaking and other Unicode spaces included) to single spaces."""
    return " ".join(line.split())


def _html_lines(html: str, tables: list[DroppedTable | None]) -> list[str]:
    """Flatten HTML into lines: one per block element, page breaks and table markers."""
    # Raw newlines are insignificant in HTML except inside <pre>; block tags get a
    # newline before them so every paragraph, row and break ends up on its own line.
    if "<pre" in html or "<PRE" in html:
        html = _PRE_RE.sub(lambda m: m.group(0).replace("\n", _PRE_NEWLINE), html)
    html = html.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    html = _BLOCK_TAG_RE.sub("\n<", html)
    tree = LexborHTMLParser(html)
    root = tree.body or tree.root
    if root is None:
        return []
    seen: set[int] = set()
    for node in tree.css(_HIDDEN_OR_BREAK_SELECTOR):
        if node.mem_id in seen:  # an <hr> with a break style matches twice
            continue
        seen.add(node.mem_id)
        tag = node.tag
        if tag in _HIDDEN_TAGS:
            node.decompose()
            continue
        style = node.attributes.get("style") or ""
        if _DISPLAY_NONE_RE.search(style):
            node.decompose()
            continue
        if tag == "hr" or _BREAK_AFTER_RE.search(style):
            node.insert_after("\n" + _PAGE_BREAK + "\n")
        if tag == "page" or _BREAK_BEFORE_RE.search(style):  # <PAGE>: SGML page marks left in old HTML
            node.insert_before("\n" + _PAGE_BREAK + "\n")
    for node in root.css("pre"):
        raw = (node.text() or "").replace(_PRE_NEWLINE, "\n")
        node.replace_with("\n" + "\n".join(_plain_text_lines(raw)) + "\n")
    # Innermost tables first, so an outer layout table sees its inner tables as text.
    for table in reversed(root.css("table")):
        rows = []
        for row in table.css("tr"):
            cells = tuple(_clean_line(cell.text() or "") for cell in row.css("td, th"))
            if any(cells):
                rows.append(cells)
        if not rows:
            table.replace_with("\n")
        elif _is_layout_table(rows):
            table.replace_with("\n" + "\n".join(" ".join(c for c in row if c) for row in rows) + "\n")
        elif _is_text_table(rows):
            table.replace_with("\n" + "\n".join(" | ".join(c for c in row if c) for row in rows) + "\n")
        else:
            rows = [tuple(_INVISIBLE_RE.sub("", cell) for cell in row) for row in rows]
            tables.append(DroppedTable(before_block=-1, rows=tuple(rows)))
            table.replace_with(f"\n{_TABLE_OPEN}{len(tables) - 1}{_TABLE_CLOSE}\n")
    return _INVISIBLE_RE.sub("", root.text(separator="") or "").split("\n")


def _is_layout_table(rows: list[tuple[str, ...]]) -> bool:
    """True for tables that only lay out prose (bullets, footnotes, headings)."""
    for row in rows:
        filled = [c for c in row if c]
        for cell in filled[1:]:
            if _NUMERIC_CELL_RE.match(cell):
                return False
        if len(filled) > 3:
            return False
    return True


# A sentence end: a word, figure or closing bracket, then . ! ? or ; and a capital or the cell's end.
_SENTENCE_MARK_RE = re.compile(r"[a-z0-9)\]”\"’'][.!?;](?=\s+[A-Z(“\"]|\s*$)")
_HAS_WORD_RE = re.compile(r"[A-Za-z0-9]")


def _is_text_table(rows: list[tuple[str, ...]]) -> bool:
    """True for tables whose cells hold prose (biographies, commentary), whatever their layout.

    Measured over the cells that hold a word or figure: at most half are
    figures, and at least 60% of the characters sit in *prose cells* (20 words
    or more with at least two sentence marks), of which there are two or more;
    or, with no more than a tenth figures, long cells on average (8 words) and
    40% of the characters in prose cells. Exhibit indexes (one long noun phrase
    per row, exhibit numbers, dates) and financial tables with a comment column
    stay data.
    """
    cells = [c for row in rows for c in row if c and _HAS_WORD_RE.search(c)]
    if len(cells) < 2:
        return False
    numeric = sum(1 for c in cells if _NUMERIC_CELL_RE.match(c)) / len(cells)
    if numeric > 0.5:
        return False
    words = [len(c.split()) for c in cells]
    prose = [c for c, n in zip(cells, words) if n >= 20 and len(_SENTENCE_MARK_RE.findall(c)) >= 2]
    if len(prose) < 2:
        return False
    prose_share = sum(len(c) for c in prose) / sum(len(c) for c in cells)
    if prose_share >= 0.6:
        return True
    return numeric <= 0.1 and sum(words) / len(cells) >= 8 and prose_share >= 0.4


# ------------------------------------------------------------------- plain text -> lines

_SGML_TABLE_RE = re.compile(r"<TABLE>.*?</TABLE>", re.S | re.I)
_SGML_PAGE_RE = re.compile(r"<PAGE>", re.I)
_SGML_TAG_LINE_RE = re.compile(r"^\s*</?(?:S|C|CAPTION|FN|F\d+|R\d*|DESCRIPTION|SEQUENCE|FILENAME|TYPE)>.*$", re.I | re.M)
_HEADING_LINE_RE = re.compile(r"^\s*(?:PART\s+[IV1-4]+\b|ITEMS?\s*(?:NO\.?\s*)?\d{1,2}[A-C]?\b|SIGNATURES?\s*$)", re.I)
_TABULAR_LINE_RE = re.compile(r"\S\s{3,}\S")


def _plain_text_lines(text: str, tables: list[DroppedTable | None] | None = None) -> list[str]:
    """Plain text (80-column, blank-line paragraphs) to one line per paragraph."""
    text = _INVISIBLE_RE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))

    def table_marker(match: re.Match) -> str:
        if tables is None:
            return "\n\n"
        rows = tuple(
            tuple(_clean_line(part) for part in re.split(r"\s{2,}", line.strip()) if part.strip())
            for line in match.group(0).split("\n")[1:-1]
            if line.strip() and not _SGML_TAG_LINE_RE.match(line)
        )
        tables.append(DroppedTable(before_block=-1, rows=rows))
        return f"\n\n{_TABLE_OPEN}{len(tables) - 1}{_TABLE_CLOSE}\n\n"

    text = _SGML_TABLE_RE.sub(table_marker, text)
    text = _SGML_PAGE_RE.sub("\n\n" + _PAGE_BREAK + "\n\n", text)
    text = text.replace("\x0c", "\n\n" + _PAGE_BREAK + "\n\n")
    text = _SGML_TAG_LINE_RE.sub("", text)
    out: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if not lines:
            continue
        tabular = sum(1 for line in lines if _TABULAR_LINE_RE.search(line.strip()))
        if len(lines) >= 3 and tabular >= 0.6 * len(lines):
            continue  # an untagged text table
        current: list[str] = []
        for line in lines:
            # A heading line followed by body lines with no blank line between.
            if _HEADING_LINE_RE.match(line) and current:
                out.append(" ".join(current))
                current = []
            current.append(line.strip())
            if _HEADING_LINE_RE.match(line) and len(line.strip()) < 60 and line.strip().isupper():
                out.append(" ".join(current))
                current = []
        if current:
            out.append(" ".join(current))
    return out


# ------------------------------------------------------------------ lines -> document

_PAGE_NUMBER_RE = re.compile(
    r"^(?:page\s*)?[-–—(]?\s*(?:[A-Z]{1,2}\s?-\s?)?\d{1,3}\s*[-–—)]?$|^[ivxlc]{1,6}\.?$"
    r"|^(?:page\s+)?\d{1,3}\s+of\s+\d{1,3}$|^table of contents$|^index$",
    re.I,
)
_FURNITURE_NUMBER_RE = re.compile(r"(?:^|\s|\|)(?:[A-Z]{1,2}-)?\d{1,3}$|^\d{1,3}(?=\s|\|)")
_RULE_RE = re.compile(r"^[\W_]+$")  # separator rules: "-----", "* * *", "___"
_PAGE_LABEL_RE = re.compile(r"(?:^|[\s|(\-–—])((?:[A-Z]{1,2}-)?\d{1,3}|[ivxlc]{1,6})\s*[)\-–—]?\s*$", re.I)
_STOCK_ANSWERS = {"none", "none.", "not applicable", "not applicable.", "n/a", "[reserved]", "reserved", "(a)", "(b)"}
_CONTINUED_RE = re.compile(r"\(?\bcontinued\b\)?\s*$", re.I)
_ITEM_OR_PART_RE = re.compile(r"^(?:part\s+[ivx1-4]+\b|items?\s*(?:no\.?\s*)?\d)", re.I)


def _furniture_key(line: str) -> str:
    """Normalize a short line so the same running header on every page compares equal."""
    return _FURNITURE_NUMBER_RE.sub("", line.lower()).strip(" |-–—")


def _assemble(lines: list[str], tables: list[DroppedTable], fmt: str) -> ParsedDocument:
    """Lines with markers -> paragraphs, dropping page furniture; offsets computed."""
    paragraphs: list[str] = []
    page_break_before: set[int] = set()
    table_at: dict[int, int] = {}
    pending_break = True
    for raw in lines:
        if _PAGE_BREAK in raw:
            pending_break = True
            raw = raw.replace(_PAGE_BREAK, " ")
        if _TABLE_OPEN in raw:
            for match in re.finditer(f"{_TABLE_OPEN}(\\d+){_TABLE_CLOSE}", raw):
                table_at[int(match.group(1))] = len(paragraphs)
            raw = re.sub(f"{_TABLE_OPEN}\\d+{_TABLE_CLOSE}", " ", raw)
        line = _clean_line(raw)
        if not line:
            continue
        if pending_break:
            page_break_before.add(len(paragraphs))
            pending_break = False
        paragraphs.append(line)

    # Page furniture: page numbers anywhere, and short lines that repeat next to page breaks.
    near_break = set()
    for index in page_break_before | {len(paragraphs)}:  # the document's end closes the last page
        near_break.update((index - 2, index - 1, index, index + 1))
    keys = [_furniture_key(p) if len(p) <= 120 else None for p in paragraphs]
    key_total = Counter(k for k in keys if k)
    key_near = Counter(k for i, k in enumerate(keys) if k and i in near_break)
    drop = set()
    kept_heading: set[str] = set()
    for i, p in enumerate(paragraphs):
        if _PAGE_NUMBER_RE.match(p) or _RULE_RE.match(p):
            drop.add(i)
            continue
        key = keys[i]
        if not key or key in _STOCK_ANSWERS or i not in near_break or key_total[key] < 3:
            continue
        if _ITEM_OR_PART_RE.match(p):
            # "Item 7 (continued)" / "PART I" running headers: the first one at a page
            # break is the real heading, the later ones are furniture.
            if key_near[key] >= 0.8 * key_total[key]:
                if key in kept_heading or _CONTINUED_RE.search(p):
                    drop.add(i)
                kept_heading.add(key)
        elif key_near[key] >= max(2, 0.5 * key_total[key]):
            drop.add(i)

    # Printed page labels, read from the dropped footers/headers of each page, let
    # page references (cross-reference indexes) be mapped onto the text.
    starts = sorted(page_break_before | {0})
    page_label_at: list[tuple[int, str]] = []
    for n, first in enumerate(starts):
        last = (starts[n + 1] if n + 1 < len(starts) else len(paragraphs)) - 1
        window = list(range(last, max(first, last - 3) - 1, -1)) + list(range(first, min(last, first + 2) + 1))
        for i in window:
            if i in drop:
                label = _PAGE_LABEL_RE.search(paragraphs[i])
                if label:
                    page_label_at.append((first, label.group(1).upper()))
                    break

    kept: list[str] = []
    new_index: dict[int, int] = {}
    for i, p in enumerate(paragraphs):
        new_index[i] = len(kept)
        if i not in drop:
            kept.append(p)
    new_index[len(paragraphs)] = len(kept)
    breaks = {new_index[i] for i in page_break_before if i in new_index}
    # A dropped page footer's break carries over to the next kept paragraph.
    blocks = []
    offset = 0
    for p in kept:
        blocks.append((offset, offset + len(p)))
        offset += len(p) + 2
    text = "\n\n".join(kept)
    ordered_tables = []
    for index, table in enumerate(tables):
        if table is None or index not in table_at:
            continue
        ordered_tables.append(DroppedTable(before_block=new_index[table_at[index]], rows=table.rows))
    ordered_tables.sort(key=lambda t: t.before_block)
    page_labels = []
    for first, label in page_label_at:
        block = new_index.get(first, len(kept))
        if block >= len(kept):
            continue
        if page_labels and page_labels[-1][0] == block:
            page_labels[-1] = (block, label)  # pages holding only tables/furniture: the block is on the later page
        else:
            page_labels.append((block, label))
    return ParsedDocument(
        text=text,
        blocks=blocks,
        format=fmt,
        tables=ordered_tables,
        page_labels=page_labels,
        page_break_before={b for b in breaks if b < len(kept)},
    )


def parse_document(document: bytes | str | None, form: str | None = None) -> ParsedDocument:
    """Decode, pick the main document of an SGML submission, and clean it to paragraphs.

    Never raises on bad content: empty and binary inputs give an empty document
    with a flag. ``form`` only steers which SGML ``<DOCUMENT>`` is the main one.
    """
    text, flags = decode_document(document)
    size = len(document) if isinstance(document, (bytes, bytearray, memoryview)) else len(text)
    if flags:
        fmt = FORMAT_BINARY if "binary_document" in flags else FORMAT_EMPTY
        return ParsedDocument(text="", blocks=[], format=fmt, flags=flags, source_bytes=size)
    document_type = None
    if _is_sgml_submission(text):
        text, document_type = select_sgml_document(text, form)
    tables: list[DroppedTable] = []
    if _HTML_HINT_RE.search(text[:200000]):
        fmt = FORMAT_IXBRL if re.search(r"<ix:(?:header|nonnumeric|nonfraction)\b", text[:400000], re.I) else FORMAT_HTML
        lines = _html_lines(text, tables)
    else:
        fmt = FORMAT_TEXT
        lines = _plain_text_lines(text, tables)
    parsed = _assemble(lines, tables, fmt)
    parsed.document_type = document_type
    parsed.source_bytes = size
    if not parsed.blocks:
        parsed.flags.append("empty_document")
    return parsed


def html_to_text(document: bytes | str | None) -> str:
    """Clean readable text of a whole filing document: paragraphs separated by blank lines.

    Accepts HTML, inline XBRL, an SGML full submission (its main 10-K/10-Q
    document is used) or plain text, as bytes (gzip accepted) or str. Data tables
    are left out (see the module docstring); empty or binary input gives "".
    """
    return parse_document(document).text
