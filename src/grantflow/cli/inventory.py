"""`grantflow inventory`: what the signed-in user can request (the requestable API), and the
name → id resolution `grantflow requests create` shares."""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from grantflow.cli import completion
from grantflow.cli.api_client import Api
from grantflow.cli.durations import format_duration
from grantflow.cli.integrations import Token, Url, _api
from grantflow.cli.output import Output, OutputOpt, emit_json, problem, table

inventory_app = typer.Typer(help="What you can request.", no_args_is_help=True)

IntegrationOpt = Annotated[
    str | None,
    typer.Option(
        "--integration",
        "-i",
        help="Integration name (or id)",
        autocompletion=completion.integration_names,
    ),
]
TypeOpt = Annotated[
    str | None, typer.Option("--type", "-t", help="Resource type, e.g. aws-account, s3-bucket")
]
PAGE = 200


class Requestable:
    """The requestable API read through, with integration names attached to every item."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._integrations: list[dict[str, Any]] | None = None

    def integrations(self) -> list[dict[str, Any]]:
        if self._integrations is None:
            self._integrations = [dict(i) for i in self.api.get("/api/v1/integrations")]
        return self._integrations

    def name_of(self, integration_id: str) -> str:
        return next(
            (str(i["name"]) for i in self.integrations() if i["id"] == integration_id),
            integration_id,
        )

    def integration(self, name: str) -> dict[str, Any]:
        """The integration called ``name`` (exact, then case-insensitive, or its id); a name
        nobody has is a usage error (exit 2) that lists the real ones."""
        rows = self.integrations()
        for match in (
            lambda i: i["name"] == name or i["id"] == name,
            lambda i: str(i["name"]).lower() == name.lower(),
        ):
            found = [i for i in rows if match(i)]
            if found:
                return found[0]
        known = ", ".join(sorted(shlex.quote(str(i["name"])) for i in rows)) or "none"
        raise problem(f"no integration named {name!r} (integrations: {known})", code=2)

    def items(
        self,
        integration: str | None = None,
        rtype: str | None = None,
        search: str | None = None,
        account: str | None = None,
    ) -> list[dict[str, Any]]:
        integ_id = self.integration(integration)["id"] if integration else None
        params: dict[str, Any] = {"limit": PAGE}
        filters = (("integration_id", integ_id), ("type", rtype), ("q", search),
                   ("account", account))  # fmt: skip
        params.update({k: v for k, v in filters if v})
        return [
            {**item, "integration": self.name_of(item["integration_id"])}
            for item in self._pages(params)
        ]

    def _pages(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.api.get("/api/v1/requestable", params={**params, "offset": offset})
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def resources(self, integration: str, rtype: str, names: list[str]) -> list[dict[str, Any]]:
        """Each name (resource name, AWS id or ARN, or Grantflow id) as exactly one requestable
        resource of ``rtype`` in ``integration``; none or several is a usage error."""
        integ = self.integration(integration)
        out = []
        for name in names:
            candidates = self.items(integ["id"], rtype, search=name)
            exact = [c for c in candidates if name in (c["name"], c["aws_id"], c["resource_id"])]
            if not exact:
                exact = [
                    c
                    for c in candidates
                    if name.lower() in (c["name"].lower(), c["aws_id"].lower())
                ]
            if not exact:
                raise problem(
                    f"no {rtype} named {name!r} that you can request in "
                    f"{integ['name']} (see `grantflow inventory resources -i "
                    f"{shlex.quote(integ['name'])} -t {shlex.quote(rtype)}`)",
                    code=2,
                )
            if len(exact) > 1:
                ids = ", ".join(c["aws_id"] for c in exact)
                raise problem(
                    f"{name!r} matches several {rtype} resources ({ids}); give the AWS id instead",
                    code=2,
                )
            out.append(exact[0])
        return out


def permissions_of(item: dict[str, Any]) -> list[str]:
    return sorted({p for flow in item["flows"] for p in flow["permissions"]})


@inventory_app.command("integrations")
def integrations(output: OutputOpt = Output.TABLE, url: Url = None, token: Token = None) -> None:
    """Integrations you can request something from, with their resource types."""
    with _api(url, token) as api:
        source = Requestable(api)
        items = source.items()
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            groups[item["integration_id"]].append(item)
        rows = [
            {
                "id": i["id"],
                "name": i["name"],
                "status": i["status"],
                "resources": len(groups[i["id"]]),
                "resource_types": sorted({x["type"] for x in groups[i["id"]]}),
            }
            for i in source.integrations()
            if i["id"] in groups
        ]
    if output is Output.JSON:
        return emit_json(rows)
    table(
        ("integration", "status", "resource types", "resources"),
        (
            (r["name"], r["status"], ", ".join(r["resource_types"]), str(r["resources"]))
            for r in rows
        ),
        title="integrations you can request from",
    )


@inventory_app.command("resource-types")
def resource_types(
    integration: IntegrationOpt = None,
    output: OutputOpt = Output.TABLE,
    url: Url = None,
    token: Token = None,
) -> None:
    """Resource types you can request, per integration, with their permissions."""
    with _api(url, token) as api:
        items = Requestable(api).items(integration)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        groups[(item["integration"], item["type"])].append(item)
    rows = [
        {
            "integration": integ,
            "integration_id": group[0]["integration_id"],
            "type": rtype,
            "resources": len(group),
            "permissions": sorted({p for i in group for p in permissions_of(i)}),
        }
        for (integ, rtype), group in sorted(groups.items())
    ]
    if output is Output.JSON:
        return emit_json(rows)
    table(
        ("integration", "type", "resources", "permissions"),
        (
            (r["integration"], r["type"], str(r["resources"]), ", ".join(r["permissions"]))
            for r in rows
        ),
    )


@inventory_app.command("resources")
def resources(
    integration: IntegrationOpt = None,
    rtype: TypeOpt = None,
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Name or AWS id contains")
    ] = None,
    account: Annotated[str | None, typer.Option(help="12-digit AWS account id")] = None,
    output: OutputOpt = Output.TABLE,
    url: Url = None,
    token: Token = None,
) -> None:
    """Resources you can request, with the permissions and the longest duration allowed."""
    with _api(url, token) as api:
        items = Requestable(api).items(integration, rtype, search, account)
    if output is Output.JSON:
        return emit_json(items)
    table(
        ("integration", "type", "name", "aws id", "account", "permissions", "max"),
        (
            (
                i["integration"],
                i["type"],
                i["name"],
                i["aws_id"],
                i["account_id"] or "-",
                ", ".join(permissions_of(i)),
                _max(max((f["max_duration_seconds"] for f in i["flows"]), default=0)),
            )
            for i in items
        ),
    )


def _max(seconds: int) -> str:
    return format_duration(seconds) if seconds else "-"


@inventory_app.command("permissions")
def permissions(
    integration: IntegrationOpt = None,
    rtype: TypeOpt = None,
    resource: Annotated[
        list[str] | None, typer.Option("--resource", "-r", help="Only for these resources")
    ] = None,
    output: OutputOpt = Output.TABLE,
    url: Url = None,
    token: Token = None,
) -> None:
    """Permissions you can request, by integration and resource type, with the flows that
    allow them (approval mode, longest duration)."""
    if resource and not (integration and rtype):
        raise problem("--resource needs --integration and --type", code=2)
    with _api(url, token) as api:
        source = Requestable(api)
        if resource and integration and rtype:
            items = source.resources(integration, rtype, resource)
        else:
            items = source.items(integration, rtype)
    rows = _permission_rows(items)
    if output is Output.JSON:
        return emit_json(rows)
    table(
        ("integration", "type", "permission", "flows", "approval", "max"),
        (
            (
                r["integration"],
                r["type"],
                r["permission"],
                ", ".join(r["flows"]),
                ", ".join(r["approval"]),
                _max(r["max_duration_seconds"]),
            )
            for r in rows
        ),
    )


def _permission_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in items:
        for flow in item["flows"]:
            for perm in flow["permissions"]:
                key = (item["integration"], item["type"], perm)
                row = merged.setdefault(
                    key,
                    {
                        "integration": key[0],
                        "type": key[1],
                        "permission": perm,
                        "flows": set(),
                        "approval": set(),
                        "max_duration_seconds": 0,
                    },
                )
                row["flows"].add(flow["flow_name"])
                row["approval"].add(flow["approval"])
                row["max_duration_seconds"] = max(
                    row["max_duration_seconds"], flow["max_duration_seconds"]
                )
    return [
        {**row, "flows": sorted(row["flows"]), "approval": sorted(row["approval"])}
        for _, row in sorted(merged.items())
    ]
