"""The `grantflow` command."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from grantflow import __version__
from grantflow.cli.access import access_app
from grantflow.cli.audit import audit_app, prepare_audit_key
from grantflow.cli.config import config_app
from grantflow.cli.connector import connector_app
from grantflow.cli.errors import friendly_errors
from grantflow.cli.flows import flows_app
from grantflow.cli.integrations import integrations_app
from grantflow.cli.inventory import inventory_app
from grantflow.cli.login import login, logout
from grantflow.cli.requests import requests_app

app = typer.Typer(
    name="grantflow",
    help="Just-in-time access for AWS Organizations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(connector_app, name="connector")
app.add_typer(config_app, name="config")
app.add_typer(integrations_app, name="integrations")
app.add_typer(flows_app, name="flows")
app.add_typer(inventory_app, name="inventory")
app.add_typer(requests_app, name="requests")
app.add_typer(access_app, name="access")
app.command()(login)
app.command()(logout)
app.add_typer(audit_app, name="audit")
console = Console(highlight=False)


def _print_bootstrap(token: str | None) -> None:
    if token:
        console.print(
            f"[bold]Bootstrap admin token[/bold] (shown once, stored only as a hash):\n  {token}"
        )


@app.command()
@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [GRANTFLOW_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [GRANTFLOW_PORT]")] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxies (IPs, CIDRs or *) whose X-Forwarded-Proto/-For are trusted "
            "[GRANTFLOW_FORWARDED_ALLOW_IPS]"
        ),
    ] = None,
) -> None:
    """Run the control plane: API, web pages, scheduler and the managed connector.

    Upgrades the database schema first. Configuration comes from GRANTFLOW_* variables.
    """
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if forwarded_allow_ips is not None:
        overrides["forwarded_allow_ips"] = forwarded_allow_ips
    from grantflow.services.runtime.startup import prepare_database  # the database layer, on use
    from grantflow.settings import Settings

    settings = Settings(**overrides)  # type: ignore[arg-type]
    report = prepare_database(settings)
    console.print(f"database {report.database} is at the latest schema")
    _print_bootstrap(report.bootstrap_token)
    from grantflow.cli.server import run_server  # the web stack: only for `serve`
    from grantflow.services.runtime.startup import ensure_port_free

    ensure_port_free(settings.host, settings.port)  # before a key file is made for nothing
    prepare_audit_key(settings)
    console.print(f"serving on http://{settings.host}:{settings.port}")
    run_server(settings)


@app.command()
@friendly_errors
def demo(
    port: Annotated[int, typer.Option(help="Port of the web UI and API")] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the emulated organization")] = 7,
) -> None:
    """Run everything on one machine: an emulated AWS Organization (moto), SQLite, the UI."""
    from grantflow.demo.runner import run_demo

    code = 0
    try:
        run_demo(port=port, seed=seed, console=console)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C once it has shut down
        code = 130
    # Everything of the demo is stopped and its temporary directory removed: leave now rather
    # than wait for the interpreter's finalization (seconds, in C code, after Ctrl-C).
    console.print("demo stopped")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@db_app.command("upgrade")
@friendly_errors
def db_upgrade() -> None:
    """Bring the database (GRANTFLOW_DATABASE_URL) to the latest schema."""
    from grantflow.services.runtime.startup import prepare_database
    from grantflow.settings import Settings

    settings = Settings()
    report = prepare_database(settings)
    console.print(f"database {report.database} is at the latest schema")
    _print_bootstrap(report.bootstrap_token)


@app.command()
def cloudformation(
    integration_type: Annotated[
        str, typer.Argument(help="Integration type; only aws-organization exists")
    ] = "aws-organization",
) -> None:
    """Print the CloudFormation template for the management account (YAML).

    Deploy it with the parameters ConnectorId, ConnectorRoleArn and OrganizationalUnitId;
    `GET /api/v1/connectors/{id}/cloudformation` gives the filled-in deploy command.
    """
    if integration_type != "aws-organization":
        raise typer.BadParameter("only 'aws-organization' is supported", param_hint="TYPE")
    from grantflow.aws.cloudformation import render_template

    typer.echo(render_template(), nl=False)


@app.command()
def version() -> None:
    """Print Grantflow's version."""
    console.print(__version__)


if __name__ == "__main__":
    app()
