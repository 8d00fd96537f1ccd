"""External sign-in identities bound to users, by (issuer, subject) and never by a name.

A binding is made on a first OIDC sign-in by verified email (``verified_email``), when
auto-create makes the user (``created``), or by an admin (``admin``); only an admin removes
one. Each is audited (``user.identity_linked`` / ``user.identity_unlinked``) with the issuer
and subject. Unlinking also ends the user's single sign-on web sessions, so an identity that
was linked by mistake (or taken over at the issuer) stops working at once.
"""

from __future__ import annotations

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, NotFound
from grantflow.store.models import User, UserIdentity
from grantflow.store.models_auth import WebSession
from grantflow.store.types import utcnow

LINKED_BY_EMAIL = "verified_email"
LINKED_BY_CREATION = "created"
LINKED_BY_ADMIN = "admin"


def find(session: Session, issuer: str, subject: str) -> UserIdentity | None:
    return session.scalar(
        select(UserIdentity).where(UserIdentity.issuer == issuer, UserIdentity.subject == subject)
    )


def of_user(session: Session, user_id: str) -> list[UserIdentity]:
    return list(
        session.scalars(
            select(UserIdentity)
            .where(UserIdentity.user_id == user_id)
            .order_by(UserIdentity.issuer, UserIdentity.created_at)
        ).all()
    )


def has_issuer(session: Session, user_id: str, issuer: str) -> bool:
    return bool(
        session.scalar(
            select(exists().where(UserIdentity.user_id == user_id, UserIdentity.issuer == issuer))
        )
    )


def bind(
    session: Session,
    user: User,
    issuer: str,
    subject: str,
    email: str | None,
    linked_by: str,
    actor: audit.Actor,
) -> UserIdentity:
    """Bind (issuer, subject) to ``user``. ``Conflict`` when either side is bound already
    (also when a concurrent sign-in bound it a moment ago: the unique constraints decide)."""
    row = UserIdentity(
        user_id=user.id, issuer=issuer, subject=subject, email=email, linked_by=linked_by
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as err:
        raise Conflict(
            "this identity, or another identity of the same issuer for this user, is "
            "linked already",
            field="subject",
        ) from err
    audit.record(
        session,
        actor,
        "user.identity_linked",
        "user",
        user.id,
        {"issuer": issuer, "sub": subject, "linked_by": linked_by, "identity_id": row.id},
    )
    return row


def admin_link(
    session: Session,
    user_id: str,
    issuer: str,
    subject: str,
    email: str | None,
    actor: audit.Actor,
) -> UserIdentity:
    """An admin binds an identity to a user: the only way to link the bootstrap admin, an
    admin or a user with a local password, or to bind a user whose email the issuer does not
    verify."""
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("no such user")
    taken = find(session, issuer, subject)
    if taken is not None:
        whose = "this user" if taken.user_id == user_id else f"user {taken.user_id}"
        raise Conflict(f"this identity is linked to {whose} already", field="subject")
    if has_issuer(session, user_id, issuer):
        raise Conflict(
            "the user has an identity of this issuer already: unlink it first", field="issuer"
        )
    return bind(session, user, issuer, subject, email, LINKED_BY_ADMIN, actor)


def unlink(session: Session, user_id: str, identity_id: str, actor: audit.Actor) -> int:
    """Remove a binding and end the user's single sign-on sessions; returns how many ended."""
    row = session.get(UserIdentity, identity_id)
    if row is None or row.user_id != user_id:
        raise NotFound("no such identity for this user")
    issuer, subject = row.issuer, row.subject
    session.delete(row)
    ended = session.execute(
        update(WebSession)
        .where(
            WebSession.user_id == user_id,
            WebSession.auth_method == "oidc",
            WebSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    count = int(getattr(ended, "rowcount", 0) or 0)
    audit.record(
        session,
        actor,
        "user.identity_unlinked",
        "user",
        user_id,
        {"issuer": issuer, "sub": subject, "identity_id": identity_id, "sessions_ended": count},
    )
    return count
