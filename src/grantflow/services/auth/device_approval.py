"""The person's side of the device sign-in: the code they typed, then Approve or Deny.

Every code a person types is looked up under the audit chain's lock, after counting the codes
they got wrong in `WRONG_CODE_WINDOW`: past `WRONG_CODE_LIMIT` nothing is looked up at all
(`TooManyWrongCodes`), and each wrong code is itself an audit event
(``device.user_code_rejected``), which is also what is counted. Approving or denying types
the code again; the decision is a conditional update of a pending, unexpired sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain import device_login as dl
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, Forbidden, ServiceError
from grantflow.store.db import transaction
from grantflow.store.models import AuditEvent, User
from grantflow.store.models_auth import DeviceAuthorization
from grantflow.store.types import utcnow

REJECTED = "device.user_code_rejected"
AGAIN = "run `grantflow login --browser` again for a new code"


class WrongCode(ServiceError):
    status = 400
    code = "invalid_user_code"


class TooManyWrongCodes(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_seconds: int) -> None:
        minutes = -(-retry_after_seconds // 60)
        super().__init__(
            f"too many wrong codes; try again in {minutes} minute{'s' if minutes > 1 else ''}",
            field="user_code",
        )
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    """What the page shows about a sign-in before the person decides."""

    id: str
    user_code: str  # XXXX-XXXX
    label: str
    client_ip: str | None
    user_agent: str | None
    created_at: datetime
    expires_at: datetime


def find(
    sessions: sessionmaker[Session], user_id: str, typed: str, actor: audit.Actor
) -> PendingSignIn:
    """The pending sign-in whose user code ``typed`` is (counted against the person)."""
    canonical = dl.normalize_user_code(typed)
    if canonical is None:
        raise WrongCode(
            f"a code is {dl.USER_CODE_LENGTH} letters like BCDF-GHJK, as the terminal shows it",
            field="user_code",
        )
    now = utcnow()
    with transaction(sessions) as session:
        outcome = _match(session, user_id, canonical, actor, now)
    if isinstance(outcome, ServiceError):
        raise outcome
    return outcome


def decide(
    sessions: sessionmaker[Session], user_id: str, typed: str, approve: bool, actor: audit.Actor
) -> PendingSignIn:
    """Approve (for ``user_id``) or deny the sign-in the typed code names."""
    pending = find(sessions, user_id, typed, actor)
    status = dl.Status.APPROVED if approve else dl.Status.DENIED
    now = utcnow()
    with transaction(sessions) as session:
        user = session.get(User, user_id)
        if user is None or not user.active or user.deleted_at is not None:
            raise Forbidden("this account is deactivated; it cannot approve a sign-in")
        decided = session.execute(
            update(DeviceAuthorization)
            .where(
                DeviceAuthorization.id == pending.id,
                DeviceAuthorization.status == dl.Status.PENDING.value,
                DeviceAuthorization.expires_at > now,
            )
            .values(status=status.value, user_id=user_id, decided_at=now)
        )
        if getattr(decided, "rowcount", 0) != 1:
            raise Conflict(f"this sign-in was decided meanwhile or has expired; {AGAIN}")
        audit.record(session, actor, f"device.{status.value}", "device_authorization",
                     pending.id, {"label": pending.label, "client_ip": pending.client_ip,
                                  "user_agent": pending.user_agent})  # fmt: skip
    return pending


def _match(
    session: Session, user_id: str, canonical: str, actor: audit.Actor, now: datetime
) -> PendingSignIn | ServiceError:
    """Under the chain lock: refuse past the limit, else look the code up; a miss is
    recorded (and so counted) in this transaction and returned, not raised, so it commits."""
    audit.lock_chain(session)
    since = now - dl.WRONG_CODE_WINDOW
    misses = session.scalars(
        select(AuditEvent.occurred_at)
        .where(
            AuditEvent.action == REJECTED,
            AuditEvent.actor_id == user_id,
            AuditEvent.occurred_at >= since,
        )
        .order_by(AuditEvent.occurred_at)
    ).all()
    if len(misses) >= dl.WRONG_CODE_LIMIT:
        return TooManyWrongCodes(dl.retry_after_seconds(misses[0], dl.WRONG_CODE_WINDOW, now))
    row = session.scalar(
        select(DeviceAuthorization).where(
            DeviceAuthorization.user_code_hash == dl.user_code_digest(canonical)
        )
    )
    reason, message = _refusal(row, now)
    if row is None or reason:
        attempt = len(misses) + 1
        audit.record(session, actor, REJECTED, "device_authorization", row.id if row else None,
                     {"reason": reason, "attempt": attempt, "limit": dl.WRONG_CODE_LIMIT,
                      "limited": attempt >= dl.WRONG_CODE_LIMIT})  # fmt: skip
        return WrongCode(message, field="user_code")
    return PendingSignIn(
        id=row.id,
        user_code=dl.display_user_code(canonical),
        label=row.label,
        client_ip=row.client_ip,
        user_agent=row.user_agent,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _refusal(row: DeviceAuthorization | None, now: datetime) -> tuple[str, str]:
    """Why a typed code cannot be used ('' when it can) and what to tell the person."""
    if row is None:
        return "unknown", "no sign-in waits for this code; check it against the terminal"
    if row.status != dl.Status.PENDING.value:
        return "decided", f"this code was already used; {AGAIN}"
    if now >= row.expires_at:
        minutes = int(dl.EXPIRES_IN.total_seconds()) // 60
        return "expired", f"this code has expired (after {minutes} minutes); {AGAIN}"
    return "", ""
