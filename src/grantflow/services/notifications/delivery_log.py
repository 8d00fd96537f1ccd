"""The notification delivery log as admins read it (newest first, filtered) and the retry
of a failed delivery, each owning its transaction (``notify_delivery`` does the work)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.notifications import notify_delivery
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models_notify import NotificationDelivery

View = dict[str, Any]


def delivery_view(row: NotificationDelivery) -> View:
    """A delivery, its payload reduced to its summary; when it is next tried only while it
    is pending."""
    return {
        "id": row.id, "channel": row.channel, "target": row.target, "kind": row.kind,
        "request_id": row.request_id, "summary": str(row.payload.get("summary", "")),
        "state": row.state, "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.state == "pending" else None,
        "last_error": row.last_error, "created_at": row.created_at,
        "delivered_at": row.delivered_at,
    }  # fmt: skip


def page(
    sessions: sessionmaker[Session],
    request_id: str | None,
    state: str | None,
    channel: str | None,
    offset: int,
    limit: int,
) -> tuple[list[View], int]:
    """``limit`` deliveries from ``offset``, newest first, and how many match in all."""
    with read_transaction(sessions) as session:
        rows, total = notify_delivery.page(session, request_id=request_id, state=state,
                                           channel=channel, offset=offset, limit=limit)  # fmt: skip
        return [delivery_view(r) for r in rows], total


def retry(sessions: sessionmaker[Session], delivery_id: str, actor: audit.Actor) -> View:
    with transaction(sessions) as session:
        return delivery_view(notify_delivery.retry(session, delivery_id, actor))
