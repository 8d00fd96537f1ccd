"""`grantflow config check`."""

from __future__ import annotations

import typer
from rich.console import Console

from grantflow.services.config_check import Level, check

config_app = typer.Typer(help="Configuration (GRANTFLOW_* variables).", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)

_STYLE = {Level.ERROR: "red", Level.WARNING: "yellow", Level.OK: "green"}


@config_app.command("check")
def config_check() -> None:
    """Validate the configuration from the environment and report every problem.

    Exit code 1 when any error is found (warnings alone exit 0).
    """
    findings = check()
    for f in findings:
        console.print(f"[{_STYLE[f.level]}]{f.level.value:<7}[/] {f.setting}: {f.message}")
    errors = sum(f.level is Level.ERROR for f in findings)
    console.print(
        f"{errors} error(s), {sum(f.level is Level.WARNING for f in findings)} warning(s)"
    )
    if errors:
        raise typer.Exit(1)
