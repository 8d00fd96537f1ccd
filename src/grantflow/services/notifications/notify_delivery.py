"""Delivering the outbox: claim due rows, send outside any transaction, record the outcome.

A claim moves ``next_attempt_at`` a lease ahead and counts the attempt, so a replica that
dies mid-send leaves a row that becomes due again (at-least-once; webhook receivers
deduplicate on ``X-Grantflow-Delivery``). On PostgreSQL claims skip rows another replica
holds (``FOR UPDATE SKIP LOCKED``). A ``DeliveryError`` is retried with the jobs' backoff
until ``max_attempts``, then the row is ``failed`` — visible in ``GET /api/v1/notifications``
and in metrics, and retried by hand with ``POST …/{id}/retry``.

A delivery's receipt (what the channel returned: Slack's channel and message ``ts``) is kept
on its row. An approval update (``APPROVAL_UPDATE``) edits the message its approval delivery
posted: it is claimed only once that delivery is delivered (until then it waits, without
spending attempts, and the approval's delivery wakes it); if the approval delivery failed
there is no message to edit, and the update fails saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.jobs import backoff_seconds
from grantflow.domain.notifications import APPROVAL_UPDATE, UPDATES_KEY
from grantflow.metrics import Metrics
from grantflow.notify.base import Channel, DeliveryError, NoticeKind, UpdatableChannel
from grantflow.notify.payload import from_payload
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, NotFound
from grantflow.store.db import transaction
from grantflow.store.models_notify import NotificationDelivery
from grantflow.store.types import utcnow

log = structlog.get_logger(__name__)

CLAIM_SECONDS = 120
WAIT_SECONDS = 1  # an update waiting for its approval delivery looks again this long after
BATCH = 20
STATES = ("pending", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    channel: str
    target: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    receipt: dict[str, Any] | None = None  # for an update: the message to edit
    unavailable: str | None = None  # for an update: why there is no message to edit


def _approval_of(session: Session, row: NotificationDelivery, now: datetime
                 ) -> tuple[bool, dict[str, Any] | None, str | None]:  # fmt: skip
    """For an update row: (ready, receipt, why not). Not ready while the approval delivery
    it edits is still pending (its next attempt is pushed past that delivery's)."""
    approval_id = str(row.payload.get(UPDATES_KEY) or "")
    approval = session.get(NotificationDelivery, approval_id) if approval_id else None
    if approval is not None and approval.state == "pending":
        row.next_attempt_at = max(approval.next_attempt_at, now) + timedelta(seconds=WAIT_SECONDS)
        return False, None, None
    if approval is None:
        return True, None, f"the approval delivery {approval_id or '?'} to update is gone"
    if approval.state == "failed":
        why = (f"the approval message was never posted (delivery {approval.id} failed): "
               "nothing to update; retry that delivery, then this one")  # fmt: skip
        return True, None, why
    if not approval.receipt:
        return True, None, f"delivery {approval.id} kept no receipt: nothing to update"
    return True, dict(approval.receipt), None


def claim_due(session: Session, now: datetime, limit: int = BATCH) -> list[Claimed]:
    query = (
        select(NotificationDelivery)
        .where(NotificationDelivery.state == "pending", NotificationDelivery.next_attempt_at <= now)
        .order_by(NotificationDelivery.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for row in session.scalars(query).all():
        receipt, unavailable = None, None
        if row.kind == APPROVAL_UPDATE:
            ready, receipt, unavailable = _approval_of(session, row, now)
            if not ready:
                continue
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
        claimed.append(Claimed(row.id, row.channel, row.target, row.kind, row.payload,
                               row.attempts, receipt, unavailable))  # fmt: skip
    return claimed


def _call(item: Claimed, channel: Channel) -> dict[str, Any] | None:
    notice = from_payload(item.payload, delivery_id=item.id)
    if item.kind != APPROVAL_UPDATE:
        return channel.send(notice, item.target)
    if not isinstance(channel, UpdatableChannel):
        raise DeliveryError(f"the {item.channel} channel cannot update messages", retryable=False)
    if item.receipt is None:
        raise DeliveryError(item.unavailable or "no message to update", retryable=False)
    return channel.update(notice, item.receipt)


def _send(item: Claimed, channels: Mapping[str, Channel]
          ) -> tuple[DeliveryError | None, dict[str, Any] | None]:  # fmt: skip
    """Send (or update) one delivery: (the error, or None; the channel's receipt)."""
    channel = channels.get(item.channel)
    if channel is None:
        return DeliveryError(f"channel {item.channel!r} is not configured", retryable=False), None
    try:
        receipt = _call(item, channel)
    except DeliveryError as err:
        return err, None
    except Exception as err:  # a channel's bug is recorded and retried, never lost
        log.exception("notification_channel_crashed", channel=item.channel, delivery_id=item.id)
        return DeliveryError(f"{type(err).__name__} in the {item.channel} channel"), None
    return None, receipt if isinstance(receipt, dict) else None


def _updates_of(
    session: Session, approval: NotificationDelivery, state: str
) -> list[NotificationDelivery]:
    """The updates in ``state`` that edit the message ``approval`` posts (none unless it is
    an approval delivery)."""
    if approval.kind != NoticeKind.APPROVAL_NEEDED.value or not approval.request_id:
        return []
    rows = session.scalars(select(NotificationDelivery).where(
        NotificationDelivery.request_id == approval.request_id,
        NotificationDelivery.kind == APPROVAL_UPDATE,
        NotificationDelivery.state == state,
    ))  # fmt: skip
    return [update for update in rows if update.payload.get(UPDATES_KEY) == approval.id]


def _wake_updates(session: Session, row: NotificationDelivery, now: datetime) -> None:
    """An approval delivery just finished (posted, or failed for good): the updates waiting
    for it are due now."""
    for update in _updates_of(session, row, "pending"):
        update.next_attempt_at = now


def _record(session: Session, item: Claimed, error: DeliveryError | None, max_attempts: int,
            now: datetime, receipt: dict[str, Any] | None = None) -> str:  # fmt: skip
    row = session.get(NotificationDelivery, item.id)
    if row is None or row.state != "pending":
        return "gone"
    if error is None:
        row.state, row.delivered_at, row.last_error = "delivered", now, None
        row.receipt = receipt
        _wake_updates(session, row, now)
        return "delivered"
    row.last_error = str(error)[:2000]
    if not error.retryable or row.attempts >= max_attempts:
        row.state = "failed"
        _wake_updates(session, row, now)
        return "failed"
    row.next_attempt_at = now + timedelta(seconds=backoff_seconds(row.attempts))
    return "retry"


def deliver_due(
    sessions: sessionmaker[Session],
    channels: Mapping[str, Channel],
    metrics: Metrics,
    max_attempts: int,
    now: datetime | None = None,
    limit: int = BATCH,
) -> int:
    """One round: send what is due. Returns how many deliveries were attempted."""
    at = now or utcnow()
    with transaction(sessions) as session:
        claimed = claim_due(session, at, limit)
    for item in claimed:
        error, receipt = _send(item, channels)
        with transaction(sessions) as session:
            outcome = _record(session, item, error, max_attempts, now or utcnow(), receipt)
        metrics.notifications.labels(channel=item.channel, outcome=outcome).inc()
        if error is not None:
            log.warning("notification_delivery_failed", delivery_id=item.id,
                        channel=item.channel, kind=item.kind, attempt=item.attempts,
                        retryable=error.retryable, outcome=outcome, error=str(error))  # fmt: skip
    return len(claimed)


def page(
    session: Session,
    *,
    request_id: str | None = None,
    state: str | None = None,
    channel: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[NotificationDelivery], int]:
    query = select(NotificationDelivery)
    if request_id:
        query = query.where(NotificationDelivery.request_id == request_id)
    if state:
        query = query.where(NotificationDelivery.state == state)
    if channel:
        query = query.where(NotificationDelivery.channel == channel)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(NotificationDelivery.created_at.desc(), NotificationDelivery.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), int(total)


def retry(session: Session, delivery_id: str, actor: audit.Actor) -> NotificationDelivery:
    """Send a failed delivery again now, with a fresh count of attempts."""
    row = session.get(NotificationDelivery, delivery_id)
    if row is None:
        raise NotFound(f"no notification delivery {delivery_id}")
    if row.state != "failed":
        raise Conflict(f"the delivery is {row.state}; only a failed one can be retried")
    row.state, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
    audit.record(session, actor, "notification.retried", "notification_delivery", row.id,
                 {"channel": row.channel, "kind": row.kind, "request_id": row.request_id,
                  "last_error": row.last_error})  # fmt: skip
    _rearm_updates(session, row)
    return row


def _rearm_updates(session: Session, approval: NotificationDelivery) -> None:
    """An approval message sent again after the request was decided: the updates that failed
    for want of it wait for it again, so the message it posts is edited too."""
    for update in _updates_of(session, approval, "failed"):
        update.state, update.attempts = "pending", 0
        update.next_attempt_at = approval.next_attempt_at


def pending_count(session: Session) -> int:
    query = select(func.count()).where(NotificationDelivery.state == "pending")
    return int(session.scalar(query) or 0)
