"""SCIM Users over HTTP: CRUD, filters, pagination, PATCH, ETags, and SCIM error bodies."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import AuditEvent, User
from tests.fixtures.api import Api
from tests.scim.conftest import ENTERPRISE, ERROR, PATCH_OP, SCIM_JSON, USER_SCHEMA

H = dict[str, str]


def _user(name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": name, **extra}


def _create(api: Api, h: H, name: str, **extra: Any) -> dict[str, Any]:
    r = api.client.post("/scim/v2/Users", json=_user(name, **extra), headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _assert_error(r: Any, status: int, scim_type: str | None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert body["detail"]


def _db_user(api: Api, user_id: str) -> User:
    engine = build_engine(api.settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            user = session.get(User, user_id)
            assert user is not None
            return user
    finally:
        engine.dispose()


def test_create_get_with_enterprise_attributes(api: Api, scim_headers: H) -> None:
    body = _create(
        api,
        scim_headers,
        "Alice@Example.com",
        externalId="okta-1",
        displayName="Alice A",
        title="SRE",
        emails=[{"value": "alice@example.com", "primary": True}],
        **{ENTERPRISE: {"department": "Platform", "costCenter": "42"}},
        schemas=[USER_SCHEMA, ENTERPRISE],
    )
    r = api.client.get(f"/scim/v2/Users/{body['id']}", headers=scim_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith(SCIM_JSON)
    got = r.json()
    assert got["userName"] == "Alice@Example.com" and got[ENTERPRISE]["department"] == "Platform"
    assert got["meta"]["resourceType"] == "User" and got["meta"]["version"] == r.headers["ETag"]
    assert got["meta"]["location"].endswith(f"/scim/v2/Users/{body['id']}")
    row = _db_user(api, body["id"])
    assert (row.source, row.email, row.display_name, row.external_id) == (
        "scim", "alice@example.com", "Alice A", "okta-1",
    )  # fmt: skip
    flat = {k: v for k, v in row.attributes.items() if not k.startswith("_")}
    assert flat == {"title": "SRE", "department": "Platform", "costCenter": "42"}


def test_duplicate_username_is_409_uniqueness(api: Api, scim_headers: H) -> None:
    _create(api, scim_headers, "bob")
    r = api.client.post("/scim/v2/Users", json=_user("BOB"), headers=scim_headers)
    _assert_error(r, 409, "uniqueness")
    # a local user's name is taken too
    r = api.client.post("/scim/v2/Users", json=_user("admin"), headers=scim_headers)
    _assert_error(r, 409, "uniqueness")


@pytest.mark.parametrize(
    ("payload", "scim_type"),
    [
        ({"schemas": [USER_SCHEMA]}, "invalidValue"),  # userName is required
        ({"schemas": [USER_SCHEMA], "userName": "x", "active": "maybe"}, "invalidValue"),
    ],
)
def test_invalid_bodies(api: Api, scim_headers: H, payload: Any, scim_type: str) -> None:
    r = api.client.post("/scim/v2/Users", json=payload, headers=scim_headers)
    _assert_error(r, 400, scim_type)


def test_malformed_json_is_invalid_syntax(api: Api, scim_headers: H) -> None:
    r = api.client.post("/scim/v2/Users", content=b"{nope", headers=scim_headers)
    _assert_error(r, 400, "invalidSyntax")


def test_unknown_attributes_are_ignored(api: Api, scim_headers: H) -> None:
    body = _create(api, scim_headers, "ursula", favouriteColour="green")
    assert "favouriteColour" not in body


def test_filters_and_pagination(api: Api, scim_headers: H) -> None:
    ids = [_create(api, scim_headers, f"user{i}", externalId=f"ext-{i}")["id"] for i in range(5)]
    c, h = api.client, scim_headers
    found = c.get("/scim/v2/Users", params={"filter": 'userName eq "USER3"'}, headers=h).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == ids[3]
    found = c.get("/scim/v2/Users", params={"filter": 'externalId eq "ext-1"'}, headers=h).json()
    assert [u["id"] for u in found["Resources"]] == [ids[1]]
    found = c.get("/scim/v2/Users", params={"filter": 'userName sw "user"'}, headers=h).json()
    assert found["totalResults"] == 5
    page = c.get("/scim/v2/Users", params={"startIndex": 2, "count": 2}, headers=h).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (5, 2, 2)
    assert [u["id"] for u in page["Resources"]] == ids[1:3]
    r = c.get("/scim/v2/Users", params={"filter": 'userName eq "x" and ('}, headers=h)
    _assert_error(r, 400, "invalidFilter")
    r = c.get("/scim/v2/Users", params={"count": "many"}, headers=h)
    _assert_error(r, 400, "invalidValue")


def test_put_replaces_and_patch_operations(api: Api, scim_headers: H) -> None:
    uid = _create(api, scim_headers, "carol", title="Dev")["id"]
    c, h = api.client, scim_headers
    r = c.put(f"/scim/v2/Users/{uid}", json=_user("carol", displayName="Carol C"), headers=h)
    assert r.status_code == 200 and "title" not in r.json()
    ops = [
        {"op": "replace", "path": "displayName", "value": "Carol D"},
        {"op": "add", "path": "title", "value": "Lead"},
        {"op": "remove", "path": "displayName"},
    ]
    r = c.patch(f"/scim/v2/Users/{uid}", json={"schemas": [PATCH_OP], "Operations": ops}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Lead" and "displayName" not in r.json()
    bad = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "id", "value": "x"}]}
    _assert_error(c.patch(f"/scim/v2/Users/{uid}", json=bad, headers=h), 400, "mutability")
    bad = {"schemas": [PATCH_OP], "Operations": [{"op": "frobnicate", "path": "title"}]}
    r = c.patch(f"/scim/v2/Users/{uid}", json=bad, headers=h)
    assert r.status_code == 400 and r.json()["schemas"] == [ERROR]


def test_deactivate_then_delete(api: Api, scim_headers: H) -> None:
    uid = _create(api, scim_headers, "dave")["id"]
    c, h = api.client, scim_headers
    op = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    r = c.patch(f"/scim/v2/Users/{uid}", json=op, headers=h)
    assert r.status_code == 200 and r.json()["active"] is False
    assert _db_user(api, uid).active is False
    engine = build_engine(api.settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            actions = session.scalars(
                select(AuditEvent.action).where(AuditEvent.target_id == uid)
            ).all()
    finally:
        engine.dispose()
    assert "user.deactivated" in actions
    assert c.delete(f"/scim/v2/Users/{uid}", headers=h).status_code == 204
    _assert_error(c.get(f"/scim/v2/Users/{uid}", headers=h), 404, None)
    _assert_error(c.delete(f"/scim/v2/Users/{uid}", headers=h), 404, None)
    # a delete is final: the same userName provisioned again is a new user, and the deleted
    # row stays (inactive, deleted_at set) for history
    assert _create(api, scim_headers, "dave")["id"] != uid
    deleted = _db_user(api, uid)
    assert (deleted.active, deleted.deleted_at is not None) == (False, True)


def test_etags(api: Api, scim_headers: H) -> None:
    uid = _create(api, scim_headers, "erin")["id"]
    c, h = api.client, scim_headers
    etag = c.get(f"/scim/v2/Users/{uid}", headers=h).headers["ETag"]
    assert c.get(f"/scim/v2/Users/{uid}", headers={**h, "If-None-Match": etag}).status_code == 304
    stale = {**h, "If-Match": 'W/"stale"'}
    r = c.put(f"/scim/v2/Users/{uid}", json=_user("erin", title="x"), headers=stale)
    _assert_error(r, 412, None)
    r = c.put(
        f"/scim/v2/Users/{uid}", json=_user("erin", title="x"), headers={**h, "If-Match": etag}
    )
    assert r.status_code == 200 and r.headers["ETag"] != etag


def test_auth_and_unknown_urls_are_scim_errors(api: Api, scim_headers: H) -> None:
    c = api.client
    _assert_error(c.get("/scim/v2/Users"), 401, None)
    _assert_error(c.get("/scim/v2/Users", headers=api.as_admin()), 403, None)
    _assert_error(c.get("/scim/v2/Nope", headers=scim_headers), 404, None)
    _assert_error(c.put("/scim/v2/ServiceProviderConfig", headers=scim_headers), 405, None)


def test_revoked_token_is_refused(api: Api, scim_token: str, scim_headers: H) -> None:
    tokens = api.client.get("/api/v1/scim/tokens", headers=api.as_admin()).json()
    assert [t["name"] for t in tokens] == ["okta"] and "token" not in tokens[0]
    r = api.client.delete(f"/api/v1/scim/tokens/{tokens[0]['id']}", headers=api.as_admin())
    assert r.status_code == 204
    _assert_error(api.client.get("/scim/v2/Users", headers=scim_headers), 401, None)
    assert api.client.get("/api/v1/scim/tokens", headers=api.as_admin()).json() == []
