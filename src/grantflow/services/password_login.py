"""Password sign-in for local users, with failures limited per username and per client IP.

Every attempt is written to ``login_attempts`` *before* the password is checked and counted
in the same step, so parallel guesses cannot slip past the limit; a success removes its own
row and the username's earlier failures (the IP's stay). Unknown users, users without a
password, deactivated users and wrong passwords all get the same answer after the same argon2
work, so the answer says nothing about which usernames exist.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services import audit, passwords
from grantflow.services.errors import ServiceError
from grantflow.settings import Settings
from grantflow.store.db import transaction
from grantflow.store.models import User
from grantflow.store.models_auth import LoginAttempt
from grantflow.store.types import utcnow

INVALID_CREDENTIALS = "invalid username or password"


class InvalidCredentials(ServiceError):
    status = 401
    code = "invalid_credentials"


class TooManyAttempts(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("too many failed sign-ins; try again later")
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_user: int
    per_ip: int
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            per_user=settings.login_max_failures_per_user,
            per_ip=settings.login_max_failures_per_ip,
            window=timedelta(seconds=settings.login_failure_window_seconds),
        )


def username_key(username: str) -> str:
    """What a username is counted under: a digest, so typos (or passwords typed into the
    username field) never sit in the table in clear."""
    return hashlib.sha256(username.strip().casefold().encode("utf-8")).hexdigest()


def _reserve(sessions: sessionmaker[Session], key: str, ip: str, limits: LoginLimits) -> str:
    """Record the attempt, then count it with the others; raise when over either limit."""
    now = utcnow()
    since = now - limits.window
    with transaction(sessions) as session:
        session.execute(delete(LoginAttempt).where(LoginAttempt.occurred_at < since))
        row = LoginAttempt(username_hash=key, client_ip=ip, occurred_at=now)
        session.add(row)
        session.flush()
        attempt_id = row.id
    with transaction(sessions) as session:
        waits = [
            _wait(session, LoginAttempt.username_hash == key, limits.per_user, limits, since),
            _wait(session, LoginAttempt.client_ip == ip, limits.per_ip, limits, since),
        ]
        over = [w for w in waits if w is not None]
        retry_after = max(over) if over else None
        if retry_after is not None:
            session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
    if retry_after is not None:
        raise TooManyAttempts(retry_after)
    return attempt_id


def _wait(
    session: Session,
    match: ColumnElement[bool],
    limit: int,
    limits: LoginLimits,
    since: datetime,
) -> int | None:
    """Seconds until fewer than ``limit`` earlier attempts remain in the window, or None
    when this attempt (the newest row) is within the limit."""
    times = session.scalars(
        select(LoginAttempt.occurred_at)
        .where(match, LoginAttempt.occurred_at >= since)
        .order_by(LoginAttempt.occurred_at)
    ).all()
    earlier = len(times) - 1
    if earlier < limit:
        return None
    frees_at = times[earlier - limit] + limits.window
    return max(1, math.ceil((frees_at - utcnow()).total_seconds()))


def _settle(sessions: sessionmaker[Session], attempt_id: str, key: str | None) -> None:
    """A success: forget this attempt and, for the username, the failures before it."""
    with transaction(sessions) as session:
        session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
        if key is not None:
            session.execute(delete(LoginAttempt).where(LoginAttempt.username_hash == key))


def authenticate(
    sessions: sessionmaker[Session],
    username: str,
    password: str,
    client_ip: str,
    limits: LoginLimits,
    actor: audit.Actor,
) -> str:
    """The id of the active local user these credentials belong to.

    Raises ``TooManyAttempts`` (before any password work) or ``InvalidCredentials``.
    """
    key = username_key(username)
    attempt_id = _reserve(sessions, key, client_ip, limits)
    with transaction(sessions) as session:
        user = session.scalar(
            select(User).where(User.deleted_at.is_(None), User.username == username.strip())
        )
        stored = user.password_hash if user is not None else None
        user_id = user.id if user is not None else None
        active = bool(user is not None and user.active)
    if stored is None:
        passwords.dummy_verify(password)
        ok = False
    else:
        ok = passwords.verify(stored, password)
    if ok and active and user_id is not None:
        _settle(sessions, attempt_id, key)
        if stored is not None and passwords.needs_rehash(stored):
            _rehash(sessions, user_id, password)
        return user_id
    with transaction(sessions) as session:
        reason = "deactivated" if ok else "bad_credentials"
        audit.record(session, actor, "auth.sign_in_failed", "user", user_id, {"reason": reason})
    raise InvalidCredentials(INVALID_CREDENTIALS)


def _rehash(sessions: sessionmaker[Session], user_id: str, password: str) -> None:
    with transaction(sessions) as session:
        user = session.get(User, user_id)
        if user is not None:
            user.password_hash = passwords.hash_password(password)
