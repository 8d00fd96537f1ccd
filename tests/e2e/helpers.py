"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

import boto3

from tests.e2e.conftest import Deployed, wait_for


def sso() -> Any:
    return boto3.client("sso-admin", region_name="us-east-1")


def user_assignments(d: Deployed, account: str, ps_arn: str) -> set[tuple[str, str, str]]:
    pages = (
        sso()
        .get_paginator("list_account_assignments")
        .paginate(InstanceArn=d.org.instance_arn, AccountId=account, PermissionSetArn=ps_arn)
    )
    return {
        (a["AccountId"], a["PermissionSetArn"], a["PrincipalId"])
        for page in pages
        for a in page["AccountAssignments"]
        if a["PrincipalType"] == "USER"
    }


def ready(d: Deployed) -> dict[str, Any]:
    created = d.create_integration()
    done = d.wait_status(created["id"], {"active", "warning", "error"})
    assert done["status"] == "active", done["status_message"]
    return done


def ids(d: Deployed, kind: str, names: list[str]) -> list[str]:
    path = "/api/v1/users" if kind == "user" else "/api/v1/groups"
    with d.admin() as c:
        items = c.get(path, params={"limit": 500}).json()["items"]
    key = "username" if kind == "user" else "name"
    found = {i[key]: i["id"] for i in items}
    return [found[n] for n in names]


def flow(d: Deployed, integration_id: str, name: str, **definition: Any) -> dict[str, Any]:
    with d.admin() as c:
        body = {"name": name, "integration_id": integration_id, "definition": definition}
        r = c.post("/api/v1/access-flows", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def resource(d: Deployed, integration_id: str, rtype: str, q: str | None = None) -> dict:
    with d.admin() as c:
        params = {"integration_id": integration_id, "type": rtype}
        if q:
            params["q"] = q
        page = c.get("/api/v1/resources", params=params).json()
    return dict(page["items"][0])


def first_account(d: Deployed, integration_id: str) -> dict[str, Any]:
    prod = next(a for a in d.org.member_accounts if a.id in d.org.synced_account_ids)
    return resource(d, integration_id, "aws-account", prod.id)


def wait_state(client: Any, request_id: str, states: set[str], timeout: float = 60) -> dict:
    return dict(
        wait_for(
            lambda: (
                (r := client.get(f"/api/v1/access-requests/{request_id}").json())["state"] in states
                and r
            ),
            timeout,
            f"request in {states}",
        )
    )


def request(client: Any, resource_id: str, permission: str, **extra: Any) -> dict[str, Any]:
    body = {"resource_ids": [resource_id], "permission": permission, **extra}
    r = client.post("/api/v1/access-requests", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


AUTO_READ_ONLY: dict[str, Any] = {
    "requestors": {"everyone": True},
    "scope": {"resource_types": ["aws-account"], "mode": "all"},
    "permissions": {"aws-account": ["ReadOnlyAccess"]},
    "approval": {"mode": "auto"},
    "max_duration_seconds": 3600,
    "max_extensions": 1,
}
