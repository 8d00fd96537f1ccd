"""Reports for auditors: the access activity report as CSV."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from grantflow.api.deps import AdminUser, Ctx
from grantflow.api.query_times import utc
from grantflow.services.audit import activity_report, audit_query

router = APIRouter(prefix="/api/v1/reports", tags=["audit"])


@router.get("/access.csv", response_class=StreamingResponse)
def access_report(
    ctx: Ctx, _admin: AdminUser, since: datetime | None = None, until: datetime | None = None
) -> StreamingResponse:
    """One row per access request made in ``[since, until)``: requester, approvers and their
    reasons, resources, permission, requested/granted/revoked times, how long access was held,
    justification and status. Streamed."""
    rows = activity_report.stream(ctx.sessions, utc(since), utc(until))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        audit_query.csv_lines(rows, activity_report.COLUMNS),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="access-report-{stamp}.csv"'},
    )
