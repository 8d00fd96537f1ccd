"""What was done in AWS with a request's access (CloudTrail events of its grants), for those
who may see the request (``request_actions.load_visible``): a summary, and every event
streamed in keyset pages of ``CHUNK`` rows, each page in its own short read transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.authz import Principal
from grantflow.services.access.request_actions import load_visible
from grantflow.store.db import read_transaction
from grantflow.store.models import Grant
from grantflow.store.models_audit import SessionAuditEvent

CSV_COLUMNS = ("event_time", "event_source", "event_name", "error_code", "account_id",
               "source_ip", "grant_id", "event_id")  # fmt: skip
CHUNK = 1000


def _of_request(request_id: str) -> Select[Any]:
    return select(SessionAuditEvent).join(Grant, Grant.id == SessionAuditEvent.grant_id).where(
        Grant.request_id == request_id)  # fmt: skip


def _counts(session: Session, request_id: str, column: Any) -> list[dict[str, Any]]:
    query = (
        select(column, func.count())
        .join(Grant, Grant.id == SessionAuditEvent.grant_id)
        .where(Grant.request_id == request_id, column.is_not(None))
        .group_by(column)
        .order_by(func.count().desc(), column)
    )
    return [{"name": name, "count": count} for name, count in session.execute(query)]


def _event(row: Any) -> dict[str, Any]:
    return {c: getattr(row, c) for c in CSV_COLUMNS}


def summary(
    sessions: sessionmaker[Session], request_id: str, principal: Principal, limit: int
) -> dict[str, Any]:
    """Count, errors, first and last event, counts by service, action and error code, and
    the latest ``limit`` events (newest first). NotFound unless ``principal`` may see it."""
    with read_transaction(sessions) as session:
        load_visible(session, request_id, principal)
        base = _of_request(request_id).subquery()
        count, errors, first, last = session.execute(
            select(func.count(), func.count(base.c.error_code), func.min(base.c.event_time),
                   func.max(base.c.event_time))).one()  # fmt: skip
        events = session.scalars(
            _of_request(request_id).order_by(SessionAuditEvent.event_time.desc()).limit(limit)
        ).all()
        return {
            "request_id": request_id, "count": count, "errors": errors, "first": first,
            "last": last,
            "services": _counts(session, request_id, SessionAuditEvent.event_source),
            "actions": _counts(session, request_id, SessionAuditEvent.event_name),
            "error_codes": _counts(session, request_id, SessionAuditEvent.error_code),
            "events": [_event(e) for e in events],
        }  # fmt: skip


def check_visible(sessions: sessionmaker[Session], request_id: str, principal: Principal) -> None:
    """Raises NotFound unless the requester, an approver or an admin asks."""
    with read_transaction(sessions) as session:
        load_visible(session, request_id, principal)


def rows(sessions: sessionmaker[Session], request_id: str) -> Iterator[dict[str, Any]]:
    """Every event of the request, oldest first (keyset pages by time, then event id)."""
    after: tuple[datetime, str] | None = None
    while True:
        with read_transaction(sessions) as session:
            query = _of_request(request_id)
            if after is not None:
                query = query.where(or_(
                    SessionAuditEvent.event_time > after[0],
                    and_(SessionAuditEvent.event_time == after[0],
                         SessionAuditEvent.event_id > after[1]),
                ))  # fmt: skip
            ordered = query.order_by(SessionAuditEvent.event_time, SessionAuditEvent.event_id)
            chunk = [_event(r) for r in session.scalars(ordered.limit(CHUNK)).all()]
        yield from chunk
        if len(chunk) < CHUNK:
            return
        after = (chunk[-1]["event_time"], chunk[-1]["event_id"])
