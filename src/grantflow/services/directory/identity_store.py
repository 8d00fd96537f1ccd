"""Apply what the connector read from one Identity Center identity store.

Everything here stays within ``snapshot.identity_store_id``; two organizations never touch
each other's identities:

- its users become ``directory_principals`` rows of that store, each linked to the Grantflow
  user it is (``principals.relink_store``); a Grantflow user is created (source
  ``identity_center``, ``directory`` = the store) only for a principal no user matches;
- only users the store created are updated from it, and deactivated when they disappear or
  are inactive there; a user of another source or another store is never renamed or retired;
- its groups are the groups of ``directory`` = the store (a legacy identity_center group of no
  directory with the same group id is adopted); their members are the users linked to the
  store's own principals; its groups that disappeared are deleted.

Every change is audited; applying the same snapshot twice changes nothing and records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from grantflow.domain.authz import Role
from grantflow.domain.identity_matching import Matched, MatchedBy
from grantflow.domain.inventory import DirectoryGroup, DirectorySnapshot, DirectoryUser
from grantflow.services.audit import trail as audit
from grantflow.services.directory import people as directory
from grantflow.services.identity import principals
from grantflow.store.models import DirectoryPrincipal, Group, User

IDENTITY_CENTER = directory.IDENTITY_CENTER


@dataclass
class SnapshotResult:
    users_created: int = 0
    users_updated: int = 0
    users_deactivated: int = 0
    principals_added: int = 0
    principals_updated: int = 0
    principals_removed: int = 0
    groups_created: int = 0
    groups_updated: int = 0
    groups_deleted: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0
    links: dict[str, Matched] = field(default_factory=dict)  # principal id -> user

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "links" and v}

    @property
    def changed(self) -> bool:
        return bool(self.counts())


# --- principals ---------------------------------------------------------------------------


def _upsert_principals(
    session: Session, snapshot: DirectorySnapshot, result: SnapshotResult
) -> dict[str, DirectoryPrincipal]:
    store = snapshot.identity_store_id
    rows = {r.principal_id: r for r in principals.store_principals(session, store)}
    for item in snapshot.users:
        row = rows.get(item.identity_store_user_id)
        new = row is None
        if row is None:
            row = DirectoryPrincipal(
                identity_store_id=store, principal_id=item.identity_store_user_id
            )
            session.add(row)
            rows[row.principal_id] = row
            result.principals_added += 1
        wanted = {
            "user_name": item.username,
            "email": item.email,
            "display_name": item.display_name,
            "active": item.active,
        }
        changed = [k for k, v in wanted.items() if getattr(row, k, None) != v]
        for key in changed:
            setattr(row, key, wanted[key])
        if changed and not new:
            result.principals_updated += 1
    seen = {u.identity_store_user_id for u in snapshot.users}
    for pid in sorted(set(rows) - seen):
        session.delete(rows.pop(pid))
        result.principals_removed += 1
    session.flush()
    return rows


def _matched_by_someone(session: Session, item: DirectoryUser) -> bool:
    if directory.user_by_username(session, item.username) is not None:
        return True
    email = (item.email or "").strip().lower()
    if not email:
        return False
    same_email = select(User.id).where(User.deleted_at.is_(None), func.lower(User.email) == email)
    return session.scalar(same_email.limit(1)) is not None


def _create_missing_users(
    session: Session,
    snapshot: DirectorySnapshot,
    links: dict[str, Matched],
    actor: audit.Actor,
    result: SnapshotResult,
) -> bool:
    """A Grantflow user for each principal that no user matches: none has its username or its
    email (a principal that several users match, or that another principal's user matches,
    stays unlinked rather than become another account of the same person)."""
    created = False
    for item in snapshot.users:
        pid = item.identity_store_user_id
        if pid in links or _matched_by_someone(session, item):
            continue
        user = User(
            username=item.username,
            source=IDENTITY_CENTER,
            role=Role.MEMBER.value,
            active=item.active,
            directory=snapshot.identity_store_id,
            email=item.email,
            display_name=item.display_name,
            attributes=dict(item.attributes),
        )
        session.add(user)
        session.flush()
        row = session.scalars(
            select(DirectoryPrincipal).where(
                DirectoryPrincipal.identity_store_id == snapshot.identity_store_id,
                DirectoryPrincipal.principal_id == pid,
            )
        ).one()
        row.user_id, row.matched_by = user.id, MatchedBy.OWNER.value
        session.flush()
        result.users_created += 1
        created = True
        audit.record(
            session,
            actor,
            "user.created",
            "user",
            user.id,
            {
                "source": IDENTITY_CENTER,
                "identity_store_id": snapshot.identity_store_id,
                "principal_id": pid,
            },
        )
    return created


def _apply(row: User | Group, wanted: dict[str, Any]) -> list[str]:
    """Set the fields of ``wanted`` that differ on ``row``; returns their names, sorted."""
    changed = sorted(k for k, v in wanted.items() if getattr(row, k) != v)
    for key in changed:
        setattr(row, key, wanted[key])
    return changed


def _update_owned_user(
    session: Session,
    user: User,
    item: DirectoryUser,
    actor: audit.Actor,
    result: SnapshotResult,
) -> None:
    wanted = {
        "username": item.username,
        "email": item.email,
        "display_name": item.display_name,
        "attributes": dict(item.attributes),
    }
    if user.username != item.username:
        taken = directory.user_by_username(session, item.username)
        if taken is not None and taken.id != user.id:
            del wanted["username"]  # another person has the name: keep ours
    changed = _apply(user, wanted)
    session.flush()
    if changed:
        result.users_updated += 1
        audit.record(session, actor, "user.updated", "user", user.id, {"fields": changed})
    reason = "active in the identity store" if item.active else "inactive in the identity store"
    if directory.set_user_active(session, user, item.active, actor, reason) and not item.active:
        result.users_deactivated += 1


def _apply_users(
    session: Session, snapshot: DirectorySnapshot, actor: audit.Actor, result: SnapshotResult
) -> dict[str, Matched]:
    store = snapshot.identity_store_id
    _upsert_principals(session, snapshot, result)
    links = principals.relink_store(session, store, actor)
    if _create_missing_users(session, snapshot, links, actor, result):
        links = principals.relink_store(session, store, actor)
    owners = {
        pid: link.user_id for pid, link in links.items() if link.matched_by is MatchedBy.OWNER
    }
    for item in snapshot.users:
        user = session.get(User, owners.get(item.identity_store_user_id, ""))
        if user is not None:
            _update_owned_user(session, user, item, actor, result)
    retired = session.scalars(
        select(User).where(
            User.source == IDENTITY_CENTER,
            User.directory == store,
            User.id.not_in(set(owners.values())),
        )
    )
    for user in retired.all():
        if directory.set_user_active(
            session, user, False, actor, "removed from the identity store"
        ):
            result.users_deactivated += 1
    return links


# --- groups -------------------------------------------------------------------------------


def _store_group(
    session: Session, store: str, item: DirectoryGroup, seen: set[str]
) -> Group | None:
    """This store's row for ``item``: by group id in the store's directory, a legacy row of no
    directory with that group id, or (a group re-created in AWS) the store's group of that
    name whose id the snapshot no longer has."""
    by_id = session.scalars(
        select(Group)
        .where(
            Group.source == IDENTITY_CENTER,
            Group.identity_store_group_id == item.identity_store_group_id,
            or_(Group.directory == store, Group.directory == ""),
        )
        .order_by(Group.directory.desc())
    ).first()
    if by_id is not None:
        return by_id
    by_name = session.scalars(
        select(Group).where(
            Group.directory == store, func.lower(Group.name) == item.name.strip().lower()
        )
    ).first()
    if by_name is not None and by_name.identity_store_group_id not in seen:
        return by_name
    return None


def _apply_group(
    session: Session,
    store: str,
    item: DirectoryGroup,
    seen: set[str],
    members_of: dict[str, str],
    actor: audit.Actor,
    result: SnapshotResult,
) -> None:
    row = _store_group(session, store, item, seen)
    if row is None:
        row = Group(
            name=item.name,
            description=item.description,
            source=IDENTITY_CENTER,
            directory=store,
            identity_store_group_id=item.identity_store_group_id,
        )
        session.add(row)
        session.flush()
        result.groups_created += 1
        audit.record(
            session,
            actor,
            "group.created",
            "group",
            row.id,
            {"source": IDENTITY_CENTER, "identity_store_id": store},
        )
    wanted = {
        "name": item.name,
        "description": item.description,
        "directory": store,
        "identity_store_group_id": item.identity_store_group_id,
    }
    changed = _apply(row, wanted)
    session.flush()
    if changed:
        result.groups_updated += 1
        audit.record(session, actor, "group.updated", "group", row.id, {"fields": changed})
    members = {members_of[m] for m in item.member_user_ids if m in members_of}
    before = (result.memberships_added, result.memberships_removed)
    added, removed = directory.reconcile_members(session, row, members, IDENTITY_CENTER, actor)
    result.memberships_added, result.memberships_removed = before[0] + added, before[1] + removed


def _apply_groups(
    session: Session,
    snapshot: DirectorySnapshot,
    links: dict[str, Matched],
    actor: audit.Actor,
    result: SnapshotResult,
) -> None:
    store = snapshot.identity_store_id
    seen = {g.identity_store_group_id for g in snapshot.groups}
    members_of = {pid: link.user_id for pid, link in links.items()}
    for group in session.scalars(select(Group).where(Group.directory == store)).all():
        if group.identity_store_group_id not in seen:
            audit.record(
                session,
                actor,
                "group.deleted",
                "group",
                group.id,
                {"name": group.name, "identity_store_id": store},
            )
            session.delete(group)
            result.groups_deleted += 1
    session.flush()
    for item in snapshot.groups:
        _apply_group(session, store, item, seen, members_of, actor, result)


def apply_identity_store_snapshot(
    session: Session, snapshot: DirectorySnapshot, actor: audit.Actor
) -> SnapshotResult:
    """Upsert one identity store's principals, users, groups and memberships; idempotent."""
    result = SnapshotResult()
    result.links = _apply_users(session, snapshot, actor, result)
    _apply_groups(session, snapshot, result.links, actor, result)
    if result.changed:
        audit.record(
            session,
            actor,
            "directory.identity_store_applied",
            "identity_store",
            snapshot.identity_store_id,
            result.counts(),
        )
    return result
