"""Two organizations, two identity stores, two moto accounts: neither touches the other.

Organization A lives in moto's default account, organization B in account 222222222222 (moto
picks the account from the access key: a key of an IAM user made in B acts in B). Both have
the same usernames (alice … frank) and group names, and an ``approvers`` group each: bob in A;
mallory (B only) and carol in B. ``ann`` exists in A only.

Connecting B must leave A's users, principals, groups and memberships exactly as they were;
a member of B's ``approvers`` cannot approve in A (both integrations name their owners
``approvers``); a grant in A goes to the requester's principal in A's identity store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from sqlalchemy import select

from grantflow.demo import org_clients
from grantflow.demo.deploy import (
    create_connector_role,
    deploy_member_roles,
    deploy_stack,
    management_session,
    stack_set_targets,
)
from grantflow.demo.moto_server import MotoServer, free_loopback_port
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape
from grantflow.demo.org_summary import OrgSummary
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import DirectoryPrincipal, Grant, Group, GroupMembership, User
from tests.e2e.conftest import wait_for
from tests.fixtures.integrations import integration_body
from tests.fixtures.live import LiveServer

pytestmark = pytest.mark.slow

ACCOUNT_B = "222222222222"
SHAPE = dataclasses.replace(
    OrgShape.small(), name="tiny", member_accounts=5, sandbox_accounts=0,
    resources_per_account=0, regions=("us-east-1",), suspend_one_account=False,
)  # fmt: skip


@dataclass
class Org:
    summary: OrgSummary
    session: boto3.Session  # acts in the organization's management account
    role_arn: str = ""
    principals: dict[str, str] = dataclasses.field(default_factory=dict)  # username -> id

    def add_user(self, username: str) -> None:
        store = self.session.client("identitystore")
        self.principals[username] = store.create_user(
            IdentityStoreId=self.summary.identity_store_id, UserName=username,
            DisplayName=username.title(), Name={"GivenName": username, "FamilyName": "X"},
            Emails=[{"Value": f"{username}@{self.summary.identity_store_id}.example",
                     "Primary": True}],
        )["UserId"]  # fmt: skip

    def add_group(self, name: str, members: list[str]) -> None:
        store = self.session.client("identitystore")
        ids = self.principals | {u.username: u.user_id for u in self.summary.users}
        group = store.create_group(IdentityStoreId=self.summary.identity_store_id,
                                   DisplayName=name)["GroupId"]  # fmt: skip
        for username in members:
            store.create_group_membership(
                IdentityStoreId=self.summary.identity_store_id, GroupId=group,
                MemberId={"UserId": ids[username]},
            )  # fmt: skip


@dataclass
class World:
    live: LiveServer
    connector_id: str
    a: Org
    b: Org

    def sql(self) -> Any:
        return _Sql(self.live.db_url)

    def as_user(self, username: str) -> httpx.Client:
        with self.sql() as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            token = create_personal_token(session, user, "test", SYSTEM).plaintext
        return self.live.http(token)

    def connect(self, org: Org, name: str) -> dict[str, Any]:
        s = org.summary
        body = integration_body(
            self.connector_id, name=name, sso_region=s.sso_region,
            sso_portal=f"https://{s.identity_store_id}.awsapps.com/start",
            management_role_arn=org.role_arn, exclude_ou_ids=list(s.excluded_ou_ids),
            sync_regions=list(s.regions),
        )  # fmt: skip
        with self.live.http() as c:
            r = c.post("/api/v1/integrations", json=body)
            assert r.status_code == 201, r.text
            done = _wait_synced(c, r.json()["id"], None)
            config = {
                **body["config"],
                "integration_owners": [{"kind": "group", "value": "approvers"}],
            }
            previous = done["last_sync"]["id"]
            r = c.patch(f"/api/v1/integrations/{done['id']}", json={"config": config})
            assert r.status_code == 200, r.text
            return _wait_synced(c, done["id"], previous)


class _Sql:
    def __init__(self, url: str) -> None:
        self.engine = build_engine(url)

    def __enter__(self) -> Any:
        self.tx = transaction(session_factory(self.engine))
        return self.tx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            self.tx.__exit__(*exc)
        finally:
            self.engine.dispose()


def _wait_synced(c: httpx.Client, integration_id: str, after: str | None) -> dict[str, Any]:
    def synced() -> dict[str, Any] | None:
        got = dict(c.get(f"/api/v1/integrations/{integration_id}").json())
        last = got.get("last_sync") or {}
        fresh = last.get("id") and last["id"] != after and last.get("finished_at")
        return got if fresh and got["status"] in {"active", "warning", "error"} else None

    done: dict[str, Any] = wait_for(synced, 240, f"a finished sync of {integration_id}")
    assert done["status"] == "active", done["status_message"]
    return done


def _key_in(account: str, endpoint: str) -> str:
    """An access key of an IAM user made in ``account``: moto acts in that account for it."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    iam.meta.events.register(
        "before-sign.iam.*",
        lambda request, **_: request.headers.__setitem__("x-moto-account-id", account),
    )
    iam.create_user(UserName="org-admin")
    return str(iam.create_access_key(UserName="org-admin")["AccessKey"]["AccessKeyId"])


def _deploy(org: Org, connector_id: str, connector_role: str) -> None:
    s = org.summary
    _, org.role_arn = deploy_stack(org.session, connector_id, connector_role, s.root_id)
    targets = stack_set_targets(s.root_id, [(o.id, o.path) for o in s.ous])
    deploy_member_roles(org.session, org.role_arn, targets, ["us-east-1"])


@pytest.fixture
def world(
    aws: MotoServer, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    a = Org(build_org(aws.endpoint, SHAPE, seed=7), management_session(aws.endpoint))
    key = _key_in(ACCOUNT_B, aws.endpoint)
    with monkeypatch.context() as patched:  # the builder signs with its one static key
        patched.setattr(org_clients, "_STATIC_KEY", key)
        b = Org(build_org(aws.endpoint, SHAPE, seed=11),
                boto3.Session(aws_access_key_id=key, aws_secret_access_key=key,
                              region_name="us-east-1"))  # fmt: skip
    assert b.summary.management_account_id == ACCOUNT_B != a.summary.management_account_id
    a.add_user("ann")
    a.add_group("approvers", ["bob"])
    b.add_user("mallory")
    b.add_group("approvers", ["mallory", "carol"])
    connector_role = create_connector_role(management_session(aws.endpoint))
    port = free_loopback_port()
    live = LiveServer(
        url=f"http://127.0.0.1:{port}", port=port, db_url=db_url, tmp=tmp_path,
        extra_env={"GRANTFLOW_MANAGED_CONNECTOR": "true",
                   "GRANTFLOW_CONNECTOR_ROLE_ARN": connector_role},
    )  # fmt: skip
    live.start()
    try:
        with live.http() as c:
            managed = [x for x in c.get("/api/v1/connectors").json() if x["kind"] == "managed"]
        connector_id = managed[0]["id"]
        _deploy(a, connector_id, connector_role)
        _deploy(b, connector_id, connector_role)
        yield World(live, connector_id, a, b)
    finally:
        live.stop_all()


def _directory_of(w: World, store: str) -> dict[str, set[tuple[Any, ...]]]:
    """Everything Grantflow holds about one identity store, as sets of tuples."""
    with w.sql() as s:
        users = {u.id: u for u in s.scalars(select(User))}
        principals = {
            (p.principal_id, users[p.user_id].username if p.user_id else None, p.matched_by)
            for p in s.scalars(
                select(DirectoryPrincipal).where(DirectoryPrincipal.identity_store_id == store)
            )
        }
        owned = {(u.username, u.active, u.source) for u in users.values() if u.directory == store}
        groups = s.scalars(select(Group).where(Group.directory == store)).all()
        memberships = {
            (g.id, g.name, g.identity_store_group_id, users[m.user_id].username)
            for g in groups
            for m in s.scalars(select(GroupMembership).where(GroupMembership.group_id == g.id))
        }
        rows = {(g.id, g.name, g.identity_store_group_id) for g in groups}
        return {"principals": principals, "users": owned, "groups": rows, "members": memberships}


def _group_id(w: World, store: str, name: str) -> str:
    with w.sql() as s:
        return str(
            s.scalars(select(Group.id).where(Group.directory == store, Group.name == name)).one()
        )


def _account(c: httpx.Client, integration_id: str, org: OrgSummary) -> dict[str, Any]:
    wanted = next(a.id for a in org.member_accounts if a.id in org.synced_account_ids)
    params = {"integration_id": integration_id, "type": "aws-account", "q": wanted}
    return dict(c.get("/api/v1/resources", params=params).json()["items"][0])


def test_a_second_organization_leaves_the_first_alone(world: World) -> None:
    w = world
    store_a, store_b = w.a.summary.identity_store_id, w.b.summary.identity_store_id
    integ_a = w.connect(w.a, "Org A")
    before = _directory_of(w, store_a)
    alice_a = next(u.user_id for u in w.a.summary.users if u.username == "alice")
    assert ("ann", True, "identity_center") in before["users"]
    assert (alice_a, "alice", "owner") in before["principals"]
    assert {m[3] for m in before["members"] if m[1] == "approvers"} == {"bob"}

    integ_b = w.connect(w.b, "Org B")
    assert _directory_of(w, store_a) == before  # nothing of A moved, renamed, retired

    after_b = _directory_of(w, store_b)
    alice_b = next(u.user_id for u in w.b.summary.users if u.username == "alice")
    assert (alice_b, "alice", "username") in after_b["principals"]  # one person, two stores
    assert ("mallory", True, "identity_center") in after_b["users"]
    assert {m[3] for m in after_b["members"] if m[1] == "approvers"} == {"mallory", "carol"}
    approvers_a, approvers_b = (
        _group_id(w, store_a, "approvers"),
        _group_id(w, store_b, "approvers"),
    )
    with w.live.http() as c:
        a_owners = _account(c, integ_a["id"], w.a.summary)["owners"]
        b_owners = _account(c, integ_b["id"], w.b.summary)["owners"]
    assert (a_owners, b_owners) == ([f"group:{approvers_a}"], [f"group:{approvers_b}"])

    # ann's request in A: B's approvers cannot decide it, A's can; the grant goes to A's alice
    with w.live.http() as c:
        flow = {"name": "admin in A", "integration_id": integ_a["id"], "definition": {
            "requestors": {"everyone": True},
            "scope": {"resource_types": ["aws-account"], "mode": "all"},
            "permissions": {"aws-account": ["ReadOnlyAccess"]},
            "approval": {"mode": "any", "groups": [{"kind": "resource_owner"}]}}}  # fmt: skip
        assert c.post("/api/v1/access-flows", json=flow).status_code == 201
        account = _account(c, integ_a["id"], w.a.summary)
    with w.as_user("alice") as alice:
        body = {"resource_ids": [account["id"]], "permission": "ReadOnlyAccess"}
        r = alice.post("/api/v1/access-requests", json=body)
        assert r.status_code == 201, r.text
        request_id = r.json()["id"]
    for outsider in ("mallory", "carol"):
        with w.as_user(outsider) as them:
            refused = them.post(f"/api/v1/access-requests/{request_id}/approve", json={})
            assert refused.status_code in {403, 404}, (outsider, refused.text)
            todo = them.get("/api/v1/access-requests", params={"scope": "to_approve"}).json()
            assert request_id not in {t["id"] for t in todo}
    with w.as_user("bob") as bob:
        ok = bob.post(f"/api/v1/access-requests/{request_id}/approve", json={})
        assert ok.status_code == 200, ok.text
        granted = wait_for(
            lambda: (r := bob.get(f"/api/v1/access-requests/{request_id}").json())["state"]
            in {"granted", "failed"} and r, 120, "the request to be granted",
        )  # fmt: skip
    assert granted["state"] == "granted", granted
    with w.sql() as s:
        (spec,) = [g.spec for g in s.scalars(select(Grant).where(Grant.request_id == request_id))]
    assert (spec["identity_store_id"], spec["principal_id"]) == (store_a, alice_a)
    sso = w.a.session.client("sso-admin")
    ps_arn = w.a.summary.permission_set_arns["ReadOnlyAccess"]
    assigned = sso.list_account_assignments(
        InstanceArn=w.a.summary.instance_arn, AccountId=account["aws_id"], PermissionSetArn=ps_arn
    )["AccountAssignments"]
    assert (alice_a, "USER") in {(x["PrincipalId"], x["PrincipalType"]) for x in assigned}

    # A syncs again: B's directory is untouched by it too
    b_before = _directory_of(w, store_b)
    with w.live.http() as c:
        previous = c.get(f"/api/v1/integrations/{integ_a['id']}").json()["last_sync"]["id"]
        assert c.post(f"/api/v1/integrations/{integ_a['id']}/sync").status_code in {200, 202}
        _wait_synced(c, integ_a["id"], previous)
    assert _directory_of(w, store_b) == b_before
    assert _directory_of(w, store_a) == before
