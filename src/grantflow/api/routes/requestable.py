"""What can I request: resources some enabled flow lets this user ask for, with the flows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from grantflow.api.deps import Ctx, CurrentUser
from grantflow.api.paging import MAX_OFFSET
from grantflow.services.access import requestable_page
from grantflow.services.access.eligibility_cache import Criteria

router = APIRouter(prefix="/api/v1", tags=["requestable"])


class FlowOption(BaseModel):
    flow_id: str
    flow_name: str
    permissions: list[str]
    approval: str
    approvers: list[str] = Field(
        default_factory=list, description="who approves a request for this resource, by name"
    )
    max_duration_seconds: int
    justification_required: bool


class Requestable(BaseModel):
    resource_id: str
    integration_id: str
    integration_name: str = ""
    type: str
    name: str
    aws_id: str
    account_id: str | None
    region: str | None
    tags: dict[str, str]
    flows: list[FlowOption]


class RequestablePage(BaseModel):
    items: list[Requestable]
    total: int
    offset: int
    limit: int


@router.get("/requestable", response_model=RequestablePage)
def requestable(
    ctx: Ctx,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    account: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    integration_id: Annotated[str | None, Query(max_length=36)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RequestablePage:
    criteria = Criteria(type=type or None, account=account or None,
                        integration_id=integration_id or None, q=q or None)  # fmt: skip
    total, items = requestable_page.page(ctx.sessions, user.id, criteria, offset, limit)
    return RequestablePage(items=[Requestable.model_validate(i) for i in items], total=total,
                           offset=offset, limit=limit)  # fmt: skip
