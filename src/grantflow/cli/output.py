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
    grid = Table(*columns, title=title)
    count = 0
    for row in rows:
        grid.add_row(*(Text(cell) for cell in row))  # data, never markup
        count += 1
    if count:
        out.print(grid)
    else:
        out.print(f"nothing to show{f' ({title})' if title else ''}")


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
