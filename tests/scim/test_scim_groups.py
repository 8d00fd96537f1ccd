"""SCIM Groups over HTTP: members add/remove, filters, uniqueness, discovery."""

from __future__ import annotations

from typing import Any

from tests.fixtures.api import Api
from tests.scim.conftest import ERROR, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA

H = dict[str, str]


def _user(api: Api, h: H, name: str) -> str:
    r = api.client.post(
        "/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": name}, headers=h
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _group(api: Api, h: H, name: str, members: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": name}
    if members is not None:
        body["members"] = [{"value": m} for m in members]
    r = api.client.post("/scim/v2/Groups", json=body, headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _patch(api: Api, h: H, gid: str, *ops: dict[str, Any]) -> Any:
    body = {"schemas": [PATCH_OP], "Operations": list(ops)}
    return api.client.patch(f"/scim/v2/Groups/{gid}", json=body, headers=h)


def _members(body: dict[str, Any]) -> set[str]:
    return {m["value"] for m in body.get("members", [])}


def test_members_add_remove(api: Api, scim_headers: H) -> None:
    a, b, c = (_user(api, scim_headers, n) for n in ("ann", "ben", "cat"))
    group = _group(api, scim_headers, "Engineers", [a])
    assert _members(group) == {a}
    r = _patch(
        api,
        scim_headers,
        group["id"],
        {"op": "add", "path": "members", "value": [{"value": b}, {"value": c}]},
    )
    assert r.status_code == 200 and _members(r.json()) == {a, b, c}
    r = _patch(api, scim_headers, group["id"], {"op": "remove", "path": f'members[value eq "{b}"]'})
    assert _members(r.json()) == {a, c}
    # Entra style: remove with a value
    r = _patch(
        api, scim_headers, group["id"], {"op": "remove", "path": "members", "value": [{"value": a}]}
    )
    assert _members(r.json()) == {c}
    user = api.client.get(f"/scim/v2/Users/{c}", headers=scim_headers).json()
    assert [g["value"] for g in user["groups"]] == [group["id"]]
    detail = api.client.get(f"/api/v1/users/{c}", headers=api.as_admin()).json()
    assert [g["name"] for g in detail["groups"]] == ["Engineers"]


def test_member_must_be_a_scim_user(api: Api, scim_headers: H) -> None:
    gid = _group(api, scim_headers, "Ops")["id"]
    r = _patch(
        api, scim_headers, gid, {"op": "add", "path": "members", "value": [{"value": "nope"}]}
    )
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert r.json()["schemas"] == [ERROR]


def test_display_name_filter_and_uniqueness(api: Api, scim_headers: H) -> None:
    gid = _group(api, scim_headers, "Data")["id"]
    found = api.client.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "data"'}, headers=scim_headers
    )
    assert [g["id"] for g in found.json()["Resources"]] == [gid]
    r = api.client.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP_SCHEMA], "displayName": "DATA"},
        headers=scim_headers,
    )
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"
    listed = api.client.get(
        "/api/v1/groups", params={"search": "dat"}, headers=api.as_admin()
    ).json()
    assert [g["name"] for g in listed["items"]] == ["Data"]


def test_put_and_delete(api: Api, scim_headers: H) -> None:
    a = _user(api, scim_headers, "amy")
    gid = _group(api, scim_headers, "Old")["id"]
    body = {"schemas": [GROUP_SCHEMA], "displayName": "New", "members": [{"value": a}]}
    r = api.client.put(f"/scim/v2/Groups/{gid}", json=body, headers=scim_headers)
    assert r.status_code == 200 and r.json()["displayName"] == "New" and _members(r.json()) == {a}
    assert api.client.delete(f"/scim/v2/Groups/{gid}", headers=scim_headers).status_code == 204
    assert api.client.get(f"/scim/v2/Groups/{gid}", headers=scim_headers).status_code == 404


def test_discovery(api: Api, scim_headers: H) -> None:
    c = api.client
    spc = c.get("/scim/v2/ServiceProviderConfig", headers=scim_headers).json()
    assert spc["patch"]["supported"] is True and spc["etag"]["supported"] is True
    types = c.get("/scim/v2/ResourceTypes", headers=scim_headers).json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    schemas = c.get("/scim/v2/Schemas", headers=scim_headers).json()
    assert len(schemas["Resources"]) == 3
    assert c.get(f"/scim/v2/Schemas/{GROUP_SCHEMA}", headers=scim_headers).status_code == 200
