"""`grantflow login` / `logout`: keep a personal API token for the other commands."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from grantflow.cli import credentials
from grantflow.cli.api_client import Api

console = Console(highlight=False)


def login(
    url: Annotated[str, typer.Option(envvar="GRANTFLOW_URL", help="Grantflow base URL")],
    token: Annotated[
        str,
        typer.Option(
            envvar="GRANTFLOW_TOKEN",
            prompt="Personal API token (from your profile in the web console)",
            hide_input=True,
            help="A personal API token",
        ),
    ],
) -> None:
    """Check the token against the server and store it (mode 0600) for later commands."""
    with Api(url, token) as api:
        me = api.get("/api/v1/me")
    path = credentials.save(credentials.Credentials(url.rstrip("/"), token, me["username"]))
    console.print(f"signed in to {url} as {me['username']} ({me['role']}); token kept in {path}")


def logout() -> None:
    """Forget the stored token (revoke it in the web console too if it may have leaked)."""
    if credentials.forget():
        console.print("signed out: the stored token is deleted")
    else:
        console.print("not signed in")
