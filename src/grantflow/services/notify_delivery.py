"""Delivering the outbox: claim due rows, send outside any transaction, record the outcome.

A claim moves ``next_attempt_at`` a lease ahead and counts the attempt, so a replica that
dies mid-send leaves a row that becomes due again (at-least-once; webhook receivers
deduplicate on ``X-Grantflow-Delivery``). On PostgreSQL claims skip rows another replica
holds (``FOR UPDATE SKIP LOCKED``). A ``DeliveryError`` is retried with the jobs' backoff
until ``max_attempts``, then the row is ``failed`` — visible in ``GET /api/v1/notifications``
and in metrics, and retried by hand with ``POST …/{id}/retry``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.api.metrics import Metrics
from grantflow.domain.jobs import backoff_seconds
from grantflow.notify.base import Channel, DeliveryError
from grantflow.notify.payload import from_payload
from grantflow.services import audit
from grantflow.services.errors import Conflict, NotFound
from grantflow.store.db import transaction
from grantflow.store.models_notify import NotificationDelivery
from grantflow.store.types import utcnow

log = structlog.get_logger(__name__)

CLAIM_SECONDS = 120
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
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=CLAIM_SECONDS)
        claimed.append(Claimed(row.id, row.channel, row.target, row.kind, row.payload,
                               row.attempts))  # fmt: skip
    return claimed


def _send(item: Claimed, channels: Mapping[str, Channel]) -> DeliveryError | None:
    channel = channels.get(item.channel)
    if channel is None:
        return DeliveryError(f"channel {item.channel!r} is not configured", retryable=False)
    try:
        channel.send(from_payload(item.payload, delivery_id=item.id), item.target)
    except DeliveryError as err:
        return err
    except Exception as err:  # a channel's bug is recorded and retried, never lost
        log.exception("notification_channel_crashed", channel=item.channel, delivery_id=item.id)
        return DeliveryError(f"{type(err).__name__} in the {item.channel} channel")
    return None


def _record(session: Session, item: Claimed, error: DeliveryError | None, max_attempts: int,
            now: datetime) -> str:  # fmt: skip
    row = session.get(NotificationDelivery, item.id)
    if row is None or row.state != "pending":
        return "gone"
    if error is None:
        row.state, row.delivered_at, row.last_error = "delivered", now, None
        return "delivered"
    row.last_error = str(error)[:2000]
    if not error.retryable or row.attempts >= max_attempts:
        row.state = "failed"
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
        error = _send(item, channels)
        with transaction(sessions) as session:
            outcome = _record(session, item, error, max_attempts, now or utcnow())
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
    return row


def pending_count(session: Session) -> int:
    query = select(func.count()).where(NotificationDelivery.state == "pending")
    return int(session.scalar(query) or 0)
