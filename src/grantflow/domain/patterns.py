"""Admin-defined regular expressions (a flow's ``justification_pattern``), matched in linear time.

Patterns are written by admins but matched against text a member types, inside a request the
whole deployment shares: Python's backtracking ``re`` spends exponential time on patterns like
``^(\\w+\\s?)*$`` (27 characters of justification took 11.6 s and stalled every other request).
RE2 (google-re2) matches in time linear in the text, whatever the pattern; what it cannot do
(backreferences, lookaround) is refused when the flow is saved, and its compiled program is
capped so a pattern cannot cost much memory either.
"""

from __future__ import annotations

import functools
from typing import Protocol, cast

import re2

MAX_PATTERN_CHARS = 256  # the flow field's own limit
MAX_PROGRAM_BYTES = 256 * 1024  # RE2's memory budget for one compiled pattern


class PatternError(ValueError):
    """The pattern cannot be matched in linear time, or is too large; the message says why."""


class _Compiled(Protocol):
    def search(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the error is ours to report, not absl's to print on stderr
    options.max_mem = MAX_PROGRAM_BYTES
    return options


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> _Compiled:
    """The pattern compiled by RE2, or ``PatternError`` naming what is wrong with it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"at most {MAX_PATTERN_CHARS} characters")
    try:
        return cast(_Compiled, re2.compile(pattern, options=_options()))
    except re2.error as err:
        reason = err.args[0] if err.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(
            f"not a pattern Grantflow can match in linear time ({reason}); use RE2 syntax: "
            "no backreferences or lookaround, repetition counts up to 1000, a small program"
        ) from err


def matches(pattern: str, text: str) -> bool:
    """Does ``text`` contain a match of ``pattern`` (``re.search`` semantics)? Linear time."""
    return compile_pattern(pattern).search(text) is not None
