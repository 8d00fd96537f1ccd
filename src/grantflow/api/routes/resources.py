"""The discovered resources, filtered and paged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, or_, select

from grantflow.api.deps import Ctx, CurrentUser
from grantflow.api.paging import MAX_OFFSET
from grantflow.services.errors import Invalid
from grantflow.store.db import read_transaction
from grantflow.store.models import Resource

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


def _filtered(
    integration_id: str | None,
    type_: str | None,
    account: str | None,
    ou: str | None,
    tag: str | None,
    q: str | None,
) -> Select[Any]:
    query = select(Resource)
    if integration_id:
        query = query.where(Resource.integration_id == integration_id)
    if type_:
        query = query.where(Resource.type == type_)
    if account:
        query = query.where(Resource.account_id == account)
    if ou:
        # ou_path holds OU ids from the root down; a JSON text match finds nested members.
        query = query.where(func.cast(Resource.ou_path, _text()).contains(f'"{ou}"'))
    if tag:
        key, _, value = tag.partition("=")
        if not key:
            raise Invalid("tag filter is key or key=value", field="tag")
        needle = f'"{key}": "{value}"' if value else f'"{key}":'
        query = query.where(func.cast(Resource.tags, _text()).contains(needle))
    if q:
        like = f"%{q.lower()}%"
        query = query.where(
            or_(func.lower(Resource.name).like(like), func.lower(Resource.aws_id).like(like))
        )
    return query


def _text() -> Any:
    from sqlalchemy import Text

    return Text()


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
    query = _filtered(integration_id, type, account, ou, tag, q)
    with read_transaction(ctx.sessions) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.order_by(Resource.type, Resource.account_id, Resource.name)
            .offset(offset)
            .limit(limit)
        ).all()
        items = [ResourcePublic.model_validate(r, from_attributes=True) for r in rows]
    return ResourcePage(items=items, total=total, offset=offset, limit=limit)
