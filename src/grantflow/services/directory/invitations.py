"""Invitations: a one-time, expiring link that lets a directory user set a password.

An admin invites an existing, active user (``create``); the secret is stored only as its
SHA-256 (``domain.secrets.hash_token``) in ``api_tokens`` with kind ``invite``. That kind is
never a bearer credential: ``services.tokens.resolve_bearer`` accepts only the kinds in
``BEARER_KINDS``. A new invitation revokes the user's older ones; deactivating the user revokes
it with every other token. ``accept`` spends it once (a guarded UPDATE, so two concurrent uses
cannot both win), sets an argon2 password and returns the user to sign in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from grantflow.domain.secrets import hash_token, issue_token, token_matches
from grantflow.services.audit import trail as audit
from grantflow.services.auth import passwords
from grantflow.services.auth.tokens import store_token
from grantflow.services.directory.people import MIN_PASSWORD_LENGTH
from grantflow.services.errors import Conflict, Invalid, NotFound, ServiceError
from grantflow.store.models import ApiToken, User
from grantflow.store.types import utcnow

INVITE_KIND = "invite"
INVITE_PREFIX = "gf_inv"
INVITE_TTL = timedelta(hours=72)
PAGE_PATH = "/invite"


class InvitationRefused(ServiceError):
    """Unknown, spent, expired or revoked link, or a user who may no longer sign in: one
    answer for all, so the link's state reveals nothing about the user."""

    status = 400
    code = "invitation_invalid"


@dataclass(frozen=True, slots=True)
class NewInvitation:
    user_id: str
    email: str | None
    display_name: str
    plaintext: str
    expires_at: datetime

    def link(self, base_url: str) -> str:
        # The secret travels in the fragment: browsers never send it to a server (no access
        # log, no Referer); the page posts it in a JSON body.
        return f"{base_url.rstrip('/')}{PAGE_PATH}#{self.plaintext}"


def _revoke_open(session: Session, user_id: str) -> int:
    result = session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == user_id,
            ApiToken.kind == INVITE_KIND,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def create(session: Session, user_id: str, actor: audit.Actor) -> NewInvitation:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    if user.deleted_at is not None:
        raise Conflict("this user was deleted; it cannot be invited", field="user_id")
    if not user.active:
        raise Conflict("this user is deactivated; reactivate it first", field="user_id")
    revoked = _revoke_open(session, user.id)
    issued = issue_token(INVITE_PREFIX)
    expires_at = utcnow() + INVITE_TTL
    row = store_token(session, issued, "invitation", INVITE_KIND, user.id, expires_at)
    audit.record(
        session, actor, "user.invited", "user", user.id,
        {"invitation_id": row.id, "expires_at": expires_at.isoformat(),
         "revoked_older": revoked},
    )  # fmt: skip
    return NewInvitation(user.id, user.email, user.display_name, issued.plaintext, expires_at)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )


def accept(session: Session, plaintext: str, password: str, actor: audit.Actor) -> str:
    """Spend the invitation, set the password; the id of the user to sign in."""
    check_password(password)
    refused = InvitationRefused(
        "this invitation link is not valid any more (used, expired or replaced); "
        "ask an admin for a new one",
        field="token",
    )
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(plaintext), ApiToken.kind == INVITE_KIND
        )
    )
    now = utcnow()
    if row is None or not token_matches(plaintext, row.token_hash) or row.user_id is None:
        raise refused
    if row.revoked_at is not None or row.expires_at is None or row.expires_at <= now:
        raise refused
    user = session.get(User, row.user_id)
    if user is None or user.deleted_at is not None or not user.active:
        raise refused
    spent = session.execute(
        update(ApiToken)
        .where(ApiToken.id == row.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now, last_used_at=now)
    )
    if int(getattr(spent, "rowcount", 0) or 0) != 1:
        raise refused  # someone else used it a moment ago
    user.password_hash = passwords.hash_password(password)
    audit.record(
        session, audit.Actor("user", user.id, actor.source, actor.request_id),
        "user.invitation_accepted", "user", user.id, {"invitation_id": row.id},
    )  # fmt: skip
    return user.id


def email_text(invitation: NewInvitation, base_url: str) -> tuple[str, str]:
    """Subject and body of the invitation email."""
    subject = "Your Grantflow sign-in invitation"
    body = (
        f"Hello {invitation.display_name or 'there'},\n\n"
        "An administrator invited you to sign in to Grantflow. Open this link to set your "
        f"password (at least {MIN_PASSWORD_LENGTH} characters); it works once and expires "
        f"{invitation.expires_at.strftime('%Y-%m-%d %H:%M UTC')}:\n\n"
        f"{invitation.link(base_url)}\n\n"
        "If you did not expect this, ignore this email.\n"
    )
    return subject, body
