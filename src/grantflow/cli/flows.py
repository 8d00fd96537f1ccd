"""`grantflow flows export|apply`: access flows as code (YAML, names instead of ids)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from grantflow.cli.errors import fail
from grantflow.cli.integrations import Token, Url, _api

flows_app = typer.Typer(help="Access flows as code.", no_args_is_help=True)
console = Console(highlight=False)


@flows_app.command("export")
def export(url: Url = None, token: Token = None) -> None:
    """Print every access flow as YAML (integrations, users and groups by name)."""
    with _api(url, token) as api:
        doc = api.get("/api/v1/access-flows/export")
    typer.echo(yaml.safe_dump(doc, sort_keys=False), nl=False)


@flows_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="flows.yaml")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff only")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Make the server's flows exactly the file's; print created / changed / deleted."""
    try:
        doc = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise fail(f"{file} is not YAML: {err}", code=2) from None
    with _api(url, token) as api:
        result = api.post("/api/v1/access-flows/apply", json=doc, params={"dry_run": dry_run})
    verb = "would be" if dry_run else ""
    for key, mark in (("created", "+"), ("changed", "~"), ("deleted", "-")):
        for name in result[key]:
            console.print(f"{mark} {name} {verb} {key}".replace("  ", " "))
    console.print(f"{len(result['unchanged'])} unchanged")
