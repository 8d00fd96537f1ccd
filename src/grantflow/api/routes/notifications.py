"""The notification delivery log (admin): what was sent, what is retrying, what failed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.paging import MAX_OFFSET
from grantflow.notify.registry import configured_names
from grantflow.services.notifications import delivery_log

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class DeliveryPublic(BaseModel):
    id: str
    channel: str
    target: str
    kind: str
    request_id: str | None
    summary: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    total: int
    offset: int
    limit: int


class ChannelsPublic(BaseModel):
    """Configured channels; webhooks by name only (their URLs and secrets stay private)."""

    channels: list[str]
    webhooks: list[str]
    max_attempts: int


@router.get("", response_model=DeliveryPage)
def list_deliveries(
    ctx: Ctx,
    _admin: AdminUser,
    request_id: Annotated[str | None, Query(max_length=36)] = None,
    state: Literal["pending", "delivered", "failed"] | None = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveryPage:
    """Newest first; filter by access request, state or channel."""
    rows, total = delivery_log.page(ctx.sessions, request_id, state, channel, offset, limit)
    return DeliveryPage(items=[DeliveryPublic.model_validate(r) for r in rows], total=total,
                        offset=offset, limit=limit)  # fmt: skip


@router.get("/channels", response_model=ChannelsPublic)
def channels(ctx: Ctx, _admin: AdminUser) -> ChannelsPublic:
    settings = ctx.settings
    return ChannelsPublic(channels=configured_names(settings),
                          webhooks=[w.name for w in settings.webhooks],
                          max_attempts=settings.notify_max_attempts)  # fmt: skip


@router.post("/{delivery_id}/retry", response_model=DeliveryPublic)
def retry(delivery_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> DeliveryPublic:
    """Queue a failed delivery again now (it is sent within a second or two)."""
    found = delivery_log.retry(ctx.sessions, delivery_id, actor_of(admin, request))
    return DeliveryPublic.model_validate(found)
