"""What was done in AWS with a request's access (CloudTrail), for those who may see it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from grantflow.api.deps import Ctx, CurrentUser
from grantflow.services.access import request_session_audit
from grantflow.services.audit import audit_query

router = APIRouter(prefix="/api/v1/access-requests", tags=["access requests"])


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


@router.get("/{request_id}/session-audit", response_model=SessionAuditPublic)
def session_audit(
    request_id: str, ctx: Ctx, user: CurrentUser,
    limit: Annotated[int, Query(ge=0, le=1000)] = 200,
) -> SessionAuditPublic:  # fmt: skip
    """Count, services, actions, errors, first and last event, and the latest events."""
    found = request_session_audit.summary(ctx.sessions, request_id, user, limit)
    return SessionAuditPublic.model_validate(found)


@router.get("/{request_id}/session-audit.csv", response_class=StreamingResponse)
def session_audit_csv(request_id: str, ctx: Ctx, user: CurrentUser) -> StreamingResponse:
    """Every event made with the request's access, oldest first, as CSV (streamed)."""
    request_session_audit.check_visible(ctx.sessions, request_id, user)
    name = f"session-audit-{request_id}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.csv"
    rows = request_session_audit.rows(ctx.sessions, request_id)
    return StreamingResponse(
        audit_query.csv_lines(rows, request_session_audit.CSV_COLUMNS),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
