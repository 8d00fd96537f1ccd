"""`grantflow config check` and `grantflow config reference`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

config_app = typer.Typer(help="Configuration (GRANTFLOW_* variables).", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)
DOC_PATH = "docs/configuration.md"  # cli.config_reference.DOC_PATH; a test keeps them equal
_STYLE = {"error": "red", "warning": "yellow", "ok": "green"}


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration from the environment and report every problem.

    Exit code 1 when any error is found (warnings alone exit 0).
    """
    from grantflow.services.runtime.config_check import Level, check  # loads the database layer

    findings = check()
    for f in findings:
        console.print(f"[{_STYLE[f.level.value]}]{f.level.value:<7}[/] {f.setting}: {f.message}")
    errors = sum(f.level is Level.ERROR for f in findings)
    console.print(
        f"{errors} error(s), {sum(f.level is Level.WARNING for f in findings)} warning(s)"
    )
    if errors:
        raise typer.Exit(1)


@config_app.command("reference")
def config_reference(
    write: Annotated[
        bool, typer.Option("--write", help="Write the file instead of printing")
    ] = False,
    check_file: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the file differs from the code")
    ] = False,
    path: Annotated[Path, typer.Option(help="The reference file")] = Path(DOC_PATH),
) -> None:
    """Print the configuration reference (Markdown) generated from the settings' code.

    `--write` updates docs/configuration.md; `--check` fails when it is out of date.
    """
    from grantflow.cli.config_reference import REGENERATE, reference

    text = reference()
    if check_file:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            typer.echo(f"{path} is out of date: run `{REGENERATE}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{path} is up to date")
    elif write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path}")
    else:
        typer.echo(text, nl=False)
