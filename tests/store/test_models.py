"""The models behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessFlow,
    AccessRequest,
    Approval,
    Connector,
    Grant,
    Group,
    GroupMembership,
    Integration,
    Job,
    Permission,
    Resource,
    User,
)


def _graph(session: Session) -> dict[str, str]:
    user = User(username="alice", email="alice@example.com", attributes={"department": "data"})
    owner = User(username="bob", email="bob@example.com")
    group = Group(name="data-team")
    connector = Connector(
        id="gfc-aaaaaaaaaaaaaaaaaaaa",
        name="c1",
        kind="managed",
        token_hash="h" * 64,
        token_prefix="gf_con_x",
    )
    session.add_all([user, owner, group, connector])
    session.flush()
    session.add(GroupMembership(group_id=group.id, user_id=user.id))
    integ = Integration(
        name="Org",
        type="aws-organization",
        connector_id=connector.id,
        config={"region": "us-east-1"},
        resource_types=["aws-account"],
    )
    session.add(integ)
    session.flush()
    res = Resource(
        integration_id=integ.id,
        type="aws-account",
        aws_id="111111111111",
        account_id="111111111111",
        region="us-east-1",
        name="prod",
        tags={"owner": "data-team"},
        ou_path=["r-ab12", "ou-ab12-11111111"],
    )
    perm = Permission(integration_id=integ.id, resource_type="aws-account", name="ReadOnlyAccess")
    flow = AccessFlow(name="ro", integration_id=integ.id, definition={"approvers": []})
    session.add_all([res, perm, flow])
    session.flush()
    req = AccessRequest(
        requester_id=user.id,
        integration_id=integ.id,
        flow_id=flow.id,
        resource_type="aws-account",
        permission="ReadOnlyAccess",
        duration_seconds=3600,
        expires_at=datetime(2030, 1, 1, 12, 0, tzinfo=UTC),
    )
    session.add(req)
    session.flush()
    session.add_all(
        [
            Grant(request_id=req.id, resource_id=res.id, handle={"account": "111111111111"}),
            Approval(request_id=req.id, approver_id=owner.id, decision="approve", reason="ok"),
            Job(connector_id=connector.id, type="verify", payload={"integration_id": integ.id}),
        ]
    )
    return {"user": user.id, "request": req.id, "integration": integ.id, "group": group.id}


def test_round_trip_keeps_json_and_aware_utc_datetimes(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        ids = _graph(session)
    with transaction(sessions) as session:
        req = session.get(AccessRequest, ids["request"])
        assert req is not None and req.expires_at is not None
        assert req.expires_at == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
        assert req.expires_at.tzinfo is not None
        assert req.created_at.tzinfo is not None
        user = session.get(User, ids["user"])
        assert user is not None and user.attributes == {"department": "data"}
        res = session.scalars(select(Resource)).one()
        assert (res.tags, res.ou_path) == ({"owner": "data-team"}, ["r-ab12", "ou-ab12-11111111"])


def test_naive_datetimes_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match="naive datetime"), transaction(sessions) as session:
        _graph(session)
        session.add(User(username="x", created_at=datetime(2030, 1, 1)))
        session.flush()


def test_unique_username(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.add(User(username="alice"))
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.add(User(username="alice"))


def test_resource_identity_is_unique_per_integration(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        ids = _graph(session)
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        session.add(
            Resource(
                integration_id=ids["integration"],
                type="aws-account",
                aws_id="111111111111",
                account_id="111111111111",
                region="us-east-1",
            )
        )


def test_deleting_a_user_removes_memberships(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        alice = User(username="alice")
        group = Group(name="g")
        session.add_all([alice, group])
        session.flush()
        session.add(GroupMembership(group_id=group.id, user_id=alice.id))
    with transaction(sessions) as session:
        session.delete(session.get(User, alice.id))
    with transaction(sessions) as session:
        assert session.scalars(select(GroupMembership)).all() == []


def test_timestamps_move_on_update(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        user = User(
            username="carol",
            created_at=datetime.now(UTC) - timedelta(days=1),
            updated_at=datetime.now(UTC) - timedelta(days=1),
        )
        session.add(user)
    with transaction(sessions) as session:
        row = session.get(User, user.id)
        assert row is not None
        row.display_name = "Carol"
    with transaction(sessions) as session:
        row = session.get(User, user.id)
        assert row is not None
        assert row.updated_at > row.created_at + timedelta(hours=23)
