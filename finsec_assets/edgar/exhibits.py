"""An 8-K's documents: the primary document and its EX-99 exhibits (press releases), each with its type.

Where they are found:

1. the filing folder's ``index.json`` lists its files; exhibits whose file names say what they are
   (``d845033dex991.htm`` -> EX-99.1) are fetched as they stand;
2. when the listing has documents whose names do not say (``pressrelease3-8x24.htm``), or there is no
   listing at all, the full submission ``ACCESSION.txt`` is read: its SGML ``<DOCUMENT>`` blocks declare each
   document's TYPE (``EX-99.1``, ``GRAPHIC``, ...), and they are the source when a file is not served alone.

Images and PDFs carry no text to extract: they are recorded with a skip reason, never stored as text.
XBRL artefacts (EX-101.*, R pages, Financial_Report.xlsx, the zip) are not exhibits and are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .client import EdgarClient, EdgarError, EdgarNotFound
from .parsing import (
    EXHIBIT_PRESS_RELEASE_RE,
    EdgarDataError,
    FilingRef,
    SgmlDocument,
    base_form,
    directory_listing,
    exhibit_type_from_name,
    full_submission_documents,
    unreadable_kind,
)

_NOT_DOCUMENTS_RE = re.compile(r"(?:-index(?:-headers)?\.html?|\.hdr\.sgml|^R\d+\.htm|FilingSummary\.xml|\.xsd|\.xml|"
                               r"\.json|\.js|\.css|\.zip|\.xlsx)$", re.I)
_TEXT_NAME_RE = re.compile(r"\.(?:htm|html|txt)$", re.I)
# other numbered exhibits ('ex10-1.htm', 'd1dex101.htm', 'exhibit31.htm'): not press releases, no need to ask the .txt
_OTHER_EXHIBIT_RE = re.compile(r"(?:exhibit|(?:(?<![a-z])|(?<=\dd))ex)[-_]?(?!99)\d", re.I)


@dataclass(frozen=True)
class FilingDocument:
    """One document of a filing: ``data`` is None when it was recorded but skipped (``skip_reason`` says why)."""

    document_type: str  # '8-K', 'EX-99.1', 'GRAPHIC', ...
    document: str  # file name in the filing folder
    data: bytes | None
    source: str  # 'primary', 'index' (fetched alone, found through index.json) or 'full_submission'
    primary: bool = False
    skip_reason: str | None = None
    error: str | None = None  # an exhibit that could not be fetched (the filing's other documents still land)


def is_press_release(document_type: str) -> bool:
    return bool(EXHIBIT_PRESS_RELEASE_RE.match(document_type or ""))


def eight_k_documents(client: EdgarClient, ref: FilingRef) -> tuple[list[FilingDocument], list[str]]:
    """The 8-K's primary document first, then its EX-99 exhibits and the skipped image/PDF exhibits.

    Returns (documents, notes); raises EdgarError/EdgarDataError only when the primary document cannot be had.
    """
    notes: list[str] = []
    listing = _listing(client, ref, notes)
    full: list[SgmlDocument] | None = None

    def full_documents() -> list[SgmlDocument]:
        nonlocal full
        if full is None:
            data = None
            for path in (ref.full_submission_path, f"/Archives/edgar/data/{ref.cik}/{ref.accession}.txt"):
                try:
                    data = client.get("www", path, immutable=True)
                    break
                except EdgarNotFound:
                    continue
            if data is None:
                raise EdgarNotFound(f"{ref.accession}: neither the full submission .txt nor the folder's documents are on EDGAR")
            full = full_submission_documents(data)
            if not full:
                raise EdgarDataError(f"{ref.accession}.txt: full submission has no <DOCUMENT> blocks")
        return full

    primary = _primary(client, ref, listing, full_documents)
    docs = [primary]
    names = [i["name"] for i in listing] if listing is not None else None
    sizes = {i["name"]: i.get("size") for i in listing} if listing is not None else {}
    if names is not None:
        untyped = []
        for name in names:
            if name == primary.document or _NOT_DOCUMENTS_RE.search(name) or name == f"{ref.accession}.txt":
                continue
            kind = unreadable_kind(name)
            typed = exhibit_type_from_name(name)
            if kind:
                docs.append(FilingDocument(typed or ("PDF" if kind == "PDF" else "GRAPHIC"), name, None, "index",
                                           skip_reason=f"{kind} ({name}, {sizes.get(name) or '?'} bytes): no text to extract"))
            elif typed:
                docs.append(_fetch_alone(client, ref, name, typed))
            elif _TEXT_NAME_RE.search(name) and not _OTHER_EXHIBIT_RE.search(name):
                untyped.append(name)
        if untyped:
            try:
                declared = {d.filename: d.type for d in full_documents() if d.filename}
            except (EdgarNotFound, EdgarDataError) as exc:
                notes.append(f"{len(untyped)} document(s) without a telling name left untyped: {exc}")
                declared = {}
            for name in untyped:
                doc_type = declared.get(name, "")
                if is_press_release(doc_type):
                    docs.append(_fetch_alone(client, ref, name, doc_type))
    else:
        try:
            blocks = full_documents()
        except (EdgarNotFound, EdgarDataError) as exc:
            notes.append(f"exhibits unknown: no index.json and {exc}")
            blocks = []
        main = full_primary_block(blocks, ref) if blocks else None
        for block in blocks:
            if block is main:
                continue
            kind = unreadable_kind(block.filename, block.type, block.body)
            name = block.filename or f"{block.sequence or len(docs)}-{block.type or 'document'}.txt"
            if kind and (block.type in ("GRAPHIC", "PDF") or is_press_release(block.type)):
                docs.append(FilingDocument(block.type or "GRAPHIC", name, None, "full_submission",
                                           skip_reason=f"{kind} ({name}, {len(block.body)} bytes): no text to extract"))
            elif is_press_release(block.type):
                docs.append(FilingDocument(block.type, name, block.body, "full_submission"))
    return docs, notes


def full_primary_block(blocks: list[SgmlDocument], ref: FilingRef) -> SgmlDocument:
    """The block of the primary document: by file name, else the first of the filing's form, else the first."""
    if ref.primary_document:
        for block in blocks:
            if block.filename == ref.primary_document:
                return block
    wanted = base_form(ref.form)
    return next((b for b in blocks if base_form(b.type) == wanted), blocks[0])


def _listing(client: EdgarClient, ref: FilingRef, notes: list[str]) -> list[dict] | None:
    path = f"{ref.folder}/index.json"
    try:
        return directory_listing(client.get_json("www", path, immutable=True), path)
    except EdgarNotFound:
        notes.append(f"{path} not found: documents read from the full submission")
        return None


def _primary(client: EdgarClient, ref: FilingRef, listing, full_documents) -> FilingDocument:
    form = base_form(ref.form)
    if ref.primary_document:
        try:
            data = client.get("www", f"{ref.folder}/{ref.primary_document}", immutable=True)
            return FilingDocument(form, ref.primary_document, data, "primary", primary=True)
        except EdgarNotFound:
            if listing is not None and any(i["name"] == ref.primary_document for i in listing):
                raise
    block = full_primary_block(full_documents(), ref)
    return FilingDocument(form, ref.primary_document or block.filename or "main-document.txt", block.body,
                          "full_submission", primary=True)


def _fetch_alone(client: EdgarClient, ref: FilingRef, name: str, doc_type: str) -> FilingDocument:
    try:
        data = client.get("www", f"{ref.folder}/{name}", immutable=True)
    except EdgarError as exc:
        return FilingDocument(doc_type, name, None, "index", error=str(exc))
    kind = unreadable_kind(name, None, data)
    if kind:
        return FilingDocument(doc_type, name, None, "index", skip_reason=f"{kind} ({name}, {len(data)} bytes): no text to extract")
    return FilingDocument(doc_type, name, data, "index")
