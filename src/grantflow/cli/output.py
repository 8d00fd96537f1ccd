"""Shared rendering for the end-user commands: a Rich table for people, JSON for programs.

JSON goes to stdout alone (indented, keys sorted, timestamps as the API sent them), so
``grantflow … --output json | jq`` always parses; progress and errors go to stderr.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from grantflow.cli.durations import format_duration
from grantflow.cli.errors import fail

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for programs")
]


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], title: str | None = None) -> None:
    """A table when it fits the terminal unwrapped; else one block per row (``column  value``
    lines), so ids, ARNs and links are never cut or folded mid-word at 80 columns."""
    grid = Table(*columns, title=title)
    kept = [list(row) for row in rows]
    for row in kept:
        grid.add_row(*(Text(cell, no_wrap=True) for cell in row))  # data, never markup
    if not kept:
        out.print(f"nothing to show{f' ({title})' if title else ''}")
    elif Measurement.get(out, out.options.update_width(10_000), grid).maximum <= out.width:
        out.print(grid)
    else:
        _records(columns, kept, title)


def _records(columns: Sequence[str], rows: list[list[str]], title: str | None) -> None:
    width = max(len(c) for c in columns)
    if title:
        out.print(Text(title, style="bold"))
    for index, row in enumerate(rows):
        if index:
            out.print()
        for column, cell in zip(columns, row, strict=False):
            out.print(Text(f"{column:<{width}}  ", style="bold") + Text(cell), soft_wrap=True)


def problem(message: str, code: int = 1) -> typer.Exit:
    """`fail` for messages that quote names or the API: printed as they are, not as markup."""
    return fail(escape(message), code)


def say(console: Console, message: str) -> None:
    """Print text that carries names, links or details from the API literally."""
    console.print(Text(message))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def seconds_left(expires_at: str | None, now: datetime | None = None) -> int | None:
    expires = parse_time(expires_at)
    if expires is None:
        return None
    return max(0, int((expires - (now or datetime.now(UTC))).total_seconds()))


def time_left(expires_at: str | None) -> str:
    left = seconds_left(expires_at)
    return "-" if left is None else format_duration(left)


def short_time(value: str | None) -> str:
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%d %H:%M UTC") if parsed else "-"
