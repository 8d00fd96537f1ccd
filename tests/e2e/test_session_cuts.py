"""Revocation ends sessions (issue 21), end to end: API → jobs → managed connector → AWS.

A revoked grant of the organization's permission set (the integration opted in) gets a deny
statement for the user's sessions in the set's inline policy, read back from the moto server
with boto3; the request shows when it was cut; once the sessions it targets have expired
(``release_after``, moved into the past here instead of waiting an hour) it is lifted again.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from grantflow.domain import session_cuts as rules
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import AuditEvent
from grantflow.store.models_session_cuts import SessionCut
from grantflow.store.types import utcnow
from tests.e2e import helpers as h
from tests.e2e.conftest import Deployed, wait_for

pytestmark = pytest.mark.slow


def _policy(d: Deployed, ps_arn: str) -> str:
    found = h.sso().get_inline_policy_for_permission_set(
        InstanceArn=d.org.instance_arn, PermissionSetArn=ps_arn
    )
    return str(found.get("InlinePolicy") or "")


def _actions(d: Deployed, request_id: str) -> list[str]:
    engine = build_engine(d.live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            return list(
                session.scalars(
                    select(AuditEvent.action)
                    .where(AuditEvent.target_id == request_id)
                    .order_by(AuditEvent.seq)
                )
            )
    finally:
        engine.dispose()


def _expire_cuts(d: Deployed) -> None:
    """An hour passes: the sessions the cuts target have expired."""
    engine = build_engine(d.live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.execute(
                update(SessionCut)
                .where(SessionCut.state == "active")
                .values(release_after=utcnow() - timedelta(seconds=1))
            )
    finally:
        engine.dispose()


def _cut(client: Any, request_id: str, states: set[str]) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        cut = client.get(f"/api/v1/access-requests/{request_id}").json()["grants"][0]
        found = cut.get("session_cut")
        return found if found and found["state"] in states else None

    return dict(wait_for(seen, 90, f"a session cut in {states}"))


@pytest.mark.both_backends
def test_revoking_cuts_existing_sessions_and_lifts_the_cut_once_they_expired(
    deployed: Deployed,
) -> None:
    d = deployed
    integ = d.create_integration(cut_sessions_on_own_permission_sets=True)
    assert d.wait_status(integ["id"], {"active", "warning", "error"})["status"] == "active"
    h.flow(d, integ["id"], "read-only", **h.AUTO_READ_ONLY)
    account = h.first_account(d, integ["id"])
    ps_arn = d.org.permission_set_arns["ReadOnlyAccess"]
    before = _policy(d, ps_arn)
    user = d.org.users[0]
    with d.as_user(user.username) as me:
        created = h.request(me, account["id"], "ReadOnlyAccess", duration_seconds=600)
        granted = h.wait_state(me, created["id"], {"granted", "failed"})
        assert granted["state"] == "granted", granted
        assert granted["grants"][0]["session_cut"] is None
        assert (
            me.post(f"/api/v1/access-requests/{created['id']}/revoke", json={}).status_code == 200
        )
        h.wait_state(me, created["id"], {"revoked"})
        cut = _cut(me, created["id"], {"active"})
    assert cut["account_id"] == account["aws_id"] and cut["user_name"] == user.username
    assert cut["cut_at"] and cut["release_after"] and cut["released_at"] is None
    ours = rules.cut_statements_of(_policy(d, ps_arn))
    assert len(ours) == 1, _policy(d, ps_arn)
    condition = ours[0]["Condition"]
    assert condition["StringLike"] == {"aws:userid": [f"*:{user.username}"]}  # type: ignore[index]
    assert condition["StringEquals"] == {"aws:PrincipalAccount": account["aws_id"]}  # type: ignore[index]
    assert "sessions.revoked" in _actions(d, created["id"])

    _expire_cuts(d)
    with d.as_user(user.username) as me:
        lifted = _cut(me, created["id"], {"released"})
    assert lifted["released_at"]
    assert rules.cut_statements_of(_policy(d, ps_arn)) == []
    assert _policy(d, ps_arn) == before or json.loads(_policy(d, ps_arn)) == json.loads(before)
    assert _actions(d, created["id"]).count("sessions.release") == 1
