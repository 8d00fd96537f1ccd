"""`grantflow audit`: verify the audit chains against the database and the checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from grantflow.cli.errors import fail, friendly_errors

if TYPE_CHECKING:
    from grantflow.services.audit.audit_verify import Verification
    from grantflow.settings import Settings

audit_app = typer.Typer(help="The tamper-evident activity log.", no_args_is_help=True)
console = Console(highlight=False)


def _print(result: Verification, require_checkpoint: bool) -> None:
    seen = [c for c in result.checkpoints if c.checkpoint is not None]
    if result.broken is None and result.ok:
        session = result.session
        console.print(f"[green]audit chains intact[/green]: {result.events} events, "
                      f"last seq {result.last_seq}, head {result.head_hash}; session audit "
                      f"{session.events if session else 0} events")  # fmt: skip
    elif result.broken is not None:
        console.print(f"[red]audit chain broken at seq {result.broken.seq}[/red] "
                      f"({result.broken.kind.value}): {result.broken.reason} "
                      f"({result.events} events checked)")  # fmt: skip
    else:
        console.print("[red]audit verification failed[/red]: a checkpoint cannot be trusted")
    for check in result.checkpoints:
        cp = check.checkpoint
        where = f"seq {cp.events.seq} at {cp.at.isoformat()}" if cp else "none found"
        state = f"[red]{check.problem}[/red]" if check.problem else "[green]ok[/green]"
        console.print(f"checkpoint {check.sink}: {where}: {state}")
    if result.unkeyed:
        console.print(f"{result.unkeyed} events predate the audit key (unkeyed SHA-256 rule)")
    if not seen:
        level = "[red]error[/red]" if require_checkpoint else "[yellow]warning[/yellow]"
        console.print(f"{level}: no checkpoint to compare with: events removed from the end "
                      "cannot be detected")  # fmt: skip


@audit_app.command("verify")
@friendly_errors
def verify(
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON"),
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Also compare with this checkpoint file (JSON, or JSON Lines: the "
            "last line), e.g. one copied from S3"
        ),
    ] = None,
    require_checkpoint: bool = typer.Option(
        False, "--require-checkpoint", help="Fail when no sink holds a checkpoint"
    ),
) -> None:
    """Walk both audit hash chains (GRANTFLOW_DATABASE_URL) from the first event to the last
    and compare their ends with the latest checkpoint of each sink (the checkpoint file, S3).

    Exits 0 when intact; 1 with the first problem: an event edited, removed, inserted,
    reordered or unkeyed, events cut from the end (truncation), or the chain rewritten
    before a checkpoint. Needs the audit key (GRANTFLOW_AUDIT_KEY, …) of the server.
    A read: writes nothing, takes no write lock.
    """
    from grantflow.services.audit import audit_keys, audit_sinks, audit_verify
    from grantflow.settings import Settings
    from grantflow.store.db import build_engine, check_connection, read_transaction, session_factory

    settings = Settings()
    try:
        keys = audit_keys.load(settings).keyring
    except audit_keys.AuditKeyError as err:
        raise fail(str(err)) from None
    found = audit_sinks.read_latest(audit_sinks.build(settings))
    if checkpoint is not None:
        found.append(audit_sinks.read_latest([audit_sinks.FileSink(checkpoint)])[0])
    engine = build_engine(settings.database_url)
    try:
        check_connection(engine)
        with read_transaction(session_factory(engine)) as session:
            result = audit_verify.verify(session, keys, found)
    finally:
        engine.dispose()
    missing = require_checkpoint and not any(c.checkpoint for c in result.checkpoints)
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    else:
        _print(result, require_checkpoint)
    if not result.ok or missing:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
@friendly_errors
def take_checkpoint() -> None:
    """Sign a checkpoint of both chains now and send it to every sink (the scheduler does
    this every GRANTFLOW_AUDIT_CHECKPOINT_INTERVAL_SECONDS while the chains move)."""
    from grantflow.services.audit import audit_checkpoints, audit_keys, audit_sinks
    from grantflow.settings import Settings
    from grantflow.store.db import build_engine, check_connection, session_factory

    settings = Settings()
    try:
        keys = audit_keys.load(settings).keyring
    except audit_keys.AuditKeyError as err:
        raise fail(str(err)) from None
    if keys.current is None:
        raise fail("no audit key: set GRANTFLOW_AUDIT_KEY or GRANTFLOW_AUDIT_KEY_FILE "
                   "(the server's key)")  # fmt: skip
    engine = build_engine(settings.database_url)
    try:
        check_connection(engine)
        taken = audit_checkpoints.take(session_factory(engine), keys,
                                       audit_sinks.build(settings), force=True)  # fmt: skip
    finally:
        engine.dispose()
    if taken is None:
        raise fail("another process is taking a checkpoint now; try again")
    cp = taken.checkpoint
    console.print(f"checkpoint: seq {cp.events.seq}, session seq {cp.session_events.seq}, "
                  f"at {cp.at.isoformat()}")  # fmt: skip
    for sink, outcome in taken.outcomes.items():
        console.print(f"  {sink}: {'[green]ok[/green]' if outcome == 'ok' else outcome}")
    if not taken.ok:
        raise typer.Exit(1)


def prepare_audit_key(settings: Settings) -> None:
    """For `serve`: make the audit key when none is configured (and say so, loudly), and
    name where the key and the checkpoints are."""
    from grantflow.cli.errors import err_console
    from grantflow.services.audit import audit_keys, audit_sinks

    try:
        made = audit_keys.ensure(settings)
        source = audit_keys.load(settings).source
    except audit_keys.AuditKeyError as err:
        raise fail(str(err)) from None
    default = str(audit_keys.default_key_path(settings))
    if made is not None:
        err_console.print(
            f"[bold red]WARNING: no audit key was configured; generated {made} (mode 0600).[/]"
            "\n  It keys the audit chain's HMACs and signs its checkpoints; the database does "
            "not hold it.\n  Copy it to your secret store now and set GRANTFLOW_AUDIT_KEY (or "
            "GRANTFLOW_AUDIT_KEY_FILE): every replica needs this same key, and "
            "`grantflow audit verify` needs it to check events."
        )
    elif source == default:
        err_console.print(f"[yellow]warning:[/] audit key from {default}, made by an earlier "
                          "start: move it to GRANTFLOW_AUDIT_KEY")  # fmt: skip
    if source is not None and source != "GRANTFLOW_AUDIT_KEY" and audit_keys.too_open(Path(source)):
        err_console.print(f"[yellow]warning:[/] {source} is readable by others: chmod 600")
    names = ", ".join(s.name for s in audit_sinks.build(settings))
    console.print(f"audit checkpoints every {settings.audit_checkpoint_interval_seconds} s "
                  f"to {names}")  # fmt: skip
