"""Turn the errors a user can fix into one line and a non-zero exit, without a traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def settings_problem(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        name = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"GRANTFLOW_{name.upper()}: {msg}")
    return "invalid configuration: " + "; ".join(parts)


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ValidationError as err:
            raise fail(settings_problem(err)) from None
        except Exception as err:
            # Imported here: every CLI command loads this module, few touch the database.
            from grantflow.services.audit.audit_keys import AuditKeyError
            from grantflow.services.runtime.startup import PortInUse
            from grantflow.store.db import DatabaseUnavailable

            if isinstance(err, DatabaseUnavailable | PortInUse | AuditKeyError):
                raise fail(str(err)) from None
            raise

    return wrapper
