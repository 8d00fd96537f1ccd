"""CSV cells a spreadsheet will not run (CSV / formula injection).

Excel, LibreOffice and Google Sheets read a cell that starts with ``=``, ``+``, ``-`` or ``@``
(and, in some of them, with a tab, a carriage return or another control character before
one) as a formula: ``=cmd|' /C calc'!A0`` or ``=HYPERLINK(...)`` in an exported audit log
would run on the auditor's machine. Such a cell gets a leading single quote, which every
spreadsheet shows as text and which a reader of the raw CSV recognises (OWASP's advice).
Numbers are not text and are written as they are.
"""

from __future__ import annotations

# ASCII triggers, their full-width forms (some spreadsheets fold them), every control character
_TRIGGERS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20") | frozenset(map(chr, range(0x20))) | {"\x7f"}


def safe_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it and never evaluates it."""
    return "'" + text if text and text[0] in _TRIGGERS else text
