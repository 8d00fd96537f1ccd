"""`grantflow requests`: ask for access and wait for it; list, describe, decide, end, extend.

Exit codes: 0 done; 1 refused or failed (the API said no, the grant failed, the request was
rejected, or the wait timed out); 2 usage (bad option, unknown name, bad duration).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.text import Text

from grantflow.cli import completion
from grantflow.cli.access import print_access_details
from grantflow.cli.api_client import Api
from grantflow.cli.durations import (
    Duration,
    duration_option,
    format_duration,
    seconds_in_form_of,
)
from grantflow.cli.integrations import Token, Url, _api
from grantflow.cli.inventory import Requestable, permissions_of
from grantflow.cli.output import (
    Output,
    OutputOpt,
    emit_json,
    err,
    out,
    problem,
    say,
    short_time,
    table,
)
from grantflow.cli.output import time_left as left
from grantflow.domain.request_states import FINAL, RequestState

requests_app = typer.Typer(help="Access requests: create, follow, decide.", no_args_is_help=True)

BASE = "/api/v1/access-requests"
DONE = frozenset({RequestState.GRANTED.value} | {s.value for s in FINAL})
WHAT_NOW = {
    "pending": "waiting for approval",
    "approved": "approved; waiting for the connector",
    "granting": "granting in AWS",
    "revoking": "the grant did not complete; undoing what was done",
}
POLL_SECONDS = 1.0

RequestId = Annotated[str, typer.Argument(help="Request id", autocompletion=completion.request_ids)]
Reason = Annotated[str, typer.Option("--reason", "-m", help="Why (recorded in the audit log)")]


@requests_app.command("create")
def create(
    integration: Annotated[
        str,
        typer.Option(
            "--integration",
            "-i",
            help="Integration name",
            autocompletion=completion.integration_names,
        ),
    ],
    rtype: Annotated[str, typer.Option("--type", "-t", help="Resource type, e.g. aws-account")],
    resource: Annotated[
        list[str], typer.Option("--resource", "-r", help="Resource name or AWS id (repeatable)")
    ],
    permission: Annotated[str, typer.Option("--permission", "-p", help="e.g. ReadOnlyAccess")],
    duration: Annotated[
        int | None,
        typer.Option(
            "--duration",
            "-d",
            parser=duration_option,
            help="30m, 2h, 1h30m, 1d (default: the flow's default)",
        ),
    ] = None,
    justification: Annotated[str, typer.Option("--justification", "-j")] = "",
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Follow the request until granted (or refused)")
    ] = True,
    timeout: Annotated[
        int, typer.Option(parser=duration_option, show_default="10m", help="How long to wait")
    ] = 600,
    output: OutputOpt = Output.TABLE,
    url: Url = None,
    token: Token = None,
) -> None:
    """Request access, then wait until it is granted and print how to use it."""
    with _api(url, token) as api:
        resources = Requestable(api).resources(integration, rtype, resource)
        for item in resources:
            allowed = permissions_of(item)
            if permission not in allowed:
                raise problem(
                    f"{permission!r} is not requestable on {item['name']} "
                    f"(you can request: {', '.join(allowed) or 'nothing'})",
                    code=2,
                )
        body = {
            "resource_ids": [r["resource_id"] for r in resources],
            "permission": permission,
            "duration_seconds": duration,
            "justification": justification,
        }
        request = api.post(BASE, json=body, explain=_as_typed(duration))
        err.print(f"request {request['id']} created: {request['state']}")
        if wait:
            request = _follow(api, request, timeout)
    _finish(request, output, waited=wait)


def _follow(api: Api, request: dict[str, Any], timeout: int) -> dict[str, Any]:
    try:
        return _poll(api, request, timeout)
    except KeyboardInterrupt:
        raise problem(
            f"stopped waiting; request {request['id']} goes on: follow it with "
            f"`grantflow requests describe {request['id']}`"
        ) from None


def _poll(api: Api, request: dict[str, Any], timeout: int) -> dict[str, Any]:
    started = time.monotonic()
    with err.status(_status_text(request, 0)) as status:
        while request["state"] not in DONE:
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                raise problem(
                    f"request {request['id']} is still {request['state']} after "
                    f"{format_duration(timeout)}; follow it with `grantflow requests "
                    f"describe {request['id']}`"
                )
            time.sleep(min(POLL_SECONDS, max(0.0, timeout - elapsed)))
            latest = api.get(f"{BASE}/{request['id']}")
            if latest["state"] != request["state"]:
                err.print(f"{request['id']}: {request['state']} → {latest['state']}")
            request = latest
            status.update(_status_text(request, time.monotonic() - started))
    return request


def _status_text(request: dict[str, Any], elapsed: float) -> str:
    doing = WHAT_NOW.get(request["state"], request["state"])
    return f"{request['id']} [bold]{request['state']}[/]: {doing} ({format_duration(elapsed)})"


def _finish(request: dict[str, Any], output: Output, waited: bool) -> None:
    if output is Output.JSON:
        emit_json(request)
    elif request["state"] == RequestState.GRANTED.value:
        print_access_details(request)
    else:
        say(out, f"{request['id']}: {request['state']}")
    if waited and request["state"] != RequestState.GRANTED.value:
        raise problem(f"request {request['id']} {request['state']}: {_why(request)}")


def _why(request: dict[str, Any]) -> str:
    if request["failure_reason"]:
        return str(request["failure_reason"])
    said = [
        f"{a['approver']} {a['decision']}: {a['reason'] or 'no reason given'}"
        for a in request["approvals"]
    ]
    return "; ".join(said) or str(request["end_reason"] or "no reason recorded")


@requests_app.command("list")
def list_requests(
    all_: Annotated[bool, typer.Option("--all", help="Everyone's requests (admins)")] = False,
    to_approve: Annotated[
        bool, typer.Option("--to-approve", help="Requests waiting for your decision")
    ] = False,
    state: Annotated[RequestState | None, typer.Option(help="Only in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    output: OutputOpt = Output.TABLE,
    url: Url = None,
    token: Token = None,
) -> None:
    """Your requests, newest first (or --to-approve, or --all)."""
    if all_ and to_approve:
        raise problem("--all and --to-approve exclude each other", code=2)
    scope = "all" if all_ else "to_approve" if to_approve else "mine"
    params: dict[str, Any] = {"scope": scope, "limit": limit}
    if state is not None:
        params["state"] = state.value
    with _api(url, token) as api:
        rows = api.get(BASE, params=params)
        names = {i["id"]: i["name"] for i in api.get("/api/v1/integrations")}
    if output is Output.JSON:
        return emit_json(rows)
    table(
        (
            "id",
            "requester",
            "integration",
            "type",
            "resources",
            "permission",
            "state",
            "created",
            "time left",
        ),
        (
            (
                r["id"],
                r["requester"],
                names.get(r["integration_id"], r["integration_id"]),
                r["resource_type"],
                ", ".join(_resources(r)),
                r["permission"],
                r["state"],
                short_time(r["created_at"]),
                left(r["expires_at"]) if r["state"] == "granted" else "-",
            )
            for r in rows
        ),
        title={
            "mine": "your requests",
            "to_approve": "waiting for your decision",
            "all": "all requests",
        }[scope],
    )


def _resources(request: dict[str, Any]) -> list[str]:
    return [str(g["resource_name"] or g["resource_id"]) for g in request["grants"]]


@requests_app.command("describe")
def describe(
    request_id: RequestId, output: OutputOpt = Output.TABLE, url: Url = None, token: Token = None
) -> None:
    """One request: its state, approvals, grants and (when granted) how to use it."""
    with _api(url, token) as api:
        request = api.get(f"{BASE}/{full_id(api, request_id)}")
    if output is Output.JSON:
        return emit_json(request)
    _print_request(request)


FULL_ID_LENGTH = 36


def full_id(api: Api, given: str) -> str:
    """A request id from a unique prefix of it (as tables show them), like git's short ids.

    Looks among your requests, those waiting for you and, for admins, all recent ones (a
    request you already decided is found by its full id); a full id is used as it is."""
    if len(given) >= FULL_ID_LENGTH:
        return given
    if len(given) < 4:
        raise problem(f"{given!r} is too short: give at least 4 characters of the id", code=2)
    scopes = ["mine", "to_approve"]
    if (api.get("/api/v1/me") or {}).get("role") == "admin":
        scopes.append("all")
    found: set[str] = set()
    for scope in scopes:
        rows = api.get(BASE, params={"scope": scope, "limit": 200}) or []
        found.update(str(r["id"]) for r in rows if str(r["id"]).startswith(given))
    if len(found) == 1:
        return found.pop()
    if not found:
        raise problem(f"no request you can see starts with {given!r}", code=2)
    raise problem(f"{given!r} matches {len(found)} requests: give more of the id", code=2)


def _print_request(r: dict[str, Any]) -> None:
    fields = [
        ("id", r["id"]),
        ("state", r["state"]),
        ("requester", r["requester"]),
        ("type", r["resource_type"]),
        ("permission", r["permission"]),
        ("duration", format_duration(r["duration_seconds"])),
        ("justification", r["justification"] or "-"),
        ("created", short_time(r["created_at"])),
        ("expires", short_time(r["expires_at"])),
        ("extensions", str(r["extensions"])),
    ]
    if r["failure_reason"]:
        fields.append(("failure", r["failure_reason"]))
    if r["can_approve"]:
        fields.append(("you can approve", "yes"))
    for key, value in fields:
        out.print(Text.assemble((f"{key:>15}", "bold"), f" {value}"))
    table(
        ("resource", "type", "account", "state", "error"),
        (
            (
                g["resource_name"] or "-",
                g["resource_type"] or "-",
                g["account_id"] or "-",
                g["state"],
                g["error"] or "",
            )
            for g in r["grants"]
        ),
        title="grants",
    )
    if r["approvals"]:
        table(
            ("approver", "decision", "reason", "when"),
            (
                (a["approver"], a["decision"], a["reason"], short_time(a["created_at"]))
                for a in r["approvals"]
            ),
            title="decisions",
        )
    if r["state"] == RequestState.GRANTED.value:
        print_access_details(r)


def _as_typed(duration: int | None) -> Callable[[str], str] | None:
    """The API counts in seconds; errors are shown in the form the user typed (``4h``)."""
    if not isinstance(duration, Duration):
        return None
    typed = duration.text
    return lambda message: seconds_in_form_of(message, typed)


def _act(
    request_id: str, action: str, body: dict[str, Any] | None, output: Output,
    url: str | None, token: str | None, explain: Callable[[str], str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    with _api(url, token) as api:
        path = f"{BASE}/{full_id(api, request_id)}/{action}"
        request = dict(api.post(path, json=body or {}, explain=explain))
    if output is Output.JSON:
        emit_json(request)
    else:
        say(out, f"{request['id']}: {request['state']}")
    return request


def _with_reason(action: str, doc: str) -> Callable[..., None]:
    """The command that posts ``action`` on a request, with the optional ``--reason``."""

    def command(
        request_id: RequestId,
        reason: Reason = "",
        output: OutputOpt = Output.TABLE,
        url: Url = None,
        token: Token = None,
    ) -> None:
        _act(request_id, action, {"reason": reason}, output, url, token)

    command.__name__, command.__doc__ = action, doc
    return command


approve = requests_app.command("approve")(
    _with_reason("approve", "Approve a request that waits for you (never your own).")
)
reject = requests_app.command("reject")(
    _with_reason("reject", "Reject a request that waits for you.")
)


@requests_app.command("cancel")
def cancel(
    request_id: RequestId, output: OutputOpt = Output.TABLE, url: Url = None, token: Token = None
) -> None:
    """Withdraw your request before it is granted."""
    _act(request_id, "cancel", None, output, url, token)


revoke = requests_app.command("revoke")(
    _with_reason("revoke", "End granted access now (yours, one you approved, or any as an admin).")
)


@requests_app.command("extend")
def extend(
    request_id: RequestId,
    duration: Annotated[
        int,
        typer.Option(
            "--duration", "-d", parser=duration_option, help="How much longer: 30m, 1h, …"
        ),
    ],
    output: OutputOpt = Output.TABLE,
    url: Url = None,
    token: Token = None,
) -> None:
    """Keep your granted access longer (as often as the flow allows)."""
    request = _act(request_id, "extend", {"seconds": duration}, output, url, token,
                   _as_typed(duration))  # fmt: skip
    if output is Output.TABLE and request["expires_at"]:
        out.print(
            f"now expires {short_time(request['expires_at'])} ({left(request['expires_at'])} left)"
        )
