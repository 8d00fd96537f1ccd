"""What was done in AWS with a request's access (CloudTrail), for those who may see it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.api.deps import Ctx, CurrentUser
from grantflow.api.routes.access_requests import _load as load_visible_request
from grantflow.domain.authz import Principal
from grantflow.services.audit import audit_query
from grantflow.store.db import read_transaction
from grantflow.store.models import Grant
from grantflow.store.models_audit import SessionAuditEvent

router = APIRouter(prefix="/api/v1/access-requests", tags=["access requests"])

CSV_COLUMNS = ("event_time", "event_source", "event_name", "error_code", "account_id",
               "source_ip", "grant_id", "event_id")  # fmt: skip
CHUNK = 1000


class SessionEventPublic(BaseModel):
    event_id: str
    grant_id: str
    event_time: datetime
    event_source: str
    event_name: str
    error_code: str | None
    account_id: str
    source_ip: str | None


class CountPublic(BaseModel):
    name: str
    count: int


class SessionAuditPublic(BaseModel):
    request_id: str
    count: int
    errors: int
    first: datetime | None
    last: datetime | None
    services: list[CountPublic]
    actions: list[CountPublic]
    error_codes: list[CountPublic]
    events: list[SessionEventPublic]  # newest first, at most ``limit``


def _counts(session: Session, request_id: str, column: Any) -> list[CountPublic]:
    query = (
        select(column, func.count())
        .join(Grant, Grant.id == SessionAuditEvent.grant_id)
        .where(Grant.request_id == request_id, column.is_not(None))
        .group_by(column)
        .order_by(func.count().desc(), column)
    )
    return [CountPublic(name=name, count=count) for name, count in session.execute(query)]


def _visible(session: Session, request_id: str, principal: Principal) -> None:
    """Raises NotFound unless the requester, an approver or an admin asks."""
    load_visible_request(session, request_id, principal)


def _of_request(request_id: str) -> Any:
    return select(SessionAuditEvent).join(Grant, Grant.id == SessionAuditEvent.grant_id).where(
        Grant.request_id == request_id)  # fmt: skip


@router.get("/{request_id}/session-audit", response_model=SessionAuditPublic)
def session_audit(
    request_id: str, ctx: Ctx, user: CurrentUser,
    limit: Annotated[int, Query(ge=0, le=1000)] = 200,
) -> SessionAuditPublic:  # fmt: skip
    """Count, services, actions, errors, first and last event, and the latest events."""
    with read_transaction(ctx.sessions) as session:
        _visible(session, request_id, user)
        base = _of_request(request_id).subquery()
        count, errors, first, last = session.execute(
            select(func.count(), func.count(base.c.error_code), func.min(base.c.event_time),
                   func.max(base.c.event_time))).one()  # fmt: skip
        events = session.scalars(
            _of_request(request_id).order_by(SessionAuditEvent.event_time.desc()).limit(limit)
        ).all()
        return SessionAuditPublic(
            request_id=request_id, count=count, errors=errors, first=first, last=last,
            services=_counts(session, request_id, SessionAuditEvent.event_source),
            actions=_counts(session, request_id, SessionAuditEvent.event_name),
            error_codes=_counts(session, request_id, SessionAuditEvent.error_code),
            events=[SessionEventPublic.model_validate(e, from_attributes=True) for e in events],
        )  # fmt: skip


def _rows(sessions: sessionmaker[Session], request_id: str) -> Iterator[dict[str, Any]]:
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
            rows = session.scalars(ordered.limit(CHUNK)).all()
            chunk = [{c: getattr(r, c) for c in CSV_COLUMNS} for r in rows]
        yield from chunk
        if len(chunk) < CHUNK:
            return
        after = (chunk[-1]["event_time"], chunk[-1]["event_id"])


@router.get("/{request_id}/session-audit.csv", response_class=StreamingResponse)
def session_audit_csv(request_id: str, ctx: Ctx, user: CurrentUser) -> StreamingResponse:
    """Every event made with the request's access, oldest first, as CSV (streamed)."""
    with read_transaction(ctx.sessions) as session:
        _visible(session, request_id, user)
    name = f"session-audit-{request_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(
        audit_query.csv_lines(_rows(ctx.sessions, request_id), CSV_COLUMNS),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
