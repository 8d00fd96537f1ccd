"""The directory: users, groups and memberships from their sources (scim, identity_center, local).

- ``apply_identity_store_snapshot`` upserts what the connector read from the Identity Center
  identity store. It owns rows of source ``identity_center`` only: a user or group of another
  source with the same name just gets the identity store id (usernames and group names are
  unique). Identity-center users that disappeared, or are inactive there, are deactivated;
  identity-center groups that disappeared are deleted.
- ``refresh_identity_mapping`` maps users of the other sources to identity store users
  (``domain.identity_matching``: username, then email) and clears stale mappings.
- Local users have an argon2 password.

Every change is audited; applying the same snapshot twice changes nothing and records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from grantflow.domain.authz import Role
from grantflow.domain.identity_matching import (
    CannotReceiveGrants,
    GrantflowUser,
    IdentityStoreIndex,
    IdentityStoreUser,
    Matched,
    MatchedBy,
    MatchResult,
    match_user,
    match_users,
)
from grantflow.domain.inventory import DirectoryGroup, DirectorySnapshot, DirectoryUser
from grantflow.services import audit
from grantflow.services.errors import Conflict, Invalid, NotFound
from grantflow.store.models import Group, GroupMembership, User

IDENTITY_CENTER = "identity_center"
LOCAL = "local"
SCIM = "scim"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


@dataclass
class SnapshotResult:
    users_created: int = 0
    users_updated: int = 0
    users_deactivated: int = 0
    groups_created: int = 0
    groups_updated: int = 0
    groups_deleted: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0
    mapping: dict[str, MatchResult] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        counts = (v for k, v in vars(self).items() if k != "mapping")
        return any(counts)


def user_by_username(session: Session, username: str) -> User | None:
    """The user with this username, compared case-insensitively."""
    return session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower()).limit(1)
    ).first()


def group_by_name(session: Session, name: str) -> Group | None:
    return session.scalars(
        select(Group).where(func.lower(Group.name) == name.strip().lower()).limit(1)
    ).first()


# --- deactivation -------------------------------------------------------------------------


def on_user_deactivated(session: Session, user_id: str, actor: audit.Actor) -> None:
    """Run once a user has been deactivated (SCIM ``active=false``, removal, sync): their
    pending requests end and their live grants are revoked in AWS."""
    from grantflow.services.revocation import revoke_user_grants
    from grantflow.services.sessions import end_user_sessions

    end_user_sessions(session, user_id)
    revoke_user_grants(session, user_id, actor, "user deactivated")


def set_user_active(
    session: Session, user: User, active: bool, actor: audit.Actor, reason: str
) -> bool:
    """Activate or deactivate; audited; runs ``on_user_deactivated``. True when it changed."""
    if user.active == active:
        return False
    user.active = active
    session.flush()
    action = "user.reactivated" if active else "user.deactivated"
    audit.record(session, actor, action, "user", user.id, {"reason": reason})
    if not active:
        on_user_deactivated(session, user.id, actor)
    return True


# --- identity store snapshot --------------------------------------------------------------


def _apply_user(
    session: Session, item: DirectoryUser, actor: audit.Actor, result: SnapshotResult
) -> User:
    row = session.scalars(
        select(User).where(User.identity_store_user_id == item.identity_store_user_id).limit(1)
    ).first() or user_by_username(session, item.username)
    created = row is None
    if row is None:
        row = User(
            username=item.username, source=IDENTITY_CENTER, role=Role.MEMBER.value, active=True
        )
        session.add(row)
    if row.source != IDENTITY_CENTER:  # owned by SCIM or local: only record the mapping
        if row.identity_store_user_id != item.identity_store_user_id:
            _set_mapping(session, row, item.identity_store_user_id, actor)
        return row
    wanted = {
        "username": item.username,
        "email": item.email,
        "display_name": item.display_name,
        "identity_store_user_id": item.identity_store_user_id,
        "attributes": dict(item.attributes),
    }
    changed = sorted(k for k, v in wanted.items() if getattr(row, k) != v)
    for key in changed:
        setattr(row, key, wanted[key])
    session.flush()
    if created:
        result.users_created += 1
        audit.record(session, actor, "user.created", "user", row.id, {"source": IDENTITY_CENTER})
    elif changed:
        result.users_updated += 1
        audit.record(session, actor, "user.updated", "user", row.id, {"fields": changed})
    reason = "active in the identity store" if item.active else "inactive in the identity store"
    if set_user_active(session, row, item.active, actor, reason) and not item.active:
        result.users_deactivated += 1
    return row


def _apply_group(
    session: Session,
    item: DirectoryGroup,
    user_ids: dict[str, str],
    actor: audit.Actor,
    result: SnapshotResult,
) -> Group:
    row = session.scalars(
        select(Group).where(Group.identity_store_group_id == item.identity_store_group_id).limit(1)
    ).first() or group_by_name(session, item.name)
    if row is None:
        row = Group(name=item.name, description=item.description, source=IDENTITY_CENTER)
        row.identity_store_group_id = item.identity_store_group_id
        session.add(row)
        session.flush()
        result.groups_created += 1
        audit.record(session, actor, "group.created", "group", row.id, {"source": IDENTITY_CENTER})
    if row.source != IDENTITY_CENTER:
        if row.identity_store_group_id != item.identity_store_group_id:
            row.identity_store_group_id = item.identity_store_group_id
            audit.record(session, actor, "group.identity_mapped", "group", row.id)
        return row
    wanted = {
        "name": item.name,
        "description": item.description,
        "identity_store_group_id": item.identity_store_group_id,
    }
    changed = sorted(k for k, v in wanted.items() if getattr(row, k) != v)
    for key in changed:
        setattr(row, key, wanted[key])
    if changed:
        result.groups_updated += 1
        audit.record(session, actor, "group.updated", "group", row.id, {"fields": changed})
    members = {user_ids[m] for m in item.member_user_ids if m in user_ids}
    _reconcile_members(session, row, members, IDENTITY_CENTER, actor, result)
    return row


def _reconcile_members(
    session: Session,
    group: Group,
    wanted: set[str],
    source: str,
    actor: audit.Actor,
    result: SnapshotResult | None = None,
) -> None:
    current = set(
        session.scalars(select(GroupMembership.user_id).where(GroupMembership.group_id == group.id))
    )
    for user_id in sorted(wanted - current):
        session.add(GroupMembership(group_id=group.id, user_id=user_id, source=source))
        audit.record(session, actor, "group.member_added", "group", group.id, {"user_id": user_id})
    for user_id in sorted(current - wanted):
        session.execute(
            delete(GroupMembership).where(
                GroupMembership.group_id == group.id, GroupMembership.user_id == user_id
            )
        )
        audit.record(
            session, actor, "group.member_removed", "group", group.id, {"user_id": user_id}
        )
    session.flush()
    if result is not None:
        result.memberships_added += len(wanted - current)
        result.memberships_removed += len(current - wanted)


def set_group_members(
    session: Session, group: Group, user_ids: Iterable[str], source: str, actor: audit.Actor
) -> None:
    """Make ``user_ids`` exactly the members of ``group`` (audited per change)."""
    _reconcile_members(session, group, set(user_ids), source, actor)


def _retire_missing(
    session: Session,
    snapshot: DirectorySnapshot,
    actor: audit.Actor,
    result: SnapshotResult,
) -> None:
    seen_users = {u.identity_store_user_id for u in snapshot.users}
    for row in session.scalars(select(User).where(User.source == IDENTITY_CENTER)):
        if row.identity_store_user_id not in seen_users and set_user_active(
            session, row, False, actor, "removed from the identity store"
        ):
            result.users_deactivated += 1
    seen_groups = {g.identity_store_group_id for g in snapshot.groups}
    for group in session.scalars(select(Group).where(Group.source == IDENTITY_CENTER)).all():
        if group.identity_store_group_id not in seen_groups:
            audit.record(session, actor, "group.deleted", "group", group.id, {"name": group.name})
            session.delete(group)
            result.groups_deleted += 1
    session.flush()


def apply_identity_store_snapshot(
    session: Session, snapshot: DirectorySnapshot, actor: audit.Actor
) -> SnapshotResult:
    """Upsert the identity store's users, groups and memberships; idempotent."""
    result = SnapshotResult()
    user_ids: dict[str, str] = {}
    for item in snapshot.users:
        user_ids[item.identity_store_user_id] = _apply_user(session, item, actor, result).id
    for group in snapshot.groups:
        _apply_group(session, group, user_ids, actor, result)
    _retire_missing(session, snapshot, actor, result)
    store_users = [
        IdentityStoreUser(u.identity_store_user_id, u.username, u.email) for u in snapshot.users
    ]
    result.mapping = refresh_identity_mapping(session, actor, store_users)
    if result.changed:
        counts = {k: v for k, v in vars(result).items() if k != "mapping" and v}
        audit.record(
            session, actor, "directory.identity_store_applied", "identity_store",
            snapshot.identity_store_id, counts,
        )  # fmt: skip
    return result


# --- identity mapping ---------------------------------------------------------------------


def _set_mapping(session: Session, user: User, store_id: str | None, actor: audit.Actor) -> None:
    previous = user.identity_store_user_id
    user.identity_store_user_id = store_id
    action = "user.identity_mapped" if store_id else "user.identity_unmapped"
    audit.record(session, actor, action, "user", user.id, {"previous": previous, "now": store_id})


def identity_store_users(session: Session) -> list[IdentityStoreUser]:
    """The identity store users known from the last snapshot (identity_center rows)."""
    rows = session.scalars(
        select(User).where(User.source == IDENTITY_CENTER, User.identity_store_user_id.is_not(None))
    )
    return [IdentityStoreUser(r.identity_store_user_id or "", r.username, r.email) for r in rows]


def refresh_identity_mapping(
    session: Session,
    actor: audit.Actor = audit.SYSTEM,
    store_users: Sequence[IdentityStoreUser] | None = None,
) -> dict[str, MatchResult]:
    """Set ``identity_store_user_id`` of SCIM and local users from the identity store users.

    ``store_users`` defaults to the identity_center users in the table.
    """
    known = identity_store_users(session) if store_users is None else list(store_users)
    rows = session.scalars(select(User).where(User.source != IDENTITY_CENTER)).all()
    users = [GrantflowUser(r.id, r.username, r.email) for r in rows]
    results = match_users(users, known)
    for row in rows:
        found = results[row.id]
        wanted = found.identity_store_user_id if isinstance(found, Matched) else None
        if row.identity_store_user_id != wanted:
            _set_mapping(session, row, wanted, actor)
    session.flush()
    return results


def refresh_user_mapping(session: Session, user: User, actor: audit.Actor) -> MatchResult:
    """Map one non-identity_center user (after SCIM or an admin changed it)."""
    index = IdentityStoreIndex.build(identity_store_users(session))
    found = match_user(GrantflowUser(user.id, user.username, user.email), index)
    wanted = found.identity_store_user_id if isinstance(found, Matched) else None
    if user.source != IDENTITY_CENTER and user.identity_store_user_id != wanted:
        _set_mapping(session, user, wanted, actor)
    return found


def mapping_status(session: Session, user: User) -> MatchResult:
    """Whether ``user`` can receive AWS grants: its identity store user, or the reason not."""
    if user.source == IDENTITY_CENTER and user.identity_store_user_id:
        return Matched(user.id, user.identity_store_user_id, MatchedBy.USERNAME)
    index = IdentityStoreIndex.build(identity_store_users(session))
    found = match_user(GrantflowUser(user.id, user.username, user.email), index)
    if isinstance(found, CannotReceiveGrants) and user.identity_store_user_id:
        # mapped by a snapshot to a user whose row belongs to another source
        return Matched(user.id, user.identity_store_user_id, MatchedBy.USERNAME)
    return found


# --- local users and admin changes --------------------------------------------------------


def _check_role(role: str) -> str:
    if role not in {r.value for r in Role}:
        raise Invalid(f"role must be one of: {', '.join(r.value for r in Role)}", field="role")
    return role


def create_local_user(
    session: Session,
    username: str,
    email: str | None,
    display_name: str,
    password: str,
    role: str,
    actor: audit.Actor,
) -> User:
    """A user who signs in with a password (hashed with argon2id)."""
    username = username.strip()
    if not username:
        raise Invalid("username must not be empty", field="username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if user_by_username(session, username) is not None:
        raise Conflict(f"a user named {username!r} already exists", field="username")
    user = User(
        username=username,
        email=email,
        display_name=display_name,
        role=_check_role(role),
        source=LOCAL,
        password_hash=_hasher.hash(password),
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user.created", "user", user.id, {"source": LOCAL, "role": role})
    refresh_identity_mapping(session, actor)
    return user


def verify_password(user: User, password: str) -> bool:
    """True only for an active user with a password that matches."""
    if not user.active or not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def update_user(
    session: Session, user_id: str, role: str | None, active: bool | None, actor: audit.Actor
) -> User:
    """An admin changes a user's role and/or active flag."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    if role is not None and role != user.role:
        previous, user.role = user.role, _check_role(role)
        audit.record(
            session, actor, "user.role_changed", "user", user.id, {"from": previous, "to": role}
        )
    if active is not None:
        set_user_active(session, user, active, actor, "changed by an admin")
    session.flush()
    return user


def groups_of(session: Session, user_id: str) -> list[Group]:
    return list(
        session.scalars(
            select(Group)
            .join(GroupMembership, GroupMembership.group_id == Group.id)
            .where(GroupMembership.user_id == user_id)
            .order_by(Group.name)
        )
    )
