"""Durations on the command line: ``30m``, ``2h``, ``1h30m``, ``1d`` ⇄ seconds.

Parsing is pure; `duration_option` is the Typer parser that turns a bad value into a usage
error (exit code 2) naming the option and the accepted forms.
"""

from __future__ import annotations

import re

import typer

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PATTERN = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
FORMS = "write it like 30m, 2h, 1h30m or 1d"


class DurationError(ValueError):
    """The text is not a duration."""


def parse_duration(text: str) -> int:
    """Seconds in ``text``; raises `DurationError` for anything but ``[Nd][Nh][Nm][Ns]`` > 0."""
    cleaned = text.strip().lower().replace(" ", "")
    match = _PATTERN.fullmatch(cleaned)
    if not cleaned or match is None:
        raise DurationError(f"{text!r} is not a duration: {FORMS}")
    seconds = sum(int(v) * _UNITS[u] for v, u in zip(match.groups(), "dhms", strict=True) if v)
    if seconds <= 0:
        raise DurationError(f"{text!r} is not a positive duration: {FORMS}")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` → ``1h 30m``; under a minute → ``45s``; negative → ``0s``."""
    remaining = max(0, int(seconds))
    if remaining < 60:
        return f"{remaining}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        value, remaining = divmod(remaining, size)
        if value:
            parts.append(f"{value}{unit}")
    return " ".join(parts)


class Duration(int):
    """Seconds that remember how the user wrote them (``text``), to answer in that form."""

    text: str

    def __new__(cls, seconds: int, text: str) -> Duration:
        value = super().__new__(cls, seconds)
        value.text = text
        return value


def in_form_of(seconds: int, typed: str) -> str:
    """``seconds`` written as the user wrote ``typed``: in its one unit when that is exact
    (``240m`` for ``300m``), else compactly (``4h``, ``1h30m``) — never as raw seconds."""
    used = [u for u in "dhms" if u in typed.lower()]
    if len(used) == 1 and seconds % _UNITS[used[0]] == 0:
        return f"{seconds // _UNITS[used[0]]}{used[0]}"
    parts, remaining = [], max(0, seconds)
    for unit in "dhms":
        value, remaining = divmod(remaining, _UNITS[unit])
        if value:
            parts.append(f"{value}{unit}")
    return "".join(parts) or "0s"


_SECONDS = re.compile(r"\b(\d+) seconds?\b")


def seconds_in_form_of(message: str, typed: str) -> str:
    """A message of the API with each ``N seconds`` in the form the user typed."""
    return _SECONDS.sub(lambda m: in_form_of(int(m.group(1)), typed), message)


def duration_option(value: str | int) -> int:
    """Typer ``parser`` for duration options: a bad value is a usage error (exit 2). The
    answer is a `Duration` (an int that keeps the text) when the user typed one."""
    if isinstance(value, int):
        return value
    try:
        return Duration(parse_duration(value), value)
    except DurationError as err:
        raise typer.BadParameter(str(err)) from None
