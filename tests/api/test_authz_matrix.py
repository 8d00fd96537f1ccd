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
from grantflow.services.audit import SYSTEM
from grantflow.services.tokens import create_personal_token
from grantflow.store.db import transaction
from grantflow.store.models import User
from tests.fixtures.api import Api

PUBLIC = {
    "/healthz", "/readyz", "/metrics", "/auth/login", "/auth/logout", "/auth/session",
    "/auth/oidc/login", "/auth/oidc/callback",
    # Slack's interactivity URL: authenticated by Slack's request signature (the signing
    # secret), never by a Grantflow token; tests/notify/test_slack_actions.py checks it.
    "/api/slack/actions",
}  # fmt: skip
RULES = {
    typing.get_args(deps.CurrentUser)[1].dependency: "user",
    typing.get_args(deps.AdminUser)[1].dependency: "admin",
    typing.get_args(deps.ConnectorAuth)[1].dependency: "connector",
    typing.get_args(deps.ScimAuth)[1].dependency: "scim",
}
# RFC 7644 §3.4.3 lets a SCIM server answer 501 to the root-level search it does not offer.
NOT_IMPLEMENTED = {("/scim/v2/.search", 501)}
CALLERS = ("anonymous", "member", "admin", "connector", "scim")
ALLOWED = {
    "user": {"member", "admin"},
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
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    r = api.client.post("/api/v1/connectors", json={"name": "matrix"}, headers=api.as_admin())
    connector_id, connector_token = r.json()["id"], r.json()["token"]
    scim = api.client.post("/api/v1/scim/tokens", json={"name": "idp"}, headers=api.as_admin())
    with transaction(ctx.sessions) as session:
        member = User(username="matrix-member", role="member")
        session.add(member)
        session.flush()
        member_token = create_personal_token(session, member, "m", SYSTEM).plaintext
    return {
        "member": member_token,
        "admin": api.admin_token,
        "connector": connector_token,
        "scim": scim.json()["token"],
        "_connector_id": connector_id,
    }


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
