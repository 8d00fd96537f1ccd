"""OIDC sign-in as use cases: start (remember state, nonce and PKCE verifier server-side,
bound to the browser by a cookie), and finish (one use, then match the identity to a user).

Keeping the pending sign-in in the database rather than in a signed cookie means no signing
key to configure, and a callback may land on any replica.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.secrets import hash_token
from grantflow.services import audit
from grantflow.services.errors import Forbidden
from grantflow.services.oidc_client import OidcClient, OidcConfig, OidcError
from grantflow.services.sessions import NewSession
from grantflow.store.db import transaction
from grantflow.store.models import User
from grantflow.store.models_auth import OidcLogin
from grantflow.store.types import utcnow

PENDING_TTL = timedelta(minutes=10)
BINDING_COOKIE = "grantflow_oidc"


class NoMatchingUser(Forbidden):
    code = "no_account"

    def __init__(self, message: str, *, user_id: str | None = None) -> None:
        super().__init__(message)
        self.user_id = user_id


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


def _one(session: Session, *where: Any) -> User | None:
    rows = session.scalars(select(User).where(*where).limit(2)).all()
    return rows[0] if len(rows) == 1 else None


def match_user(session: Session, claims: dict[str, Any], config: OidcConfig) -> User | None:
    """The Grantflow user these claims name: by email (only when the issuer vouches for it,
    unless configured otherwise), then by preferred_username. Ambiguous matches don't count."""
    email = claims.get("email")
    verified = claims.get("email_verified") is True or not config.require_verified_email
    if isinstance(email, str) and email and verified:
        user = _one(session, func.lower(User.email) == email.strip().lower())
        if user is not None:
            return user
    username = claims.get("preferred_username")
    if isinstance(username, str) and username:
        return session.scalar(select(User).where(User.username == username))
    return None


def resolve_user(session: Session, claims: dict[str, Any], config: OidcConfig) -> User:
    """The active user to sign in, creating one only when ``oidc_auto_create`` is on."""
    user = match_user(session, claims, config)
    if user is None and config.auto_create:
        user = _create(session, claims)
    if user is None:
        raise NoMatchingUser(
            "no active Grantflow account matches this identity; ask an admin to add you"
        )
    if not user.active:
        raise NoMatchingUser("this Grantflow account is deactivated", user_id=user.id)
    return user


def sign_in(
    factory: sessionmaker[Session],
    client: OidcClient,
    pending: PendingLogin,
    code: str,
    new_session: Callable[[Session, User], NewSession],
    actor: audit.Actor,
) -> NewSession:
    """Exchange the code, validate the ID token, find the user and open a web session."""
    claims = client.finish(code, pending.code_verifier, pending.nonce)
    try:
        with transaction(factory) as session:
            return new_session(session, resolve_user(session, claims, client.config))
    except NoMatchingUser as err:
        with transaction(factory) as session:
            audit.record(
                session,
                actor,
                "auth.sign_in_failed",
                "user" if err.user_id else None,
                err.user_id,
                {"method": "oidc", "sub": str(claims.get("sub", "")), "reason": err.message},
            )
        raise


def _create(session: Session, claims: dict[str, Any]) -> User | None:
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    username = claims.get("preferred_username") or email or claims.get("sub")
    if not isinstance(username, str) or not username:
        return None
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        return None  # taken by someone else: never merge identities silently
    name = claims.get("name")
    user = User(
        username=username,
        email=email,
        display_name=name if isinstance(name, str) else username,
        role="member",
        source="oidc",
        external_id=str(claims.get("sub")),
    )
    session.add(user)
    session.flush()
    audit.record(session, audit.SYSTEM, "user.created", "user", user.id, {"source": "oidc"})
    return user
