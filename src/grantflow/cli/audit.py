"""`grantflow audit`: verify the activity log's hash chain against the database directly."""

from __future__ import annotations

import json

import typer
from rich.console import Console

from grantflow.cli.errors import friendly_errors

audit_app = typer.Typer(help="The tamper-evident activity log.", no_args_is_help=True)
console = Console(highlight=False)


@audit_app.command("verify")
@friendly_errors
def verify(
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
) -> None:
    """Walk the audit hash chain (GRANTFLOW_DATABASE_URL) from the first event to the last.

    Exits 0 when intact; 1 with the first broken event's seq and the reason (an event was
    edited, removed, inserted or reordered).
    """
    from grantflow.services import audit_verify
    from grantflow.settings import Settings
    from grantflow.store.db import build_engine, check_connection, session_factory, transaction

    engine = build_engine(Settings().database_url)
    try:
        check_connection(engine)
        with transaction(session_factory(engine)) as session:
            result = audit_verify.verify(session)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    elif result.broken is None:
        console.print(f"[green]audit chain intact[/green]: {result.events} events, "
                      f"last seq {result.last_seq}, head {result.head_hash}")  # fmt: skip
    else:
        console.print(f"[red]audit chain broken at seq {result.broken.seq}[/red]: "
                      f"{result.broken.reason} ({result.events} events checked)")  # fmt: skip
    if result.broken is not None:
        raise typer.Exit(1)
