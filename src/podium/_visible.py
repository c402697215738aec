"""Data as the characters it is: each character a terminal would act on or not draw becomes a visible escape.

One rule for every place podium shows data to a person: the command line (`podium.cli._display`) and the reports
it writes for readers elsewhere (`podium.governance.report_markdown`).
"""

from __future__ import annotations

import unicodedata

KEPT = frozenset("\n\t ")
KEPT_IN_A_LINE = frozenset("\t ")  # for a value inside a line: its newlines would start lines of their own


def hidden(char: str, kept: frozenset[str] = KEPT) -> bool:
    """A character a terminal would act on or not draw: controls (C0, DEL, C1), formats (bidi, zero-width, BOM),
    line and paragraph separators, surrogates, private and unassigned code points."""
    return char not in kept and not char.isprintable() and unicodedata.category(char) != "Zs"


def escape(char: str) -> str:
    """`char` written as an escape: `\\n`, `\\x1b`, `\\u202e`, `\\U000e0041`."""
    code = ord(char)
    if char == "\n":
        return "\\n"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(value: object, *, one_line: bool = False) -> str:
    """`value` as text with every hidden character (and, `one_line`, every newline) written as an escape; plain
    text comes back unchanged."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    kept = KEPT_IN_A_LINE if one_line else KEPT
    return "".join(escape(c) if hidden(c, kept) else c for c in text)
