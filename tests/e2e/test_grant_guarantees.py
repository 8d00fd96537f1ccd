"""The promises about access in AWS: reference counting, pre-existing access, expiry,
extension, and revocation surviving a killed server."""

from __future__ import annotations

import time

import boto3
import pytest

from tests.e2e import helpers as h
from tests.e2e.conftest import Deployed

pytestmark = pytest.mark.slow


@pytest.mark.both_backends
def test_overlapping_grants_are_reference_counted(deployed: Deployed) -> None:
    d = deployed
    integ = h.ready(d)
    h.flow(d, integ["id"], "ro", **h.AUTO_READ_ONLY)
    account = h.first_account(d, integ["id"])
    ps = d.org.permission_set_arns["ReadOnlyAccess"]
    user = d.org.users[0]
    mine = (account["aws_id"], ps, user.user_id)
    with d.as_user(user.username) as me:
        first = h.request(me, account["id"], "ReadOnlyAccess")
        h.wait_state(me, first["id"], {"granted"})
        second = h.request(me, account["id"], "ReadOnlyAccess")
        h.wait_state(me, second["id"], {"granted"})
        assert mine in h.user_assignments(d, account["aws_id"], ps)
        me.post(f"/api/v1/access-requests/{first['id']}/revoke", json={})
        h.wait_state(me, first["id"], {"revoked"})
        assert mine in h.user_assignments(d, account["aws_id"], ps)  # the second still needs it
        me.post(f"/api/v1/access-requests/{second['id']}/revoke", json={})
        h.wait_state(me, second["id"], {"revoked"})
        assert mine not in h.user_assignments(d, account["aws_id"], ps)


def test_access_that_existed_before_grantflow_survives(deployed: Deployed) -> None:
    d = deployed
    integ = h.ready(d)
    h.flow(d, integ["id"], "ro", **h.AUTO_READ_ONLY)
    account = h.first_account(d, integ["id"])
    ps = d.org.permission_set_arns["ReadOnlyAccess"]
    user = d.org.users[1]
    boto3.client("sso-admin", region_name="us-east-1").create_account_assignment(
        InstanceArn=d.org.instance_arn, TargetId=account["aws_id"], TargetType="AWS_ACCOUNT",
        PermissionSetArn=ps, PrincipalType="USER", PrincipalId=user.user_id,
    )  # fmt: skip
    standing = (account["aws_id"], ps, user.user_id)
    with d.as_user(user.username) as me:
        req = h.request(me, account["id"], "ReadOnlyAccess")
        granted = h.wait_state(me, req["id"], {"granted"})
        assert granted["grants"][0]["pre_existing"] is True
        me.post(f"/api/v1/access-requests/{req['id']}/revoke", json={})
        h.wait_state(me, req["id"], {"revoked"})
    assert standing in h.user_assignments(d, account["aws_id"], ps)


def test_expiry_revokes_within_seconds_and_extension_moves_it(deployed: Deployed) -> None:
    d = deployed
    integ = h.ready(d)
    h.flow(
        d,
        integ["id"],
        "ro",
        **{**h.AUTO_READ_ONLY, "max_duration_seconds": 600, "default_duration_seconds": 300},
    )
    account = h.first_account(d, integ["id"])
    ps = d.org.permission_set_arns["ReadOnlyAccess"]
    user = d.org.users[2]
    with d.as_user(user.username) as me:
        req = h.request(me, account["id"], "ReadOnlyAccess", duration_seconds=60)
        granted = h.wait_state(me, req["id"], {"granted"})
        r = me.post(f"/api/v1/access-requests/{req['id']}/extend", json={"seconds": 60})
        assert r.status_code == 200, r.text
        assert r.json()["expires_at"] > granted["expires_at"]
        again = me.post(f"/api/v1/access-requests/{req['id']}/extend", json={"seconds": 60})
        assert again.status_code == 409  # the flow allows one extension
    # Shorten the clock: move expiry into the past directly in the database (the test
    # cannot wait two minutes), then the scheduler must revoke within a couple of seconds.
    from sqlalchemy import update

    from grantflow.store.db import build_engine, session_factory, transaction
    from grantflow.store.models import AccessRequest
    from grantflow.store.types import utcnow

    engine = build_engine(d.live.db_url)
    with transaction(session_factory(engine)) as session:
        session.execute(
            update(AccessRequest).where(AccessRequest.id == req["id"]).values(expires_at=utcnow())
        )
    engine.dispose()
    started = time.monotonic()
    with d.as_user(user.username) as me:
        done = h.wait_state(me, req["id"], {"expired"}, timeout=30)
    assert time.monotonic() - started < 15
    assert done["end_reason"] == "expired"
    assert (account["aws_id"], ps, user.user_id) not in h.user_assignments(d, account["aws_id"], ps)


@pytest.mark.both_backends
def test_expiry_while_the_server_is_dead_is_revoked_on_restart(deployed: Deployed) -> None:
    d = deployed
    integ = h.ready(d)
    h.flow(d, integ["id"], "ro", **h.AUTO_READ_ONLY)
    account = h.first_account(d, integ["id"])
    ps = d.org.permission_set_arns["ReadOnlyAccess"]
    user = d.org.users[3]
    with d.as_user(user.username) as me:
        req = h.request(me, account["id"], "ReadOnlyAccess", duration_seconds=60)
        h.wait_state(me, req["id"], {"granted"})
    d.live.kill()  # SIGKILL: no goodbye
    d.live.expire_leases()  # time passes: what the dead server held is free again
    from sqlalchemy import update

    from grantflow.store.db import build_engine, session_factory, transaction
    from grantflow.store.models import AccessRequest
    from grantflow.store.types import utcnow

    engine = build_engine(d.live.db_url)
    with transaction(session_factory(engine)) as session:
        session.execute(
            update(AccessRequest).where(AccessRequest.id == req["id"]).values(expires_at=utcnow())
        )
    engine.dispose()
    assert (account["aws_id"], ps, user.user_id) in h.user_assignments(d, account["aws_id"], ps)
    d.live.start()
    with d.as_user(user.username) as me:
        h.wait_state(me, req["id"], {"expired"}, timeout=60)
    assert (account["aws_id"], ps, user.user_id) not in h.user_assignments(d, account["aws_id"], ps)


def test_all_of_approval_needs_every_group(deployed: Deployed) -> None:
    d = deployed
    integ = h.ready(d)
    requester, a, b = d.org.users[0], d.org.users[1], d.org.users[2]
    a_id, b_id = h.ids(d, "user", [a.username, b.username])
    h.flow(d, integ["id"], "two keys", requestors={"everyone": True},
           scope={"resource_types": ["aws-account"], "mode": "all"},
           permissions={"aws-account": ["AdministratorAccess"]},
           approval={"mode": "all", "groups": [{"kind": "users", "user_ids": [a_id]},
                                               {"kind": "users", "user_ids": [b_id]}]})  # fmt: skip
    account = h.first_account(d, integ["id"])
    with d.as_user(requester.username) as me, d.as_user(a.username) as ca, \
            d.as_user(b.username) as cb:  # fmt: skip
        req = h.request(me, account["id"], "AdministratorAccess")
        assert ca.post(f"/api/v1/access-requests/{req['id']}/approve", json={}).status_code == 200
        assert me.get(f"/api/v1/access-requests/{req['id']}").json()["state"] == "pending"
        assert cb.post(f"/api/v1/access-requests/{req['id']}/approve", json={}).status_code == 200
        h.wait_state(me, req["id"], {"granted"})
        me.post(f"/api/v1/access-requests/{req['id']}/revoke", json={})
        h.wait_state(me, req["id"], {"revoked"})


def test_reconciliation_repairs_an_assignment_removed_behind_our_back(deployed: Deployed) -> None:
    d = deployed
    integ = h.ready(d)
    h.flow(d, integ["id"], "ro", **h.AUTO_READ_ONLY)
    account = h.first_account(d, integ["id"])
    ps = d.org.permission_set_arns["ReadOnlyAccess"]
    user = d.org.users[4]
    mine = (account["aws_id"], ps, user.user_id)
    with d.as_user(user.username) as me:
        req = h.request(me, account["id"], "ReadOnlyAccess")
        h.wait_state(me, req["id"], {"granted"})
    boto3.client("sso-admin", region_name="us-east-1").delete_account_assignment(
        InstanceArn=d.org.instance_arn, TargetId=account["aws_id"], TargetType="AWS_ACCOUNT",
        PermissionSetArn=ps, PrincipalType="USER", PrincipalId=user.user_id,
    )  # fmt: skip
    assert mine not in h.user_assignments(d, account["aws_id"], ps)
    with d.admin() as c:
        r = c.post(f"/api/v1/integrations/{integ['id']}/reconcile")
        assert r.status_code == 202 and r.json()["job_id"]
    from tests.e2e.conftest import wait_for

    wait_for(lambda: mine in h.user_assignments(d, account["aws_id"], ps), 60, "repair")


def test_server_killed_mid_grant_leaves_exactly_one_assignment(deployed: Deployed) -> None:
    """The managed connector runs inside the server: SIGKILL it while the grant is in flight,
    restart, and the grant completes once — one assignment in AWS, not two."""
    d = deployed
    integ = h.ready(d)
    h.flow(d, integ["id"], "ro", **h.AUTO_READ_ONLY)
    account = h.first_account(d, integ["id"])
    ps = d.org.permission_set_arns["ReadOnlyAccess"]
    user = d.org.users[5 % len(d.org.users)]
    with d.as_user(user.username) as me:
        req = h.request(me, account["id"], "ReadOnlyAccess")
    time.sleep(0.3)
    d.live.kill()
    d.live.expire_leases()  # time passes: the grant job the dead server held is free again
    d.live.start()
    with d.as_user(user.username) as me:
        h.wait_state(me, req["id"], {"granted"}, timeout=90)
    pages = (
        h.sso()
        .get_paginator("list_account_assignments")
        .paginate(InstanceArn=d.org.instance_arn, AccountId=account["aws_id"], PermissionSetArn=ps)
    )
    mine = [
        a for page in pages for a in page["AccountAssignments"]
        if a["PrincipalId"] == user.user_id
    ]  # fmt: skip
    assert len(mine) == 1, mine
