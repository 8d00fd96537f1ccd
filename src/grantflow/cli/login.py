"""`grantflow login` / `logout`: keep a personal API token for the other commands."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from grantflow.cli import browser_login, credentials
from grantflow.cli.api_client import Api
from grantflow.cli.durations import duration_option

console = Console(highlight=False)


def login(
    url: Annotated[str, typer.Option(envvar="GRANTFLOW_URL", help="Grantflow base URL")],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="GRANTFLOW_TOKEN",
            help="A personal API token (asked for when neither it nor --browser is given)",
            show_default=False,
        ),
    ] = None,
    browser: Annotated[
        bool,
        typer.Option(
            "--browser",
            help="Sign in with a code: type the code this command shows on the server's "
            "/device page (signed in by password or SSO) and approve; a personal token valid "
            "for 30 days is made for this machine",
        ),
    ] = False,
    open_browser: Annotated[
        bool,
        typer.Option("--open/--no-open", help="Open the /device page in a browser (--browser)"),
    ] = True,
    timeout: Annotated[
        int,
        typer.Option(
            parser=duration_option, show_default="10m", help="How long to wait (--browser)"
        ),
    ] = 600,
) -> None:
    """Check the token against the server and store it (mode 0600) for later commands."""
    if browser:
        token = browser_login.sign_in(url, open_browser, timeout)
    elif not token:
        token = str(
            typer.prompt(
                "Personal API token (web console: your name → Make token)", hide_input=True
            )
        )
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
