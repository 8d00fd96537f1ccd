"""Flows, requests, approvals and grants end to end: API → jobs → managed connector → AWS.

AWS state is read back from the moto server with boto3 after each step.
"""

from __future__ import annotations

import boto3
import pytest

from tests.e2e import helpers as h
from tests.e2e.conftest import Deployed

pytestmark = pytest.mark.slow


_sso = h.sso
_assignments = h.user_assignments
_ready = h.ready
_ids = h.ids
_flow = h.flow
_account_resource = h.first_account
_wait_state = h.wait_state


@pytest.mark.both_backends
def test_auto_approved_account_access_is_granted_and_revoked_in_aws(deployed: Deployed) -> None:
    d = deployed
    integ = _ready(d)
    user = d.org.users[0]
    (user_id,) = _ids(d, "user", [user.username])
    _flow(d, integ["id"], "read-only for everyone",
          requestors={"everyone": True},
          scope={"resource_types": ["aws-account"], "mode": "all"},
          permissions={"aws-account": ["ReadOnlyAccess"]},
          approval={"mode": "auto"}, max_duration_seconds=3600)  # fmt: skip
    account = _account_resource(d, integ["id"])
    ps_arn = d.org.permission_set_arns["ReadOnlyAccess"]
    before = _assignments(d, account["aws_id"], ps_arn)
    with d.as_user(user.username) as me:
        r = me.post("/api/v1/access-requests", json={"resource_ids": [account["id"]],
                                                     "permission": "ReadOnlyAccess",
                                                     "duration_seconds": 600})  # fmt: skip
        assert r.status_code == 201, r.text
        granted = _wait_state(me, r.json()["id"], {"granted", "failed"})
        assert granted["state"] == "granted", granted
        access = granted["grants"][0]["access"]
        assert "account_id=" + account["aws_id"] in access["sign_in_url"]
        assert "role_name=ReadOnlyAccess" in access["sign_in_url"]
        tuple_ = (account["aws_id"], ps_arn, user.user_id)
        assert _assignments(d, account["aws_id"], ps_arn) == before | {tuple_}
        plan = me.get(f"/api/v1/access-requests/{granted['id']}/plan")
        assert plan.status_code == 200, plan.text
        (item,) = plan.json()["items"]
        assert item["action"] == "revoke" and item["pre_existing"] is False
        assert [s.split(" ")[0] for s in item["steps"]] == ["remove"], item
        r = me.post(f"/api/v1/access-requests/{granted['id']}/revoke", json={})
        assert r.status_code == 200, r.text
        ended = _wait_state(me, granted["id"], {"revoked"})
    assert ended["grants"][0]["state"] == "revoked"
    assert _assignments(d, account["aws_id"], ps_arn) == before
    assert user_id


def test_owner_approval_never_by_the_requester(deployed: Deployed) -> None:
    d = deployed
    integ = _ready(d)
    requester, approver = d.org.users[0], d.org.users[1]
    (approver_id,) = _ids(d, "user", [approver.username])
    requester_id = _ids(d, "user", [requester.username])[0]
    _flow(d, integ["id"], "admin with approval",
          requestors={"everyone": True},
          scope={"resource_types": ["aws-account"], "mode": "all"},
          permissions={"aws-account": ["AdministratorAccess"]},
          approval={"mode": "any", "groups": [
              {"kind": "users", "user_ids": [approver_id, requester_id]}]},
          justification_required=True)  # fmt: skip
    account = _account_resource(d, integ["id"])
    with d.as_user(requester.username) as me, d.as_user(approver.username) as boss:
        body = {"resource_ids": [account["id"]], "permission": "AdministratorAccess"}
        missing = me.post("/api/v1/access-requests", json=body)
        assert (missing.status_code, missing.json()["error"]["field"]) == (422, "justification")
        r = me.post("/api/v1/access-requests", json={**body, "justification": "INC-1234"})
        assert r.status_code == 201, r.text
        request_id = r.json()["id"]
        own = me.post(f"/api/v1/access-requests/{request_id}/approve", json={})
        assert own.status_code == 403
        assert "own request" in own.json()["error"]["message"]
        todo = boss.get("/api/v1/access-requests", params={"scope": "to_approve"}).json()
        assert [t["id"] for t in todo] == [request_id]
        ok = boss.post(f"/api/v1/access-requests/{request_id}/approve", json={"reason": "ok"})
        assert ok.status_code == 200, ok.text
        granted = _wait_state(me, request_id, {"granted", "failed"})
        assert granted["state"] == "granted"
        me.post(f"/api/v1/access-requests/{request_id}/revoke", json={})
        _wait_state(me, request_id, {"revoked"})


def test_no_flow_means_403_with_the_explanation(deployed: Deployed) -> None:
    d = deployed
    integ = _ready(d)
    account = _account_resource(d, integ["id"])
    with d.as_user(d.org.users[0].username) as me:
        body = {"resource_ids": [account["id"]], "permission": "ReadOnlyAccess"}
        r = me.post("/api/v1/access-requests", json=body)
    assert r.status_code == 403
    assert "no access flow" in r.json()["error"]["message"]


def _memberships(d: Deployed, group_id: str) -> set[str]:
    client = boto3.client("identitystore", region_name="us-east-1")
    pages = client.get_paginator("list_group_memberships").paginate(
        IdentityStoreId=d.org.identity_store_id, GroupId=group_id
    )
    return {m["MemberId"]["UserId"] for p in pages for m in p["GroupMemberships"]}


def _pooled_sets() -> dict[str, str]:
    sso = _sso()
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    out = {}
    for page in sso.get_paginator("list_permission_sets").paginate(InstanceArn=instance):
        for arn in page["PermissionSets"]:
            name = sso.describe_permission_set(InstanceArn=instance, PermissionSetArn=arn)[
                "PermissionSet"]["Name"]  # fmt: skip
            if name.startswith("Grantflow-"):
                out[name] = arn
    return out


def test_group_membership_and_pooled_s3_access(deployed: Deployed) -> None:
    d = deployed
    integ = _ready(d)
    _flow(d, integ["id"], "groups and buckets",
          requestors={"everyone": True},
          scope={"resource_types": ["identity-center-group", "s3-bucket"], "mode": "all"},
          permissions={"identity-center-group": ["member"], "s3-bucket": ["read-only"]},
          approval={"mode": "auto"})  # fmt: skip
    user = d.org.users[0]
    group = next(g for g in d.org.groups if user.username not in g.members)
    with d.admin() as c:
        query = {"integration_id": integ["id"], "type": "identity-center-group", "q": group.name}
        groups = c.get("/api/v1/resources", params=query).json()["items"]
        query = {"integration_id": integ["id"], "type": "s3-bucket"}
        bucket = c.get("/api/v1/resources", params=query).json()["items"][0]
    (group_resource,) = [g for g in groups if g["name"] == group.name]
    with d.as_user(user.username) as me:
        body = {"resource_ids": [group_resource["id"]], "permission": "member"}
        member = me.post("/api/v1/access-requests", json=body).json()
        _wait_state(me, member["id"], {"granted"})
        assert user.user_id in _memberships(d, group.group_id)
        body = {"resource_ids": [bucket["id"]], "permission": "read-only"}
        s3 = me.post("/api/v1/access-requests", json=body).json()
        granted = _wait_state(me, s3["id"], {"granted"})
        pooled = _pooled_sets()
        assert len(pooled) == 1
        ((name, ps_arn),) = pooled.items()
        assert f"role_name={name}" in granted["grants"][0]["access"]["sign_in_url"]
        assert (bucket["account_id"], ps_arn, user.user_id) in _assignments(
            d, bucket["account_id"], ps_arn
        )
        for request_id in (member["id"], s3["id"]):
            me.post(f"/api/v1/access-requests/{request_id}/revoke", json={})
            _wait_state(me, request_id, {"revoked"})
    assert user.user_id not in _memberships(d, group.group_id)
    assert _pooled_sets() == {}  # garbage-collected with its last assignment
