"""The notification outbox: notices become delivery rows in the same transaction that
records why (the audit cursor moves with them), so nothing is lost and nothing blocks.

The producer reads the audit log after its cursor (audit appends are serialized, so ``seq``
order is commit order) and asks ``domain.notifications.plan_for`` what each event means;
the expiry duty adds the ten-minute warnings. Delivery is ``notify_delivery``'s job.

When a request leaves ``pending`` (approved, rejected, cancelled, …), every approval message
a channel can edit (Slack) gets an update delivery (``APPROVAL_UPDATE``): the outcome in
place of the buttons. See ``enqueue_approval_updates``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.domain.notifications import (
    APPROVAL_UPDATE,
    EXPIRY_WARNING,
    UPDATES_KEY,
    Audience,
    FlowNotify,
    Planned,
    approval_update_dedupe,
    channel_options,
    expiry_dedupe,
    left_pending,
    needs_expiry_warning,
    plan_for,
)
from grantflow.domain.request_states import RequestState
from grantflow.notify.base import Channel, Notice, NoticeKind, UpdatableChannel
from grantflow.notify.payload import from_payload, to_payload
from grantflow.services.notifications import notice_building
from grantflow.store.models import AccessFlow, AccessRequest, AuditEvent, User
from grantflow.store.models_notify import NotificationCursor, NotificationDelivery
from grantflow.store.types import utcnow

PRODUCER = "audit"
BATCH = 200


@dataclass(frozen=True, slots=True)
class Outbox:
    """What producing needs: the configured channels and where the web UI lives."""

    channels: Sequence[Channel]
    base_url: str


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def flow_notify(session: Session, request: AccessRequest) -> FlowNotify | None:
    flow = session.get(AccessFlow, request.flow_id) if request.flow_id else None
    raw = (flow.definition if flow else {}).get("notify")
    if raw is None:
        return None
    try:
        return FlowNotify.model_validate(raw)
    except ValidationError:
        return None  # stored before validation existed: the deployment's defaults apply


def enqueue(session: Session, outbox: Outbox, notice: Notice, notify: FlowNotify | None,
            dedupe: str) -> int:  # fmt: skip
    """One pending delivery per channel and target; a key seen before is skipped."""
    wanted: dict[str, tuple[str, str]] = {}
    for channel in outbox.channels:
        options = channel_options(notify, channel.name)
        if options is None:
            continue
        for target in channel.targets(notice, options):
            wanted.setdefault(f"{dedupe}:{channel.name}:{target}", (channel.name, target))
    if not wanted:
        return 0
    seen = set(
        session.scalars(
            select(NotificationDelivery.dedupe_key).where(
                NotificationDelivery.dedupe_key.in_(wanted)
            )
        )
    )
    payload = to_payload(notice)
    now = utcnow()
    added = 0
    for key, (channel_name, target) in wanted.items():
        if key in seen:
            continue
        session.add(NotificationDelivery(
            dedupe_key=key, channel=channel_name, target=target, kind=notice.kind.value,
            request_id=notice.request_id, payload=payload, state="pending", attempts=0,
            next_attempt_at=now, created_at=now,
        ))  # fmt: skip
        added += 1
    session.flush()
    return added


def _request_of(session: Session, event: AuditEvent) -> AccessRequest | None:
    if event.target_type == "access_request" and event.target_id:
        return session.get(AccessRequest, event.target_id)
    request_id = event.data.get("request_id")
    return session.get(AccessRequest, str(request_id)) if request_id else None


def _state_at(event: AuditEvent, request: AccessRequest) -> str:
    if event.action == "request.created":
        return RequestState.PENDING.value
    return str(event.data.get("to") or request.state)


def enqueue_approval_updates(session: Session, outbox: Outbox, request: AccessRequest,
                             event: AuditEvent, state: str) -> int:  # fmt: skip
    """The request left pending (``event`` moved it to ``state``): one update delivery per
    approval message a channel can edit, showing the outcome instead of the buttons.

    Every approval delivery of the request on an updatable channel counts, whether it is
    delivered (its receipt says which message) or still pending. A pending one is the case
    where the decision came before the message was posted: the simplest correct behaviour is
    to let it post (with buttons, briefly) and update it right after — the update delivery
    waits for its approval delivery (``notify_delivery.claim_due`` defers it, and delivering
    the approval wakes it). Approval deliveries that failed, or were delivered without a
    receipt (before receipts were kept), have no message to edit and are left alone. The
    dedupe key (approval delivery, outcome) makes each message updated once.
    """
    updatable = {c.name for c in outbox.channels if isinstance(c, UpdatableChannel)}
    if not updatable:
        return 0
    approvals = session.scalars(
        select(NotificationDelivery)
        .where(
            NotificationDelivery.request_id == request.id,
            NotificationDelivery.kind == NoticeKind.APPROVAL_NEEDED.value,
            NotificationDelivery.channel.in_(updatable),
            NotificationDelivery.state != "failed",
        )
        .order_by(NotificationDelivery.created_at, NotificationDelivery.id)
    ).all()
    wanted = {approval_update_dedupe(a.id, state): a for a in approvals
              if a.state == "pending" or a.receipt}  # fmt: skip
    if not wanted:
        return 0
    seen = set(session.scalars(select(NotificationDelivery.dedupe_key).where(
        NotificationDelivery.dedupe_key.in_(wanted))))  # fmt: skip
    by_user = event.actor_type == "user" and event.actor_id
    user = session.get(User, event.actor_id) if by_user else None
    actor = notice_building.recipient(user) if user is not None else None
    reason = event.data.get("reason")
    now = utcnow()
    added = 0
    for key, approval in wanted.items():
        if key in seen:
            continue
        notice = replace(from_payload(approval.payload), state=state, actor=actor,
                         reason=str(reason) if reason else None,
                         occurred_at=event.occurred_at)  # fmt: skip
        session.add(NotificationDelivery(
            dedupe_key=key, channel=approval.channel, target=approval.target,
            kind=APPROVAL_UPDATE, request_id=request.id,
            payload={**to_payload(notice), UPDATES_KEY: approval.id}, state="pending",
            attempts=0, next_attempt_at=now, created_at=now,
        ))  # fmt: skip
        added += 1
    session.flush()
    return added


def _produce_one(session: Session, outbox: Outbox, event: AuditEvent) -> int:
    if not event.action.startswith(("request.", "grant.")):
        return 0
    request = _request_of(session, event)
    if request is None:
        return 0
    added = 0
    state = left_pending(event.data) if event.action.startswith("request.") else None
    if state is not None:
        added += enqueue_approval_updates(session, outbox, request, event, state)
    auto = (request.approval or {}).get("mode") == "auto"
    planned: Planned | None = plan_for(event.action, event.data, auto_approval=auto)
    if planned is None:
        return added
    notice = notice_building.build(
        session, request, planned.kind, occurred_at=event.occurred_at,
        base_url=outbox.base_url, state=_state_at(event, request), reason=planned.reason,
        recipients=notice_building.audience(session, request, planned.audience),
    )  # fmt: skip
    dedupe = planned.dedupe or f"event:{event.id}"
    return added + enqueue(session, outbox, notice, flow_notify(session, request), dedupe)


def _lock_cursor(session: Session) -> NotificationCursor | None:
    """This producer's cursor, locked; None when another replica holds it (or on first run,
    when the cursor starts at the end of the log: notices are about what happens next)."""
    query = select(NotificationCursor).where(NotificationCursor.producer == PRODUCER)
    if _postgresql(session):
        if session.scalar(select(NotificationCursor.producer).where(
                NotificationCursor.producer == PRODUCER)) is not None:  # fmt: skip
            return session.scalar(query.with_for_update(skip_locked=True))
    else:
        cursor = session.scalar(query)
        if cursor is not None:
            return cursor
    start = session.scalar(select(func.max(AuditEvent.seq))) or 0
    session.add(NotificationCursor(producer=PRODUCER, position=start))
    session.flush()
    return None


def produce(session: Session, outbox: Outbox, batch: int = BATCH) -> int:
    """Turn the audit events after the cursor into deliveries; returns deliveries added."""
    cursor = _lock_cursor(session)
    if cursor is None:
        return 0
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.seq > cursor.position)
        .order_by(AuditEvent.seq)
        .limit(batch)
    ).all()
    added = sum(_produce_one(session, outbox, event) for event in events)
    if events:
        cursor.position = events[-1].seq
    return added


def warn_expiring(session: Session, outbox: Outbox) -> int:
    """Queue the ten-minute warning for granted requests about to end, once per end time."""
    now = utcnow()
    query = select(AccessRequest).where(
        AccessRequest.state == RequestState.GRANTED.value,
        AccessRequest.expires_at > now,
        AccessRequest.expires_at <= now + EXPIRY_WARNING,
    )
    if _postgresql(session):
        query = query.with_for_update(skip_locked=True)
    added = 0
    for request in session.scalars(query.limit(500)).all():
        assert request.expires_at is not None
        if not needs_expiry_warning(request.granted_at, request.expires_at, now):
            continue
        dedupe = expiry_dedupe(request.id, request.expires_at)
        done = session.scalar(
            select(NotificationDelivery.id)
            .where(
                NotificationDelivery.request_id == request.id,
                NotificationDelivery.dedupe_key.startswith(dedupe + ":", autoescape=True),
            )
            .limit(1)
        )
        if done is not None:
            continue
        notice = notice_building.build(
            session, request, NoticeKind.EXPIRING, occurred_at=now, base_url=outbox.base_url,
            recipients=notice_building.audience(session, request, Audience.REQUESTER),
        )  # fmt: skip
        added += enqueue(session, outbox, notice, flow_notify(session, request), dedupe)
    return added
