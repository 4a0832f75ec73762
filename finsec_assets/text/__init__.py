"""Pure text library: filing HTML to text, sections, sentences, scores, summaries.

Kept import-light: only ``html_to_text`` is re-exported here; import the other
modules (``finsec_assets.text.sections`` ...) directly.
"""

from finsec_assets.text.html import html_to_text

__all__ = ["html_to_text"]
