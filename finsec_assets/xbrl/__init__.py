"""Inline XBRL: the facts of a filing's primary document, aligned to its section text, and the
document-understanding datasets labelled by them. Pure library (no dagster)."""

from .facts import FACT_COLUMNS, FACT_FLAGS, extract_facts, has_inline_xbrl

__all__ = ["FACT_COLUMNS", "FACT_FLAGS", "extract_facts", "has_inline_xbrl"]
