"""Web sessions: a random secret in an HttpOnly cookie, its SHA-256 digest in ``web_sessions``.

Because the truth is a database row, signing out, deactivating a user or revoking every
session of a user takes effect on the very next request, on every replica, and no signing
key has to be configured or shared.

CSRF: a cookie-authenticated request that changes state must carry the session's CSRF token
(header ``X-CSRF-Token`` or form field ``csrf_token``). The token is an HMAC of the session
secret, so the server recomputes it from the cookie; a cross-site page can neither read the
cookie nor the token. Bearer-token requests need no CSRF token: browsers never attach them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from grantflow.domain.authz import Principal, PrincipalKind, Role
from grantflow.domain.secrets import hash_token
from grantflow.services.audit import trail as audit
from grantflow.store.models import User
from grantflow.store.models_auth import WebSession
from grantflow.store.types import utcnow

SESSION_PREFIX = "gfs"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CSRF_CONTEXT = b"grantflow/csrf/v1"
_TOUCH_EVERY = timedelta(seconds=60)


def cookie_name(secure: bool) -> str:
    """``__Host-`` pins the cookie to this host, HTTPS and path ``/``; browsers refuse that
    prefix without Secure, so plain-HTTP deployments (the loopback demo) use the bare name."""
    return "__Host-grantflow_session" if secure else "grantflow_session"


@dataclass(frozen=True, slots=True)
class NewSession:
    id: str
    secret: str  # goes into the cookie, never stored
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    id: str
    principal: Principal
    csrf_token: str
    expires_at: datetime


def csrf_token_for(secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_matches(secret: str, submitted: str | None) -> bool:
    if not submitted:
        return False
    return hmac.compare_digest(csrf_token_for(secret), submitted)


def create_session(
    session: Session,
    user: User,
    *,
    auth_method: str,
    max_age_seconds: int,
    actor: audit.Actor,
    client_ip: str | None = None,
    user_agent: str | None = None,
) -> NewSession:
    secret = f"{SESSION_PREFIX}_{secrets.token_urlsafe(32)}"
    now = utcnow()
    row = WebSession(
        token_hash=hash_token(secret),
        user_id=user.id,
        auth_method=auth_method,
        client_ip=client_ip,
        user_agent=(user_agent or "")[:255] or None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=max_age_seconds),
    )
    session.add(row)
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    session.flush()
    audit.record(
        session, actor, "auth.signed_in", "user", user.id, {"method": auth_method, "ip": client_ip}
    )
    return NewSession(row.id, secret, csrf_token_for(secret), row.expires_at)


def resolve_session(session: Session, secret: str) -> ResolvedSession | None:
    """The live session a cookie secret stands for, or None when unknown, ended or expired.

    Deactivation revokes a user's sessions (``user_lifecycle``), so this is the exception: a
    session of a user deactivated by other means still resolves, to a principal marked
    inactive, and the policy answers "this account is deactivated" rather than "sign in".
    A deleted user's sessions never resolve.
    """
    if not secret.startswith(f"{SESSION_PREFIX}_"):
        return None
    row = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.deleted_at is not None:
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
    principal = Principal(
        PrincipalKind.USER, user.id, Role(user.role), active=user.active, display=user.username
    )
    return ResolvedSession(row.id, principal, csrf_token_for(secret), row.expires_at)


def end_session(session: Session, secret: str, actor: audit.Actor) -> bool:
    """Sign one browser out. False when the secret names no live session."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    audit.record(session, actor, "auth.signed_out", "user", row.user_id)
    return True


def end_user_sessions(session: Session, user_id: str) -> int:
    """End every live session of a user (deactivation, password change): each browser is
    signed out on its next request. Returns how many (the caller audits)."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
