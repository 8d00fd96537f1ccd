"""The discovered resources, filtered and paged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from grantflow.api.deps import Ctx, CurrentUser
from grantflow.api.paging import MAX_OFFSET
from grantflow.services.access import resource_lists

router = APIRouter(prefix="/api/v1", tags=["resources"])


class ResourcePublic(BaseModel):
    id: str
    integration_id: str
    type: str
    aws_id: str
    arn: str | None
    name: str
    account_id: str | None
    region: str | None
    ou_path: list[str]
    tags: dict[str, Any]
    owners: list[str]
    attributes: dict[str, Any]


class ResourcePage(BaseModel):
    items: list[ResourcePublic]
    total: int
    offset: int
    limit: int


@router.get("/resources", response_model=ResourcePage)
def list_resources(
    ctx: Ctx,
    _user: CurrentUser,
    integration_id: str | None = None,
    type: Annotated[str | None, Query(alias="type")] = None,
    account: Annotated[str | None, Query(pattern=r"^\d{12}$")] = None,
    ou: Annotated[str | None, Query(pattern=r"^(ou-[0-9a-z-]+|r-[0-9a-z]+)$")] = None,
    tag: Annotated[str | None, Query(max_length=256, description="key or key=value")] = None,
    q: Annotated[str | None, Query(max_length=200, description="name or id contains")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ResourcePage:
    found = resource_lists.ResourceFilter(integration_id, type, account, ou, tag, q)
    result = resource_lists.page_of(ctx.sessions, found, offset, limit)
    items = [ResourcePublic.model_validate(r, from_attributes=True) for r in result.rows]
    return ResourcePage(items=items, total=result.total, offset=offset, limit=limit)
