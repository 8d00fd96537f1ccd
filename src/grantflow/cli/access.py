"""`grantflow access list`: my live access, with the time left and how to use it."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from grantflow.cli.integrations import Token, Url, _api
from grantflow.cli.output import (
    Output,
    OutputOpt,
    emit_json,
    out,
    say,
    seconds_left,
    short_time,
    table,
    time_left,
)

access_app = typer.Typer(help="Your live access.", no_args_is_help=True)


def live_grants(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per granted item of the given requests: what, until when, how to sign in."""
    return [
        {
            "request_id": r["id"],
            "grant_id": g["id"],
            "integration_id": r["integration_id"],
            "permission": r["permission"],
            "resource_id": g["resource_id"],
            "resource_name": g["resource_name"],
            "resource_type": g["resource_type"],
            "account_id": g["account_id"],
            "expires_at": g["expires_at"] or r["expires_at"],
            "seconds_left": seconds_left(g["expires_at"] or r["expires_at"]),
            "access": g["access"],
        }
        for r in requests
        for g in r["grants"]
        if g["state"] == "granted"
    ]


def print_access_details(request: dict[str, Any]) -> None:
    """The sign-in link, the `aws configure sso` profile and the custom access details of
    each granted item, as the API builds them."""
    for grant in live_grants([request]):
        where = grant["resource_name"] or grant["resource_id"] or "?"
        account = f" in {grant['account_id']}" if grant["account_id"] else ""
        until = f"{short_time(grant['expires_at'])} ({time_left(grant['expires_at'])} left)"
        out.print(
            Text.assemble(
                ("granted", "bold green"),
                f" {grant['permission']} on {where}{account} until {until}",
            )
        )
        access = grant["access"]
        if access.get("sign_in_url"):
            say(out, f"  sign-in link: {access['sign_in_url']}")
        if access.get("cli_profile"):
            say(out, "  AWS CLI profile (add to ~/.aws/config, then `aws sso login`):")
            for line in str(access["cli_profile"]).splitlines():
                say(out, f"    {line}")
        if access.get("custom_access_details"):
            say(out, f"  access details: {access['custom_access_details']}")


@access_app.command("list")
def list_access(output: OutputOpt = Output.TABLE, url: Url = None, token: Token = None) -> None:
    """Access you hold right now, soonest to expire first, with the time left."""
    with _api(url, token) as api:
        rows = api.get(
            "/api/v1/access-requests", params={"scope": "mine", "state": "granted", "limit": 500}
        )
    grants = sorted(
        live_grants(rows), key=lambda g: (g["seconds_left"] is None, g["seconds_left"] or 0)
    )
    if output is Output.JSON:
        return emit_json(grants)
    table(
        (
            "request",
            "resource",
            "type",
            "account",
            "permission",
            "expires",
            "time left",
            "sign-in link",
        ),
        (
            (
                g["request_id"],
                g["resource_name"] or "-",
                g["resource_type"] or "-",
                g["account_id"] or "-",
                g["permission"],
                short_time(g["expires_at"]),
                time_left(g["expires_at"]),
                str(g["access"].get("sign_in_url", "-")),
            )
            for g in grants
        ),
        title="your live access",
    )
