"""The directory: users, groups and memberships from their sources (scim, identity_center, local).

- What an Identity Center identity store holds is applied by ``services.identity_store``,
  within that store only; which principal of each store a user is lives in
  ``directory_principals`` (``services.principals``), relinked here when a user changes.
- Groups are unique by name within their directory ("" for local and SCIM groups).
- Local users have an argon2 password.

Every change is audited; applying the same snapshot twice changes nothing and records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from grantflow.domain.authz import Role
from grantflow.domain.identity_matching import MatchResult
from grantflow.services.audit import trail as audit
from grantflow.services.directory import user_lifecycle
from grantflow.services.errors import Conflict, Invalid, NotFound
from grantflow.services.identity import principals
from grantflow.store.models import Group, GroupMembership, User

IDENTITY_CENTER = "identity_center"
LOCAL = "local"
SCIM = "scim"
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


def user_by_username(session: Session, username: str) -> User | None:
    """The live (not deleted) user with this username, compared case-insensitively."""
    return session.scalars(
        select(User)
        .where(User.deleted_at.is_(None), func.lower(User.username) == username.strip().lower())
        .limit(1)
    ).first()


def group_by_name(session: Session, name: str, directory: str = "") -> Group | None:
    """The group of ``directory`` ("" for local and SCIM groups, else an identity store id)
    with this name, compared case-insensitively."""
    return session.scalars(
        select(Group)
        .where(Group.directory == directory, func.lower(Group.name) == name.strip().lower())
        .limit(1)
    ).first()


# --- deactivation -------------------------------------------------------------------------


def on_user_deactivated(session: Session, user_id: str, actor: audit.Actor) -> None:
    """End everything a deactivated user holds (``user_lifecycle.end_access``): web sessions,
    API tokens, uncollected CLI sign-ins, open requests and live grants."""
    user_lifecycle.end_access(session, user_id, actor, "user deactivated")


def set_user_active(
    session: Session, user: User, active: bool, actor: audit.Actor, reason: str
) -> bool:
    """A source (the identity store sync) activates or deactivates a user, through
    ``user_lifecycle``: deactivating ends every credential; a user an admin deactivated stays
    inactive. Audited. True when it changed."""
    return user_lifecycle.set_active(
        session, user, active, actor, origin=user_lifecycle.Origin.SYNC, reason=reason
    )


# --- memberships ---------------------------------------------------------------------------


def reconcile_members(
    session: Session, group: Group, wanted: set[str], source: str, actor: audit.Actor
) -> tuple[int, int]:
    """Make ``wanted`` exactly the members of ``group`` (audited per change): (added, removed)."""
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
    return len(wanted - current), len(current - wanted)


def set_group_members(
    session: Session, group: Group, user_ids: Iterable[str], source: str, actor: audit.Actor
) -> None:
    """Make ``user_ids`` exactly the members of ``group`` (audited per change)."""
    reconcile_members(session, group, set(user_ids), source, actor)


# --- identity mapping ---------------------------------------------------------------------


def refresh_user_mapping(session: Session, user: User, actor: audit.Actor) -> None:
    """Relink the identity store principals after a user was created or changed (SCIM, an
    admin): its name or email may now match, or stop matching, a principal."""
    principals.relink_all(session, actor)


@dataclass(frozen=True)
class StoreMapping:
    """A user's principal in one identity store, or why it has none."""

    identity_store_id: str
    found: MatchResult
    active: bool


def mapping_status(session: Session, user: User) -> list[StoreMapping]:
    """Whether ``user`` can receive AWS grants, store by store."""
    result: list[StoreMapping] = []
    for store in principals.stores(session):
        found = principals.mapping_in(session, user, store)
        row = principals.principal_in(session, user.id, store)
        result.append(StoreMapping(store, found, row is not None and row.active))
    return result


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
    principals.relink_all(session, actor)
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
    """An admin changes a user's role and/or active flag. An admin's deactivation ends every
    credential and wins over SCIM and the sync until an admin reactivates
    (``user_lifecycle``); a deleted user cannot be changed."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    if user.deleted_at is not None:
        raise Conflict("this user was deleted; it stays only for history", field="user_id")
    if role is not None and role != user.role:
        previous, user.role = user.role, _check_role(role)
        audit.record(
            session, actor, "user.role_changed", "user", user.id, {"from": previous, "to": role}
        )
    if active is not None:
        user_lifecycle.set_active(
            session, user, active, actor, origin=user_lifecycle.Origin.ADMIN,
            reason="changed by an admin",
        )  # fmt: skip
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
