"""The CLI's side of the device sign-in (see `grantflow.domain.device_login`): start one, poll.

Starting needs no credentials and is limited per client IP. Polling needs the device code;
the first poll after an approval claims the sign-in (a conditional update, so two polls can
never both win) and mints a personal API token valid for `TOKEN_LIFETIME`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain import device_login as dl
from grantflow.services.audit import trail as audit
from grantflow.services.auth import tokens
from grantflow.services.errors import ServiceError
from grantflow.store.db import transaction
from grantflow.store.models import User
from grantflow.store.models_auth import DeviceAuthorization
from grantflow.store.types import utcnow


class TooManySignIns(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many CLI sign-ins started from this address; try again in {retry_after_seconds} s"
        )
        self.retry_after_seconds = retry_after_seconds


class PollRefused(ServiceError):
    """A poll that yields no token; ``code`` is the RFC 8628 error."""

    status = 400

    def __init__(self, outcome: dl.PollOutcome, message: str, interval_seconds: int) -> None:
        super().__init__(message)
        self.code = outcome.value
        self.interval_seconds = interval_seconds


@dataclass(frozen=True, slots=True)
class Started:
    device_code: str
    user_code: str  # shown as XXXX-XXXX
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class Issued:
    token: tokens.NewToken
    username: str


_MESSAGES = {
    dl.PollOutcome.PENDING: "waiting for the code to be approved in the browser",
    dl.PollOutcome.SLOW_DOWN: "polling too fast; wait the interval between polls",
    dl.PollOutcome.DENIED: "the sign-in was denied",
    dl.PollOutcome.EXPIRED: "the sign-in expired; start a new one",
    dl.PollOutcome.SPENT: "unknown or already used device code; start a new sign-in",
}


def start(
    sessions: sessionmaker[Session],
    label: str,
    client_ip: str,
    user_agent: str | None,
    actor: audit.Actor,
) -> Started:
    """A new pending sign-in; `TooManySignIns` past `STARTS_PER_IP` in `STARTS_WINDOW`."""
    now = utcnow()
    codes = dl.new_codes()
    with transaction(sessions) as session:
        audit.lock_chain(session)  # serializes the count below with every other start
        session.execute(
            delete(DeviceAuthorization).where(
                DeviceAuthorization.expires_at < now - dl.RETAIN_AFTER_EXPIRY
            )
        )
        recent = session.scalars(
            select(DeviceAuthorization.created_at)
            .where(
                DeviceAuthorization.client_ip == client_ip,
                DeviceAuthorization.created_at >= now - dl.STARTS_WINDOW,
            )
            .order_by(DeviceAuthorization.created_at)
        ).all()
        if len(recent) >= dl.STARTS_PER_IP:
            raise TooManySignIns(dl.retry_after_seconds(recent[0], dl.STARTS_WINDOW, now))
        while session.scalar(
            select(DeviceAuthorization.id).where(
                DeviceAuthorization.user_code_hash == codes.user_code_hash
            )
        ):
            codes = dl.new_codes()  # a user code must point at one sign-in only
        row = DeviceAuthorization(
            device_code_hash=codes.device_code_hash,
            user_code_hash=codes.user_code_hash,
            label=dl.clean_label(label),
            client_ip=client_ip[:64],
            user_agent=(user_agent or "")[:255] or None,
            status=dl.Status.PENDING.value,
            interval_seconds=dl.INTERVAL_SECONDS,
            created_at=now,
            expires_at=now + dl.EXPIRES_IN,
        )
        session.add(row)
        session.flush()
        audit.record(session, actor, "device.requested", "device_authorization", row.id,
                     {"label": row.label, "client_ip": row.client_ip,
                      "user_agent": row.user_agent})  # fmt: skip
    return Started(
        device_code=codes.device_code,
        user_code=dl.display_user_code(codes.user_code),
        expires_in=int(dl.EXPIRES_IN.total_seconds()),
        interval=dl.INTERVAL_SECONDS,
    )


def poll(sessions: sessionmaker[Session], device_code: str, request_id: str | None) -> Issued:
    """The token of an approved sign-in, once; else `PollRefused` with the RFC error."""
    now = utcnow()
    with transaction(sessions) as session:
        result = _poll(session, device_code, request_id, now)
    if isinstance(result, PollRefused):
        raise result
    return result


def _poll(
    session: Session, device_code: str, request_id: str | None, now: datetime
) -> Issued | PollRefused:
    row = session.scalar(
        select(DeviceAuthorization).where(
            DeviceAuthorization.device_code_hash == dl.device_code_digest(device_code)
        )
    )
    if row is None:
        spent = dl.PollOutcome.SPENT
        return PollRefused(spent, _MESSAGES[spent], dl.INTERVAL_SECONDS)
    outcome = dl.poll_outcome(
        dl.Status(row.status), row.expires_at, row.last_polled_at, row.interval_seconds, now
    )
    if outcome is dl.PollOutcome.SLOW_DOWN:
        row.interval_seconds = dl.slowed(row.interval_seconds)
    row.last_polled_at = now
    if outcome is dl.PollOutcome.ISSUE:
        issued = _issue(session, row, request_id, now)
        if isinstance(issued, Issued):
            return issued
        outcome = issued
    return PollRefused(outcome, _MESSAGES[outcome], row.interval_seconds)


def _issue(
    session: Session, row: DeviceAuthorization, request_id: str | None, now: datetime
) -> Issued | dl.PollOutcome:
    """Claim the approved sign-in and mint its token. The claim is conditional, so of two
    polls that both read ``approved`` one gets the token and the other `SPENT`; a user who
    may no longer sign in gets `DENIED` (the sign-in is spent all the same)."""
    claimed = session.execute(
        update(DeviceAuthorization)
        .where(
            DeviceAuthorization.id == row.id,
            DeviceAuthorization.status == dl.Status.APPROVED.value,
        )
        .values(status=dl.Status.USED.value, last_polled_at=now)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return dl.PollOutcome.SPENT
    user = session.get(User, row.user_id) if row.user_id else None
    actor = audit.Actor("user", row.user_id, "api", request_id)
    if user is None or not user.active or user.deleted_at is not None:
        audit.record(session, actor, "device.refused", "device_authorization", row.id,
                     {"reason": "the approving user is deactivated"})  # fmt: skip
        return dl.PollOutcome.DENIED
    token = tokens.create_personal_token(
        session, user, f"CLI: {row.label}", actor, expires_at=now + dl.TOKEN_LIFETIME
    )
    row.token_id = token.id
    return Issued(token, user.username)
