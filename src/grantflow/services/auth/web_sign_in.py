"""Web sessions opened and ended, each in its own transaction: after a password sign-in,
on sign-out, the signed-in user as the session answer shows it, and single sign-on's steps
(start, consume the pending login, sign in with the code)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.auth import oidc_login
from grantflow.services.auth import sessions as web_sessions
from grantflow.services.auth.oidc_client import OidcClient
from grantflow.services.identity import principals
from grantflow.store.db import transaction
from grantflow.store.models import DirectoryPrincipal, User


@dataclass(frozen=True, slots=True)
class Browser:
    """Where a sign-in comes from, as its session records it."""

    client_ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new web session and its user, with the principals the user is (loaded)."""

    new: web_sessions.NewSession
    user: User
    principals: list[DirectoryPrincipal]


def _create(
    session: Session, user: User, method: str, max_age_seconds: int, actor: audit.Actor,
    browser: Browser,
) -> web_sessions.NewSession:  # fmt: skip
    return web_sessions.create_session(
        session,
        user,
        auth_method=method,
        max_age_seconds=max_age_seconds,
        actor=audit.Actor("user", user.id, actor.source, actor.request_id),
        client_ip=browser.client_ip,
        user_agent=browser.user_agent,
    )


def start_session(
    session: Session, user: User, method: str, max_age_seconds: int, actor: audit.Actor,
    browser: Browser,
) -> SignedIn:  # fmt: skip
    """Open a web session for ``user`` in the caller's transaction (audited as the user)."""
    new = _create(session, user, method, max_age_seconds, actor, browser)
    return SignedIn(new, user, principals.principals_of(session, user.id))


def open_session(
    sessions: sessionmaker[Session],
    user_id: str,
    method: str,
    old_secret: str | None,
    max_age_seconds: int,
    actor: audit.Actor,
    browser: Browser,
) -> SignedIn:
    """After a successful sign-in: end this browser's previous session, open a new one."""
    with transaction(sessions) as session:
        if old_secret:
            web_sessions.end_session(session, old_secret, actor)
        user = session.get(User, user_id)
        assert user is not None
        return start_session(session, user, method, max_age_seconds, actor, browser)


def sign_out(sessions: sessionmaker[Session], secret: str, actor: audit.Actor) -> None:
    with transaction(sessions) as session:
        web_sessions.end_session(session, secret, actor)


def signed_in_user(
    sessions: sessionmaker[Session], user_id: str
) -> tuple[User, list[DirectoryPrincipal]] | None:
    """The user and the principals they are; None once the user is gone."""
    with transaction(sessions) as session:
        user = session.get(User, user_id)
        if user is None:
            return None
        return user, principals.principals_of(session, user.id)


def start_oidc(
    sessions: sessionmaker[Session], client: OidcClient, next_path: str | None
) -> oidc_login.StartedLogin:
    with transaction(sessions) as session:
        return oidc_login.start(session, client, next_path)


def consume_oidc(
    sessions: sessionmaker[Session], binding: str | None
) -> oidc_login.PendingLogin | None:
    with transaction(sessions) as session:
        return oidc_login.consume(session, binding)


def oidc_sign_in(
    sessions: sessionmaker[Session],
    client: OidcClient,
    pending: oidc_login.PendingLogin,
    code: str,
    max_age_seconds: int,
    actor: audit.Actor,
    browser: Browser,
) -> web_sessions.NewSession:
    """Exchange the code and open a web session for the user it names (``oidc_login``)."""

    def new_session(session: Session, user: User) -> web_sessions.NewSession:
        return _create(session, user, "oidc", max_age_seconds, actor, browser)

    return oidc_login.sign_in(sessions, client, pending, code, new_session, actor)
