"""A user's lifecycle: deactivate, reactivate, delete. Credentials die with their user.

- **Deactivation** (by an admin, over SCIM, or by the identity store sync) ends everything the
  user holds, at once and in the same transaction: every web session and API token is revoked
  (``revoked_at``), the CLI sign-ins (device authorizations) they approved but the CLI has not
  collected yet are denied, their open requests end and their live grants are revoked in AWS.
  The ``user.deactivated`` event carries the counts.
- **Reactivation** never revives a credential: a revoked token or session stays dead, and any
  still-live leftover (one minted while the deactivation was committing) is revoked too, so the
  person starts with a fresh sign-in.
- **An admin's deactivation wins** over every source: it sets ``disabled_by_admin``, and
  neither SCIM nor the sync may re-activate such a user (``user.reactivation_refused``, recorded
  once per source until something changes) until an admin reactivates, which clears the flag.
- **Deletion is final** (SCIM ``DELETE``): the row is deactivated and gets ``deleted_at``; its
  external sign-in identities are removed and its identity store principals unlinked, so a new
  person with the same name is a new row (``users.username`` is unique among live rows only)
  and can never inherit the old row, its tokens or its history. Deleted rows stay for history
  (requests, audit) but every lookup by name or email ignores them (``live_users``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from grantflow.services.access import revocation
from grantflow.services.audit import trail as audit
from grantflow.services.auth import sessions, tokens
from grantflow.services.errors import Conflict
from grantflow.store.models import AuditEvent, DirectoryPrincipal, User, UserIdentity
from grantflow.store.models_auth import DeviceAuthorization
from grantflow.store.types import utcnow

UNCOLLECTED_DEVICE_STATES = ("pending", "approved")
_ACTIVATION_EVENTS = ("user.deactivated", "user.reactivated", "user.reactivation_refused")


class Origin(StrEnum):
    """Who changes the user: an admin outranks the sources (SCIM, the identity store sync)."""

    ADMIN = "admin"
    SCIM = "scim"
    SYNC = "sync"


@dataclass(frozen=True, slots=True)
class Ended:
    """What a deactivation took away (the counts in its audit event)."""

    sessions: int = 0
    tokens: int = 0
    device_authorizations: int = 0
    requests: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)


# --- lookups ------------------------------------------------------------------------------


def live_users() -> Select[User]:
    """Users that are not deleted: every lookup by name or email starts here."""
    return select(User).where(User.deleted_at.is_(None))


def live_user_by_username(session: Session, username: str) -> User | None:
    """The live user with this username, compared case-insensitively."""
    return session.scalars(
        live_users().where(func.lower(User.username) == username.strip().lower()).limit(1)
    ).first()


# --- ending what a user holds -------------------------------------------------------------


def deny_device_authorizations(session: Session, user_id: str) -> int:
    """Deny the CLI sign-ins this user approved that the CLI has not collected a token for."""
    result = session.execute(
        update(DeviceAuthorization)
        .where(
            DeviceAuthorization.user_id == user_id,
            DeviceAuthorization.status.in_(UNCOLLECTED_DEVICE_STATES),
        )
        .values(status="denied", decided_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_credentials(session: Session, user_id: str) -> Ended:
    """Revoke every web session and API token, deny uncollected CLI sign-ins (not audited
    here: the caller records one event with the counts)."""
    return Ended(
        sessions=sessions.end_user_sessions(session, user_id),
        tokens=tokens.revoke_user_tokens(session, user_id),
        device_authorizations=deny_device_authorizations(session, user_id),
    )


def end_access(session: Session, user_id: str, actor: audit.Actor, reason: str) -> Ended:
    """Everything a deactivated user held ends: credentials, open requests, live grants."""
    ended = revoke_credentials(session, user_id)
    requests = revocation.revoke_user_grants(session, user_id, actor, reason)
    return Ended(ended.sessions, ended.tokens, ended.device_authorizations, requests)


# --- activation ---------------------------------------------------------------------------


def deactivate(
    session: Session, user: User, actor: audit.Actor, *, origin: Origin, reason: str
) -> bool:
    """Deactivate and end everything the user holds. An admin's deactivation also marks the
    user ``disabled_by_admin`` (even one a source had deactivated already). True when it
    changed anything."""
    by_admin = origin is Origin.ADMIN
    if not user.active and not (by_admin and not user.disabled_by_admin):
        return False
    was_active = user.active
    user.active = False
    user.disabled_by_admin = user.disabled_by_admin or by_admin
    session.flush()
    ended = end_access(session, user.id, actor, "user deactivated")
    data = {"reason": reason, "origin": origin.value, "by_admin": by_admin, **ended.counts()}
    if not was_active:
        data["was_inactive"] = True
    audit.record(session, actor, "user.deactivated", "user", user.id, data)
    return True


def _refuse(session: Session, user: User, actor: audit.Actor, origin: Origin, why: str) -> None:
    """Audit a source's refused re-activation, once: a sync that repeats every few minutes
    records it only if something happened to the user's activation since."""
    last = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.target_type == "user",
            AuditEvent.target_id == user.id,
            AuditEvent.action.in_(_ACTIVATION_EVENTS),
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if (
        last is not None
        and last.action == "user.reactivation_refused"
        and last.data.get("origin") == origin.value
    ):
        return
    audit.record(
        session, actor, "user.reactivation_refused", "user", user.id,
        {"origin": origin.value, "reason": why},
    )  # fmt: skip


def reactivate(
    session: Session, user: User, actor: audit.Actor, *, origin: Origin, reason: str
) -> bool:
    """Activate again. A source may not re-activate a user an admin deactivated (refused and
    audited, the user stays inactive); an admin may, which clears ``disabled_by_admin``.
    A deleted user is never reactivated. True when the user is now active and was not."""
    by_admin = origin is Origin.ADMIN
    if user.deleted_at is not None:
        if by_admin:
            raise Conflict("this user was deleted and cannot be reactivated", field="active")
        return False
    if user.disabled_by_admin and not by_admin:
        _refuse(session, user, actor, origin, "deactivated by an admin")
        return False
    if user.active:
        return False
    leftovers = revoke_credentials(session, user.id)
    user.active = True
    user.disabled_by_admin = False
    session.flush()
    data: dict[str, object] = {"reason": reason, "origin": origin.value}
    if any(leftovers.counts().values()):
        data["revoked_leftovers"] = leftovers.counts()
    audit.record(session, actor, "user.reactivated", "user", user.id, data)
    return True


def set_active(
    session: Session,
    user: User,
    active: bool,
    actor: audit.Actor,
    *,
    origin: Origin,
    reason: str,
) -> bool:
    """``reactivate`` or ``deactivate``; True when the user's state changed."""
    change = reactivate if active else deactivate
    return change(session, user, actor, origin=origin, reason=reason)


# --- deletion -----------------------------------------------------------------------------


def delete_user(
    session: Session, user: User, actor: audit.Actor, *, origin: Origin, reason: str
) -> None:
    """Delete for good: deactivated (everything ends), ``deleted_at`` set, external identities
    removed and identity store principals unlinked. The row stays for history."""
    if user.deleted_at is not None:
        return
    deactivate(session, user, actor, origin=origin, reason=reason)
    user.deleted_at = utcnow()
    identities = session.execute(delete(UserIdentity).where(UserIdentity.user_id == user.id))
    principals = session.execute(
        update(DirectoryPrincipal)
        .where(DirectoryPrincipal.user_id == user.id)
        .values(user_id=None, matched_by=None)
    )
    session.flush()
    audit.record(
        session, actor, "user.deleted", "user", user.id,
        {
            "origin": origin.value,
            "reason": reason,
            "username": user.username,
            "identities_removed": int(getattr(identities, "rowcount", 0) or 0),
            "principals_unlinked": int(getattr(principals, "rowcount", 0) or 0),
        },
    )  # fmt: skip
