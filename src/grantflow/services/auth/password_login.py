"""Password sign-in for local users: a hard limit per client address, progressive delays per
account, and never a lockout.

- **Per address** (IPv6: per /64): more than ``per_ip`` failures in the window and the address
  is refused (429) until the window frees; an attacker spends its own budget only.
- **Per account**: after ``free`` failures of a username in the window (from anywhere), each
  further attempt *from an address that failed for it* waits 1 s, 2 s, 4 s … (capped at
  ``max_delay``) after that address's latest failure. An address that has not failed for the
  account is not delayed, so nobody can lock a person (an admin) out by failing sign-ins in
  their name: the right password from an address that is not itself over its limit works.

Every attempt is written to ``login_attempts`` *before* the password is checked and counted
in the same step, so parallel guesses cannot slip past either rule (a refused attempt removes
its row again). A success removes its row and the earlier failures of the same username from
the same address; other addresses' failures stay and keep delaying them. Unknown users, users
without a password, deactivated users and wrong passwords all get the same answer after the
same argon2 work, so the answer says nothing about which usernames exist.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.auth import passwords
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
    free: int  # failures of a username before its failing addresses are delayed
    per_ip: int
    window: timedelta
    max_delay: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            free=settings.login_max_failures_per_user,
            per_ip=settings.login_max_failures_per_ip,
            window=timedelta(seconds=settings.login_failure_window_seconds),
            max_delay=timedelta(seconds=settings.login_max_delay_seconds),
        )

    def delay(self, failures: int) -> timedelta:
        """How long an address that failed waits, after ``failures`` of the account."""
        if failures < self.free:
            return timedelta(0)
        doublings = min(failures - self.free, 30)
        return min(timedelta(seconds=2**doublings), self.max_delay)


def username_key(username: str) -> str:
    """What a username is counted under: a digest, so typos (or passwords typed into the
    username field) never sit in the table in clear."""
    return hashlib.sha256(username.strip().casefold().encode("utf-8")).hexdigest()


def address_key(client_ip: str) -> str:
    """What an address is counted under: IPv6 by its /64 (one host usually holds the whole
    network), IPv4 and anything unparsable as given."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _seconds_until(when: datetime, now: datetime) -> int:
    return max(1, math.ceil((when - now).total_seconds()))


def _ip_wait(session: Session, ip: str, attempt_id: str, limits: LoginLimits) -> int | None:
    """Seconds until the address has fewer than ``per_ip`` other attempts in the window."""
    now = utcnow()
    times = session.scalars(
        select(LoginAttempt.occurred_at)
        .where(
            LoginAttempt.client_ip == ip,
            LoginAttempt.id != attempt_id,
            LoginAttempt.occurred_at >= now - limits.window,
        )
        .order_by(LoginAttempt.occurred_at)
    ).all()
    if len(times) < limits.per_ip:
        return None
    return _seconds_until(times[len(times) - limits.per_ip] + limits.window, now)


def _account_wait(
    session: Session, key: str, ip: str, attempt_id: str, limits: LoginLimits
) -> int | None:
    """Seconds this address still waits before trying this account again, or None."""
    now = utcnow()
    others: ColumnElement[bool] = LoginAttempt.id != attempt_id
    recent = LoginAttempt.occurred_at >= now - limits.window
    failures = session.scalar(
        select(func.count()).where(LoginAttempt.username_hash == key, others, recent)
    )
    delay = limits.delay(int(failures or 0))
    if not delay:
        return None
    last = session.scalar(
        select(func.max(LoginAttempt.occurred_at)).where(
            LoginAttempt.username_hash == key, LoginAttempt.client_ip == ip, others, recent
        )
    )
    if last is None or last + delay <= now:
        return None
    return _seconds_until(last + delay, now)


def _reserve(sessions: sessionmaker[Session], key: str, ip: str, limits: LoginLimits) -> str:
    """Record the attempt, then count it with the others; raise when a rule refuses it."""
    now = utcnow()
    with transaction(sessions) as session:
        session.execute(delete(LoginAttempt).where(LoginAttempt.occurred_at < now - limits.window))
        row = LoginAttempt(username_hash=key, client_ip=ip, occurred_at=now)
        session.add(row)
        session.flush()
        attempt_id = row.id
    with transaction(sessions) as session:
        waits = [
            _ip_wait(session, ip, attempt_id, limits),
            _account_wait(session, key, ip, attempt_id, limits),
        ]
        over = [w for w in waits if w is not None]
        if over:
            session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
    if over:
        raise TooManyAttempts(max(over))
    return attempt_id


def _settle(sessions: sessionmaker[Session], attempt_id: str, key: str, ip: str) -> None:
    """A success: forget this attempt and the username's earlier failures from this address."""
    with transaction(sessions) as session:
        session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))
        session.execute(
            delete(LoginAttempt).where(
                LoginAttempt.username_hash == key, LoginAttempt.client_ip == ip
            )
        )


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
    key, ip = username_key(username), address_key(client_ip)
    attempt_id = _reserve(sessions, key, ip, limits)
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
        _settle(sessions, attempt_id, key, ip)
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
