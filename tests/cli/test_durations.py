"""Durations on the command line: the forms people type, and everything else refused."""

from __future__ import annotations

import pytest

from grantflow.cli.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("90s", 90),
     ("1d2h3m4s", 93784), (" 2H ", 7200), ("1h 30m", 5400)],
)  # fmt: skip
def test_accepted_forms(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "30m1h", "-1h", "1.5h", "0m", "0d0h"])
def test_refused_forms_name_the_value_and_the_accepted_forms(text: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert repr(text) in str(err.value) and "1h30m" in str(err.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0s"), (0, "0s"), (59, "59s"), (60, "1m"), (5400, "1h 30m"), (3599, "59m"),
     (90061, "1d 1h 1m")],
)  # fmt: skip
def test_format(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text
