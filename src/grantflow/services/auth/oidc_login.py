"""OIDC sign-in as use cases: start (remember state, nonce and PKCE verifier server-side,
bound to the browser by a cookie), and finish (one use, then find the user the identity is).

Who an identity is follows ``domain.oidc_binding``: bound identities by (issuer, sub) only; a
first sign-in links by verified email to an account that may be linked that way, or makes a
new member when auto-create is on; never by preferred_username.

Keeping the pending sign-in in the database rather than in a signed cookie means no signing
key to configure, and a callback may land on any replica.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.oidc_binding import (
    LinkCandidate,
    LinkRefusal,
    OidcClaims,
    link_refusal,
    new_username,
    read_claims,
)
from grantflow.domain.secrets import hash_token
from grantflow.services.audit import trail as audit
from grantflow.services.auth.oidc_client import OidcClient, OidcConfig, OidcError, OidcRejected
from grantflow.services.auth.sessions import NewSession
from grantflow.services.auth.tokens import BOOTSTRAP_ADMIN
from grantflow.services.errors import Conflict, Forbidden
from grantflow.services.identity import user_identities
from grantflow.settings import Settings
from grantflow.store.db import transaction
from grantflow.store.models import ApiToken, User, UserIdentity
from grantflow.store.models_auth import OidcLogin
from grantflow.store.types import utcnow

PENDING_TTL = timedelta(minutes=10)
BINDING_COOKIE = "grantflow_oidc"


class NoMatchingUser(Forbidden):
    code = "no_account"

    def __init__(
        self, message: str, *, user_id: str | None = None, reason: str = "no_match"
    ) -> None:
        super().__init__(message)
        self.user_id = user_id
        self.reason = reason  # for the audit event; the message is what the person sees


@dataclass(frozen=True, slots=True)
class StartedLogin:
    redirect_url: str
    binding: str  # the browser keeps it in a short-lived cookie


def safe_next(path: str | None) -> str:
    """Only a local absolute path may follow a sign-in (no open redirect). Browsers drop tabs
    and newlines from URLs and read a backslash as a slash, so any of those disqualify too."""
    if not path or not path.startswith("/") or path.startswith("//"):
        return "/"
    if "\\" in path or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


def start(session: Session, client: OidcClient, next_path: str | None) -> StartedLogin:
    request = client.begin()
    binding = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(OidcLogin).where(OidcLogin.expires_at <= now))
    session.add(
        OidcLogin(
            binding_hash=hash_token(binding),
            state=request.state,
            nonce=request.nonce,
            code_verifier=request.code_verifier,
            next_path=safe_next(next_path),
            created_at=now,
            expires_at=now + PENDING_TTL,
        )
    )
    return StartedLogin(request.url, binding)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    next_path: str
    expires_at: datetime


def consume(session: Session, binding: str | None) -> PendingLogin | None:
    """Remove and return the sign-in this browser started (a callback works once)."""
    if not binding:
        return None
    row = session.scalar(select(OidcLogin).where(OidcLogin.binding_hash == hash_token(binding)))
    if row is None:
        return None
    session.delete(row)
    return PendingLogin(row.state, row.nonce, row.code_verifier, row.next_path, row.expires_at)


def check(pending: PendingLogin | None, state: str | None) -> PendingLogin:
    """The consumed sign-in, when the callback really belongs to it."""
    if pending is None:
        raise OidcError(
            "this sign-in is unknown, was already used, or was started in another browser; "
            "start again from the sign-in page"
        )
    if pending.expires_at <= utcnow():
        raise OidcError("this sign-in took too long and expired; start again")
    if not state or not hmac.compare_digest(pending.state, state):
        raise OidcError("the sign-in state does not match; start again")
    return pending


def risky_settings(settings: Settings) -> list[tuple[str, str]]:
    """Single sign-on settings that weaken who-is-who: (setting, why). ``config check``
    reports them and ``serve`` logs them as warnings."""
    if not settings.oidc_issuer:
        return []
    out = []
    if not settings.oidc_require_verified_email:
        out.append(
            (
                "GRANTFLOW_OIDC_REQUIRE_VERIFIED_EMAIL",
                "false is ignored: a first sign-in links to an existing account only by an "
                "email the issuer verified (email_verified true); an admin links the others "
                "(POST /api/v1/users/{id}/identities). Remove the setting",
            )
        )
    if settings.oidc_auto_create:
        out.append(
            (
                "GRANTFLOW_OIDC_AUTO_CREATE",
                "anyone the issuer signs in for this client becomes a member: make sure the "
                "identity provider lets only your people use it",
            )
        )
    return out


# --- who signs in -------------------------------------------------------------------------

NO_ACCOUNT = "no active Grantflow account matches this identity; ask an admin to add you"
ADMIN_MUST_LINK = (
    "an account with this email exists, but it may be linked to single sign-on only by an "
    "admin; ask an admin to link your identity to it"
)


@dataclass(frozen=True, slots=True)
class Resolved:
    user: User
    identity: UserIdentity
    linked_now: bool


def _as(actor: audit.Actor, user: User) -> audit.Actor:
    return audit.Actor("user", user.id, actor.source, actor.request_id)


def _bound(session: Session, identity: UserIdentity, claims: OidcClaims) -> Resolved:
    user = session.get(User, identity.user_id)
    if user is None or user.deleted_at is not None:
        raise NoMatchingUser(NO_ACCOUNT, reason="user_deleted")
    if not user.active:
        raise NoMatchingUser(
            "this Grantflow account is deactivated", user_id=user.id, reason="deactivated"
        )
    identity.last_sign_in_at = utcnow()
    if claims.verified_email:
        identity.email = claims.verified_email
    return Resolved(user, identity, linked_now=False)


def _is_bootstrap_admin(session: Session, user: User) -> bool:
    if user.username == BOOTSTRAP_ADMIN and user.source == "local":
        return True
    bootstrap = select(ApiToken.id).where(ApiToken.user_id == user.id, ApiToken.kind == "bootstrap")
    return session.scalar(bootstrap.limit(1)) is not None


def _by_verified_email(session: Session, claims: OidcClaims, issuer: str) -> User | None:
    """The one live user a verified email names and that may be linked by it, or None when
    nobody has the email; ``NoMatchingUser`` when the rules refuse the link."""
    email = claims.verified_email
    if email is None:
        return None
    rows = session.scalars(
        select(User)
        .where(func.lower(User.email) == email, User.deleted_at.is_(None))
        .order_by(User.created_at)
        .limit(2)
    ).all()
    if not rows:
        return None
    if len(rows) > 1:
        raise NoMatchingUser(ADMIN_MUST_LINK, reason=LinkRefusal.AMBIGUOUS_EMAIL.value)
    user = rows[0]
    refusal = link_refusal(
        LinkCandidate(
            role=user.role,
            has_password=user.password_hash is not None,
            is_bootstrap_admin=_is_bootstrap_admin(session, user),
            has_identity_of_issuer=user_identities.has_issuer(session, user.id, issuer),
        )
    )
    if refusal is not None:
        raise NoMatchingUser(ADMIN_MUST_LINK, user_id=user.id, reason=refusal.value)
    if not user.active:
        raise NoMatchingUser(
            "this Grantflow account is deactivated", user_id=user.id, reason="deactivated"
        )
    return user


def _link(
    session: Session,
    user: User,
    claims: OidcClaims,
    issuer: str,
    linked_by: str,
    actor: audit.Actor,
) -> Resolved:
    try:
        identity = user_identities.bind(
            session, user, issuer, claims.subject, claims.verified_email, linked_by, actor
        )
    except Conflict:  # a concurrent first sign-in of the same identity won: use its binding
        won = user_identities.find(session, issuer, claims.subject)
        if won is None:
            raise NoMatchingUser(
                ADMIN_MUST_LINK, user_id=user.id, reason=LinkRefusal.ALREADY_LINKED.value
            ) from None
        return _bound(session, won, claims)
    identity.last_sign_in_at = utcnow()
    return Resolved(user, identity, linked_now=True)


def resolve_user(
    session: Session, claims: OidcClaims, config: OidcConfig, actor: audit.Actor
) -> Resolved:
    """The active user (issuer, sub) is, binding it on a first sign-in (see
    ``domain.oidc_binding``); ``NoMatchingUser`` when there is none or the rules refuse."""
    issuer = config.issuer
    identity = user_identities.find(session, issuer, claims.subject)
    if identity is not None:
        return _bound(session, identity, claims)
    user = _by_verified_email(session, claims, issuer)
    if user is not None:
        return _link(session, user, claims, issuer, user_identities.LINKED_BY_EMAIL,
                     _as(actor, user))  # fmt: skip
    if config.auto_create:
        user = _create(session, claims, issuer, actor)
        return _link(session, user, claims, issuer, user_identities.LINKED_BY_CREATION,
                     _as(actor, user))  # fmt: skip
    raise NoMatchingUser(NO_ACCOUNT)


def _create(session: Session, claims: OidcClaims, issuer: str, actor: audit.Actor) -> User:
    """A new member for an identity that matches nobody: never under a username that is
    taken (compared case-insensitively), never with an email the issuer did not verify."""
    username = new_username(claims)
    if username is None:
        raise NoMatchingUser(
            "the identity provider sent neither a username nor a verified email, so no "
            "account can be made; ask an admin to add you",
            reason="no_username",
        )
    taken = select(User.id).where(func.lower(User.username) == username.lower(),
                                  User.deleted_at.is_(None))  # fmt: skip
    refusal = NoMatchingUser(
        f"the username {username!r} belongs to another account; ask an admin to link your "
        "identity to your account",
        reason="username_taken",
    )
    if session.scalar(taken.limit(1)) is not None:
        raise refusal
    user = User(
        username=username,
        email=claims.verified_email,
        display_name=claims.name or username,
        role="member",
        source="oidc",
    )
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:  # taken a moment ago by a concurrent sign-in
        raise refusal from None
    audit.record(session, _as(actor, user), "user.created", "user", user.id,
                 {"source": "oidc", "issuer": issuer, "sub": claims.subject})  # fmt: skip
    return user


def _record_failure(
    factory: sessionmaker[Session],
    actor: audit.Actor,
    issuer: str,
    subject: str | None,
    reason: str,
    message: str,
    user_id: str | None = None,
) -> None:
    with transaction(factory) as session:
        audit.record(
            session,
            actor,
            "auth.sign_in_failed",
            "user" if user_id else None,
            user_id,
            {"method": "oidc", "issuer": issuer, "sub": subject, "reason": reason,
             "message": message},
        )  # fmt: skip


def _claims(client: OidcClient, pending: PendingLogin, code: str) -> OidcClaims:
    raw = client.finish(code, pending.code_verifier, pending.nonce)
    try:
        return read_claims(raw)
    except ValueError as err:
        raise OidcRejected(f"the ID token is not usable: {err}") from err


def sign_in(
    factory: sessionmaker[Session],
    client: OidcClient,
    pending: PendingLogin,
    code: str,
    new_session: Callable[[Session, User], NewSession],
    actor: audit.Actor,
) -> NewSession:
    """Exchange the code, validate the ID token, find (or bind) the user and open a web
    session. Every outcome is audited with the issuer and, once known, the subject."""
    issuer = client.config.issuer
    try:
        claims = _claims(client, pending, code)
    except OidcError as err:
        _record_failure(factory, actor, issuer, None, err.code, err.message)
        raise
    try:
        with transaction(factory) as session:
            resolved = resolve_user(session, claims, client.config, actor)
            new = new_session(session, resolved.user)
            identity = resolved.identity
            audit.record(
                session,
                _as(actor, resolved.user),
                "auth.oidc_signed_in",
                "user",
                resolved.user.id,
                {"issuer": identity.issuer, "sub": identity.subject,
                 "identity_id": identity.id, "linked_by": identity.linked_by,
                 "linked_now": resolved.linked_now, "session_id": new.id},
            )  # fmt: skip
            return new
    except NoMatchingUser as err:
        _record_failure(
            factory, actor, issuer, claims.subject, err.reason, err.message, err.user_id
        )
        raise
