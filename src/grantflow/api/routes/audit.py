"""The activity log for admins: verify the hash chains, query them, export (streamed); all reads."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.paging import MAX_CURSOR
from grantflow.api.query_times import utc
from grantflow.domain.audit_chain import BreakKind
from grantflow.services.audit import audit_query, audit_reads, audit_sinks

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["audit"])


class ChainBreakPublic(BaseModel):
    seq: int
    reason: str
    kind: BreakKind


class ChainPublic(BaseModel):
    events: int
    last_seq: int | None
    head_hash: str | None
    unkeyed: int
    broken: ChainBreakPublic | None = Field(default=None, alias="break")


class CheckpointCheckPublic(BaseModel):
    sink: str
    seq: int | None
    session_seq: int | None
    at: datetime | None
    problem: str | None


class ChainVerificationPublic(BaseModel):
    ok: bool
    events: int
    last_seq: int | None
    head_hash: str | None
    unkeyed: int
    broken: ChainBreakPublic | None = Field(default=None, alias="break")
    session: ChainPublic | None = None
    checkpoints: list[CheckpointCheckPublic] = []


class AuditEventPublic(BaseModel):
    seq: int
    id: str
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    source: str
    request_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str | None  # the audit key the hash is an HMAC under (None: before the key)


class AuditEventPage(BaseModel):
    items: list[AuditEventPublic]
    next_before: int | None


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


def _filter(
    actor: Annotated[str | None, Query(max_length=255, description="actor id or username")] = None,
    action: Annotated[str | None, Query(max_length=64, description="exact, or prefix*")] = None,
    integration: Annotated[str | None, Query(max_length=64)] = None,
    resource: Annotated[str | None, Query(max_length=64)] = None,
    request: Annotated[str | None, Query(max_length=64, description="access request id")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> audit_query.AuditFilter:
    return audit_query.AuditFilter(actor, action, integration, resource, request,
                                   utc(since), utc(until))  # fmt: skip


Filters = Annotated[audit_query.AuditFilter, Depends(_filter)]


@router.get("/audit/verify", response_model=ChainVerificationPublic)
def verify(ctx: Ctx, _admin: AdminUser) -> ChainVerificationPublic:
    """Walk both hash chains (activity log, session audit) in order and compare their tails
    with the latest checkpoint of each sink; report the first edited, removed, inserted,
    reordered or unkeyed event, a truncation or a rewrite (``break``: its ``seq``, why and
    what kind), or that all is intact. A read: it writes nothing and takes no write lock."""
    found = audit_sinks.read_latest(audit_sinks.build(ctx.settings))
    result = audit_reads.verify(ctx.sessions, found)
    return ChainVerificationPublic.model_validate(result.as_dict())


@router.get("/audit-events", response_model=AuditEventPage)
def list_events(
    ctx: Ctx,
    _admin: AdminUser,
    filters: Filters,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_CURSOR, description="seq cursor from next_before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditEventPage:
    found = audit_reads.page(ctx.sessions, filters, limit, before)
    return AuditEventPage.model_validate({"items": found.items, "next_before": found.next_before})


_MEDIA = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.JSONL: "application/x-ndjson"}


@router.get("/audit-events/export", response_class=StreamingResponse)
def export(
    ctx: Ctx, admin: AdminUser, request: Request, filters: Filters,
    fmt: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.JSONL,
) -> StreamingResponse:  # fmt: skip
    """Every matching event, oldest first, streamed: memory stays bounded by one page of rows
    whatever the size of the log, and no transaction stays open during the download. A read:
    it writes nothing and takes no write lock (who exported what is in the server log)."""
    log.info("audit_exported", actor_id=admin.id, request_id=actor_of(admin, request).request_id,
             format=fmt.value, **_described(filters))  # fmt: skip
    rows = audit_query.stream_rows(ctx.sessions, filters)
    body = (audit_query.csv_lines(rows, audit_query.CSV_COLUMNS) if fmt is ExportFormat.CSV
            else audit_query.jsonl(rows))  # fmt: skip
    name = f"audit-events-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.{fmt.value}"
    return StreamingResponse(
        body,
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _described(filters: audit_query.AuditFilter) -> dict[str, str]:
    return {k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in asdict(filters).items() if v is not None}  # fmt: skip
