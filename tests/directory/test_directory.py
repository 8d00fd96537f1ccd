"""The directory service: identity store snapshots, identity mapping, local users."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.inventory import DirectoryGroup, DirectorySnapshot, DirectoryUser
from grantflow.services.audit import trail as audit
from grantflow.services.directory import identity_store
from grantflow.services.directory import people as directory
from grantflow.services.errors import Conflict, Invalid
from grantflow.store.db import transaction
from grantflow.store.models import DirectoryPrincipal, Group, GroupMembership, User
from tests.fixtures.api import Api

ACTOR = audit.Actor(type="system", id=None, source="scheduler")


def _snapshot(users: list[DirectoryUser], groups: list[DirectoryGroup]) -> DirectorySnapshot:
    return DirectorySnapshot(
        identity_store_id="d-123", instance_arn="arn:aws:sso:::instance/ssoins-1",
        users=users, groups=groups,
    )  # fmt: skip


ALICE = DirectoryUser(
    identity_store_user_id="is-alice", username="alice", email="alice@example.com",
    display_name="Alice", attributes={"department": "Platform"},
)  # fmt: skip
BOB = DirectoryUser(identity_store_user_id="is-bob", username="bob.smith", email="bob@example.com")
ADMINS = DirectoryGroup(
    identity_store_group_id="is-g1", name="Admins", member_user_ids=["is-alice", "is-bob"]
)


def _principal(session: Session, user_id: str) -> str | None:
    return session.scalar(
        select(DirectoryPrincipal.principal_id).where(DirectoryPrincipal.user_id == user_id)
    )


def _rows(session: Session) -> set[tuple[Any, ...]]:
    users = {
        ("user", u.username, u.email, u.active, u.source, _principal(session, u.id))
        for u in session.scalars(select(User).where(User.username != "admin"))
    }
    groups = {
        ("group", g.name, g.source, g.identity_store_group_id)
        for g in session.scalars(select(Group))
    }
    members = {
        ("member", m.group_id, m.user_id, m.source)
        for m in session.scalars(select(GroupMembership))
    }
    return users | groups | members


def test_snapshot_is_idempotent(sessions: sessionmaker[Session]) -> None:
    snap = _snapshot([ALICE, BOB], [ADMINS])
    with transaction(sessions) as session:
        first = identity_store.apply_identity_store_snapshot(session, snap, ACTOR)
        before = _rows(session)
    with transaction(sessions) as session:
        second = identity_store.apply_identity_store_snapshot(session, snap, ACTOR)
        after = _rows(session)
    assert (first.users_created, first.groups_created, first.memberships_added) == (2, 1, 2)
    assert not second.changed
    assert before == after
    assert ("user", "alice", "alice@example.com", True, "identity_center", "is-alice") in after


def test_removed_identity_store_user_is_deactivated(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        identity_store.apply_identity_store_snapshot(
            session, _snapshot([ALICE, BOB], [ADMINS]), ACTOR
        )
    gone = ADMINS.model_copy(update={"member_user_ids": ["is-alice"]})
    with transaction(sessions) as session:
        result = identity_store.apply_identity_store_snapshot(
            session, _snapshot([ALICE], [gone]), ACTOR
        )
        bob = directory.user_by_username(session, "bob.smith")
        assert bob is not None and bob.active is False
        assert (result.users_deactivated, result.memberships_removed) == (1, 1)
    with transaction(sessions) as session:
        identity_store.apply_identity_store_snapshot(session, _snapshot([ALICE], []), ACTOR)
        assert session.scalars(select(Group)).all() == []


def test_mapping_by_username_then_email(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.add_all([
            User(username="ALICE", email="other@example.com", source="scim"),
            User(username="bsmith", email="BOB@example.com", source="scim"),
            User(username="carol", email="carol@example.com", source="local"),
        ])  # fmt: skip
    with transaction(sessions) as session:
        result = identity_store.apply_identity_store_snapshot(
            session, _snapshot([ALICE, BOB], []), ACTOR
        )
        mapped = {
            u.username: _principal(session, u.id)
            for u in session.scalars(select(User).where(User.source != "identity_center"))
        }
        carol = directory.user_by_username(session, "carol")
        assert carol is not None
        (status,) = directory.mapping_status(session, carol)
    # ALICE (scim) owns the username: the snapshot maps it instead of creating a row
    assert mapped == {"ALICE": "is-alice", "bsmith": "is-bob", "carol": None}
    assert {(k, v.user_id != "", v.matched_by.value) for k, v in result.links.items()} == {
        ("is-alice", True, "username"), ("is-bob", True, "email"),
    }  # fmt: skip
    assert str(getattr(status.found, "reason", None)) == "no_identity_store_user"


def test_local_user_password(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        user = directory.create_local_user(
            session, "dora", "dora@example.com", "Dora", "correct horse battery", "member", ACTOR
        )
        assert user.password_hash and "correct" not in user.password_hash
        assert directory.verify_password(user, "correct horse battery")
        assert not directory.verify_password(user, "wrong password!!")
        with pytest.raises(Conflict):
            directory.create_local_user(session, "DORA", None, "", "x" * 12, "member", ACTOR)
        with pytest.raises(Invalid):
            directory.create_local_user(session, "eve", None, "", "short", "member", ACTOR)
        with pytest.raises(Invalid):
            directory.create_local_user(session, "eve", None, "", "x" * 12, "root", ACTOR)
        directory.update_user(session, user.id, None, False, ACTOR)
        assert not directory.verify_password(user, "correct horse battery")


def test_cannot_receive_aws_grants_through_the_api(api: Api) -> None:
    admin = api.as_admin()
    body = {
        "username": "frank",
        "email": "frank@example.com",
        "password": "a long password!",
        "role": "member",
    }
    r = api.client.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["source"] == "local" and created["aws"]["can_receive_aws_grants"] is False
    assert created["aws"]["reason"] == "no_identity_store_user"
    assert "cannot receive AWS grants" in created["aws"]["detail"]
    assert api.client.post("/api/v1/users", json=body, headers=admin).status_code == 409
    r = api.client.patch(
        f"/api/v1/users/{created['id']}", json={"role": "admin", "active": False}, headers=admin
    )
    assert (r.json()["role"], r.json()["active"]) == ("admin", False)
    assert api.client.get("/api/v1/users/nope", headers=admin).status_code == 404
    r = api.client.patch(f"/api/v1/users/{created['id']}", json={"role": "root"}, headers=admin)
    assert r.status_code == 422


def test_mapped_user_can_receive_grants_through_the_api(api: Api) -> None:
    from grantflow.store.db import build_engine, session_factory

    engine = build_engine(api.settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            identity_store.apply_identity_store_snapshot(session, _snapshot([ALICE], []), ACTOR)
            alice = directory.user_by_username(session, "alice")
            assert alice is not None
            alice_id = alice.id
    finally:
        engine.dispose()
    got = api.client.get(f"/api/v1/users/{alice_id}", headers=api.as_admin()).json()
    assert got["aws"] == {
        "can_receive_aws_grants": True, "reason": None, "detail": None,
        "principals": [{"identity_store_id": "d-123", "principal_id": "is-alice",
                        "matched_by": "owner", "active": True, "reason": None, "detail": None}],
    }  # fmt: skip
    listed = api.client.get("/api/v1/users", headers=api.as_admin()).json()["items"]
    assert [(u["username"], u["directory"], u["principals"]) for u in listed
            if u["username"] == "alice"] == [
        ("alice", "d-123", [{"identity_store_id": "d-123", "principal_id": "is-alice",
                             "active": True}]),
    ]  # fmt: skip
    assert got["attributes"] == {"department": "Platform"}


def _store(
    store: str, users: list[DirectoryUser], groups: list[DirectoryGroup]
) -> DirectorySnapshot:
    return DirectorySnapshot(
        identity_store_id=store, instance_arn=f"arn:aws:sso:::instance/{store}",
        users=users, groups=groups,
    )  # fmt: skip


def _scoped(session: Session) -> set[tuple[Any, ...]]:
    names = {u.id: u.username for u in session.scalars(select(User))}
    principals = {
        ("principal", p.identity_store_id, p.principal_id, names.get(p.user_id or ""))
        for p in session.scalars(select(DirectoryPrincipal))
    }
    users = {
        ("user", u.username, u.active, u.directory)
        for u in session.scalars(select(User).where(User.username != "admin"))
    }
    groups = {g.id: g for g in session.scalars(select(Group))}
    members = {
        ("member", groups[m.group_id].directory, groups[m.group_id].name, names[m.user_id])
        for m in session.scalars(select(GroupMembership))
    }
    return principals | users | members


def test_two_identity_stores_never_touch_each_other(sessions: sessionmaker[Session]) -> None:
    a_users = [ALICE, BOB]
    b_alice = ALICE.model_copy(update={"identity_store_user_id": "b-alice", "display_name": "A2"})
    b_carol = DirectoryUser(identity_store_user_id="b-carol", username="carol")
    b_admins = DirectoryGroup(
        identity_store_group_id="b-g1", name="Admins", member_user_ids=["b-carol"]
    )
    with transaction(sessions) as session:
        identity_store.apply_identity_store_snapshot(
            session, _store("d-a", a_users, [ADMINS]), ACTOR
        )
        identity_store.apply_identity_store_snapshot(
            session, _store("d-b", [b_alice, b_carol], [b_admins]), ACTOR
        )
        both = _scoped(session)
    assert both == {
        ("principal", "d-a", "is-alice", "alice"), ("principal", "d-a", "is-bob", "bob.smith"),
        ("principal", "d-b", "b-alice", "alice"), ("principal", "d-b", "b-carol", "carol"),
        ("user", "alice", True, "d-a"), ("user", "bob.smith", True, "d-a"),
        ("user", "carol", True, "d-b"),
        ("member", "d-a", "Admins", "alice"), ("member", "d-a", "Admins", "bob.smith"),
        ("member", "d-b", "Admins", "carol"),
    }  # fmt: skip
    with transaction(sessions) as session:  # B's alice leaves B: A's alice stays as she was
        identity_store.apply_identity_store_snapshot(
            session, _store("d-b", [b_carol], [b_admins]), ACTOR
        )
        assert _scoped(session) == both - {("principal", "d-b", "b-alice", "alice")}
        alice = directory.user_by_username(session, "alice")
        assert alice is not None and alice.display_name == "Alice"  # B never renamed her


def test_legacy_identity_center_rows_are_adopted_by_their_store(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:  # as migration 0008 left them with 2+ stores
        session.add(User(username="alice", source="identity_center", directory=""))
        session.add(Group(name="Admins", source="identity_center", directory="",
                          identity_store_group_id="is-g1"))  # fmt: skip
    with transaction(sessions) as session:
        result = identity_store.apply_identity_store_snapshot(
            session, _store("d-a", [ALICE], [ADMINS]), ACTOR
        )
        assert (result.users_created, result.groups_created) == (0, 0)
        assert {(u.username, u.directory) for u in session.scalars(select(User))} >= {
            ("alice", "d-a")
        }
        assert [(g.name, g.directory) for g in session.scalars(select(Group))] == [
            ("Admins", "d-a")
        ]


def test_owner_group_names_resolve_in_the_integration_store(
    sessions: sessionmaker[Session],
) -> None:
    from grantflow.services.identity import owners

    b_admins = DirectoryGroup(identity_store_group_id="b-g1", name="Admins")
    with transaction(sessions) as session:
        identity_store.apply_identity_store_snapshot(session, _store("d-a", [], [ADMINS]), ACTOR)
        identity_store.apply_identity_store_snapshot(session, _store("d-b", [], [b_admins]), ACTOR)
        local = Group(name="oncall", source="local")
        session.add(local)
        session.flush()
        ids = {
            g.directory: g.id for g in session.scalars(select(Group).where(Group.name == "Admins"))
        }
        assert owners.group_named(session, "admins", "d-a") == ids["d-a"]
        assert owners.group_named(session, "Admins", "d-b") == ids["d-b"]
        assert owners.group_named(session, "Admins", None) is None  # no store: local only
        assert owners.group_named(session, "oncall", "d-b") == local.id
        assert owners.group_named(session, "Admins", "d-c") is None


def test_flows_as_code_name_groups_of_the_integrations_store(
    sessions: sessionmaker[Session],
) -> None:
    from grantflow.services.access import flows_as_code
    from grantflow.store.models import AccessFlow, Connector, Integration

    b_admins = DirectoryGroup(identity_store_group_id="b-g1", name="Admins")
    with transaction(sessions) as session:
        identity_store.apply_identity_store_snapshot(session, _store("d-a", [], [ADMINS]), ACTOR)
        identity_store.apply_identity_store_snapshot(session, _store("d-b", [], [b_admins]), ACTOR)
        session.add(Connector(id="gfc-fac", name="c", kind="managed", token_hash="f" * 64,
                              token_prefix="f"))  # fmt: skip
        session.flush()
        for org in ("a", "b"):
            session.add(Integration(name=f"Org {org}", type="aws-organization",
                                    connector_id="gfc-fac", resource_types=["aws-account"],
                                    facts={"identity_store_id": f"d-{org}"}))  # fmt: skip
        session.flush()
        doc = flows_as_code.FlowsDoc(flows=[
            flows_as_code.FlowDoc(name=f"admins of {org}", integration=f"Org {org}", definition={
                "requestors": {"group_ids": ["Admins"]},
                "scope": {"resource_types": ["aws-account"], "mode": "all"},
                "permissions": {"aws-account": ["ReadOnlyAccess"]}, "approval": {"mode": "auto"},
            }) for org in ("a", "b")
        ])  # fmt: skip
        flows_as_code.apply(session, doc, ACTOR, dry_run=False)
        stores = {g.id: g.directory for g in session.scalars(select(Group))}
        named = {
            f.name: [stores[g] for g in f.definition["requestors"]["group_ids"]]
            for f in session.scalars(select(AccessFlow))
        }
    assert named == {"admins of a": ["d-a"], "admins of b": ["d-b"]}


def test_an_ambiguous_principal_links_to_nobody_and_makes_no_account(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        session.add_all([
            User(username="bob.one", email="bob@example.com", source="local"),
            User(username="bob.two", email="BOB@example.com", source="scim"),
        ])  # fmt: skip
    with transaction(sessions) as session:
        result = identity_store.apply_identity_store_snapshot(session, _snapshot([BOB], []), ACTOR)
        assert (result.users_created, result.links) == (0, {})
        assert {("principal", "d-123", "is-bob", None)} == {
            x for x in _scoped(session) if x[0] == "principal"
        }
        bob = directory.user_by_username(session, "bob.one")
        assert bob is not None
        (status,) = directory.mapping_status(session, bob)
        assert str(getattr(status.found, "reason", "")) == "principal_taken"
