"""Who may call what, for every route of the app, generated from its route table.

Each API route's rule is read from its dependencies (CurrentUser, AdminUser, ConnectorAuth,
ScimAuth); a route with none must be listed in PUBLIC, so a new route without a rule fails
here. Every cell of route and caller is then called over HTTP and must be refused (401/403)
exactly where the rule says, and must get past authorization everywhere else.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from grantflow.api import deps
from grantflow.api.routes import access_requests
from tests.fixtures.api import Api
from tests.fixtures.seed import seed_world

PUBLIC = {
    "/healthz", "/readyz", "/metrics", "/auth/login", "/auth/logout", "/auth/session",
    "/auth/oidc/login", "/auth/oidc/callback",
    # The CLI's device sign-in (RFC 8628): starting needs no credentials (limited per IP),
    # polling needs the device code; tests/security/test_device_login.py checks both.
    "/api/v1/auth/device", "/api/v1/auth/device/token",
    # Slack's interactivity URL: authenticated by Slack's request signature (the signing
    # secret), never by a Grantflow token; tests/notify/test_slack_actions.py checks it.
    "/api/slack/actions",
    # Spending an invitation: the link's one-time secret is the credential (never a bearer
    # token); tests/security/test_invitations.py checks it.
    "/auth/invitation",
}  # fmt: skip
RULES = {
    typing.get_args(deps.CurrentUser)[1].dependency: "user",
    typing.get_args(deps.AdminUser)[1].dependency: "admin",
    typing.get_args(deps.ConnectorAuth)[1].dependency: "connector",
    typing.get_args(deps.ScimAuth)[1].dependency: "scim",
}
# RFC 7644 §3.4.3 lets a SCIM server answer 501 to the root-level search it does not offer.
NOT_IMPLEMENTED = {("/scim/v2/.search", 501)}
CALLERS = ("anonymous", "member", "approver", "admin", "connector", "scim")
ALLOWED = {
    "user": {"member", "approver", "admin"},
    "admin": {"admin"},
    "connector": {"connector"},
    "scim": {"scim"},
}


def _rules(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call in RULES:
            yield RULES[sub.call]
        yield from _rules(sub)


def _flatten(routes: list[typing.Any]) -> Iterator[typing.Any]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included-router wrapper
        if inner is not None:
            yield from _flatten(inner.routes)
        else:
            yield route


def _api_routes(api: Api) -> list[tuple[APIRoute, str | None]]:
    out = []
    for route in _flatten(api.client.app.routes):  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or route.endpoint.__module__.startswith("grantflow.web"):
            continue
        rules = set(_rules(route.dependant))
        assert len(rules) <= 1, f"{route.path} has several rules: {rules}"
        out.append((route, rules.pop() if rules else None))
    return out


def _tokens(api: Api) -> dict[str, str]:
    """admin, member, approver (a member named as a flow's approver), connector, scim."""
    world = seed_world(api.client.app)  # type: ignore[arg-type]
    return {**world.tokens, "_connector_id": world.ids["connector_id"]}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_route_has_a_rule_and_every_cell_holds(api: Api) -> None:
    tokens = _tokens(api)
    routes = _api_routes(api)
    unruled = sorted({r.path for r, rule in routes if rule is None} - PUBLIC)
    assert unruled == [], f"routes without an authorization rule: {unruled}"
    failures = []
    checked = 0

    # Destructive cells (rotating or deleting the connector) go last: they really happen.
    def order(item: tuple[APIRoute, str | None]) -> tuple[bool, str]:
        route = item[0]
        return ("rotate-token" in route.path or "DELETE" in route.methods, route.path)

    for route, rule in sorted(routes, key=order):
        if rule is None:
            continue
        path = re.sub(r"\{connector_id\}", tokens["_connector_id"], route.path)
        path = re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)
        for method in sorted(route.methods - {"HEAD"}):
            for caller in CALLERS:
                headers = {} if caller == "anonymous" else {
                    "Authorization": f"Bearer {tokens[caller]}"}  # fmt: skip
                r = api.client.request(method, path, headers=headers, json={})
                checked += 1
                refused = r.status_code in (401, 403)
                expected_refused = caller not in ALLOWED[rule]
                if caller == "anonymous" and r.status_code != 401:
                    failures.append(f"{method} {route.path} anonymous → {r.status_code}")
                elif refused != expected_refused or (
                    r.status_code >= 500 and (route.path, r.status_code) not in NOT_IMPLEMENTED
                ):
                    failures.append(f"{method} {route.path} {caller} → {r.status_code}")
    assert failures == [], "\n".join(failures)
    assert checked > 200


# One access request, by the caller's relation to it: who gets past authorization (anything
# but 401/403/404) on each request-scoped route. Everyone else is refused, and a member with no
# relation to the request is told it does not exist (404), so ids cannot be probed. A new route
# under {request_id} without an entry here fails the test.
ON_A_REQUEST = {
    "GET /api/v1/access-requests/{request_id}": {"requester", "approver", "admin"},
    "POST /api/v1/access-requests/{request_id}/approve": {"approver"},
    "POST /api/v1/access-requests/{request_id}/reject": {"approver"},
    "POST /api/v1/access-requests/{request_id}/cancel": {"requester"},
    "POST /api/v1/access-requests/{request_id}/revoke": {"requester", "approver", "admin"},
    "POST /api/v1/access-requests/{request_id}/extend": {"requester"},
    "GET /api/v1/access-requests/{request_id}/plan": {"requester", "approver", "admin"},
    "GET /api/v1/access-requests/{request_id}/session-audit": {"requester", "approver", "admin"},
    "GET /api/v1/access-requests/{request_id}/session-audit.csv": {
        "requester", "approver", "admin"},
}  # fmt: skip
RELATIONS = ("member", "requester", "approver", "admin")
# With no connector running, a dry run that got past authorization ends in 503.
NO_CONNECTOR = {("GET /api/v1/access-requests/{request_id}/plan", 503)}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_request_scoped_route_holds_for_every_relation(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_requests, "PLAN_WAIT_SECONDS", 0.3)
    world = seed_world(api.client.app)  # type: ignore[arg-type]
    sessions = api.client.app.state.ctx.sessions  # type: ignore[attr-defined]
    cells = sorted(
        f"{method} {route.path}"
        for route, _rule in _api_routes(api)
        if "{request_id}" in route.path
        for method in route.methods - {"HEAD"}
    )
    assert sorted(ON_A_REQUEST) == cells, "request-scoped routes without an object rule"
    failures = []
    for cell in cells:
        method, path = cell.split(" ", 1)
        for caller in RELATIONS:
            request_id = world.new_request(sessions)  # fresh: decisions really happen
            r = api.client.request(
                method, path.replace("{request_id}", request_id),
                headers={"Authorization": f"Bearer {world.tokens[caller]}"},
                json={"reason": "matrix", "seconds": 600},
            )  # fmt: skip
            allowed = caller in ON_A_REQUEST[cell]
            passed = r.status_code not in (401, 403, 404) and (
                r.status_code < 500 or (cell, r.status_code) in NO_CONNECTOR
            )
            expected = {"member": 404} if caller == "member" else {}
            if passed != allowed or r.status_code != expected.get(caller, r.status_code):
                failures.append(f"{cell} {caller} → {r.status_code} {r.text[:120]}")
    assert failures == [], "\n".join(failures)
