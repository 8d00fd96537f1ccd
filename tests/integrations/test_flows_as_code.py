"""Flows as code: export with names, apply idempotently, diff, dry run, clear errors."""

from __future__ import annotations

from typing import Any

from grantflow.store.db import transaction
from grantflow.store.models import Group, User
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_body


def _setup(api: Api) -> tuple[str, dict[str, str]]:
    cid = api.client.post("/api/v1/connectors", json={"name": "c"}, headers=api.as_admin()).json()
    body = integration_body(cid["id"])
    integ = api.client.post("/api/v1/integrations", json=body, headers=api.as_admin()).json()
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        alice, team = User(username="alice"), Group(name="platform-team")
        session.add_all([alice, team])
        session.flush()
        ids = {"alice": alice.id, "platform-team": team.id}
    return integ["id"], ids


def _definition(users: list[str], groups: list[str]) -> dict[str, Any]:
    return {
        "requestors": {"group_ids": groups},
        "scope": {"resource_types": ["aws-account"], "mode": "all"},
        "permissions": {"aws-account": ["ReadOnlyAccess"]},
        "approval": {"mode": "any", "groups": [{"kind": "users", "user_ids": users}]},
    }


def test_round_trip_changes_nothing_and_diffs_are_exact(api: Api) -> None:
    integration_id, ids = _setup(api)
    for name in ("ro", "admin"):
        body = {
            "name": name,
            "integration_id": integration_id,
            "definition": _definition([ids["alice"]], [ids["platform-team"]]),
        }
        assert (
            api.client.post("/api/v1/access-flows", json=body, headers=api.as_admin()).status_code
            == 201
        )
    doc = api.client.get("/api/v1/access-flows/export", headers=api.as_admin()).json()
    ro = next(f for f in doc["flows"] if f["name"] == "ro")
    assert ro["integration"] == "Org"
    assert ro["definition"]["requestors"]["group_ids"] == ["platform-team"]
    assert ro["definition"]["approval"]["groups"][0]["user_ids"] == ["alice"]
    same = api.client.post("/api/v1/access-flows/apply", json=doc, headers=api.as_admin()).json()
    assert (same["created"], same["changed"], same["deleted"]) == ([], [], [])
    assert sorted(same["unchanged"]) == ["admin", "ro"]
    ro["description"] = "read only"
    doc["flows"] = [ro, {**ro, "name": "new", "description": ""}]
    plan = api.client.post(
        "/api/v1/access-flows/apply", json=doc, params={"dry_run": True}, headers=api.as_admin()
    ).json()
    assert (plan["created"], plan["changed"], plan["deleted"]) == (["new"], ["ro"], ["admin"])
    names = [
        f["name"] for f in api.client.get("/api/v1/access-flows", headers=api.as_admin()).json()
    ]
    assert sorted(names) == ["admin", "ro"]  # the dry run changed nothing
    done = api.client.post("/api/v1/access-flows/apply", json=doc, headers=api.as_admin()).json()
    assert (done["created"], done["changed"], done["deleted"]) == (["new"], ["ro"], ["admin"])
    again = api.client.post("/api/v1/access-flows/apply", json=doc, headers=api.as_admin()).json()
    assert sorted(again["unchanged"]) == ["new", "ro"]


def test_unknown_names_are_422_with_the_path(api: Api) -> None:
    integration_id, ids = _setup(api)
    doc = {
        "flows": [
            {
                "name": "x",
                "integration": "Org",
                "definition": _definition(["alice"], ["no-such-team"]),
            }
        ]
    }
    r = api.client.post("/api/v1/access-flows/apply", json=doc, headers=api.as_admin())
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "flows.0.definition.requestors.group_ids"
    doc["flows"][0]["integration"] = "Nope"
    r = api.client.post("/api/v1/access-flows/apply", json=doc, headers=api.as_admin())
    assert (r.status_code, r.json()["error"]["field"]) == (422, "flows.0.integration")
    assert integration_id and ids
