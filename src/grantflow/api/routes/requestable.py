"""What can I request: resources some enabled flow lets this user ask for, with the flows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, or_, select

from grantflow.api.deps import Ctx, CurrentUser
from grantflow.domain.flows import in_scope, requestor_matches
from grantflow.services import access_flows
from grantflow.services.errors import NotFound
from grantflow.store.db import transaction
from grantflow.store.models import Resource, User

router = APIRouter(prefix="/api/v1", tags=["requestable"])


class FlowOption(BaseModel):
    flow_id: str
    flow_name: str
    permissions: list[str]
    approval: str
    max_duration_seconds: int
    justification_required: bool


class Requestable(BaseModel):
    resource_id: str
    integration_id: str
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
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RequestablePage:
    with transaction(ctx.sessions) as session:
        me = session.get(User, user.id)
        if me is None:
            raise NotFound("user not found")
        requester = access_flows.requester_view(session, me)
        flows = [
            f for f in access_flows.flow_views(session)
            if f.enabled and requestor_matches(f.definition.requestors, requester)
        ]  # fmt: skip
        if not flows:
            return RequestablePage(items=[], total=0, offset=offset, limit=limit)
        types = {t for f in flows for t in f.definition.scope.resource_types}
        integrations_ = {f.integration_id for f in flows}
        query = select(Resource).where(
            Resource.integration_id.in_(integrations_), Resource.type.in_(types)
        )
        if type:
            query = query.where(Resource.type == type)
        if account:
            query = query.where(Resource.account_id == account)
        if q:
            like = f"%{q.lower()}%"
            query = query.where(
                or_(func.lower(Resource.name).like(like), func.lower(Resource.aws_id).like(like))
            )
        items: list[Requestable] = []
        for resource in session.scalars(query.order_by(Resource.type, Resource.name)):
            view = access_flows.resource_view(resource)
            options = [
                FlowOption(
                    flow_id=f.id, flow_name=f.name,
                    permissions=f.definition.permissions.get(resource.type, []),
                    approval=f.definition.approval.mode.value,
                    max_duration_seconds=f.definition.max_duration_seconds,
                    justification_required=f.definition.justification_required,
                )
                for f in flows
                if f.integration_id == resource.integration_id
                and in_scope(f.definition.scope, view) is None
            ]  # fmt: skip
            if options:
                items.append(Requestable(
                    resource_id=resource.id, integration_id=resource.integration_id,
                    type=resource.type, name=resource.name, aws_id=resource.aws_id,
                    account_id=resource.account_id, region=resource.region,
                    tags=view.tags, flows=options,
                ))  # fmt: skip
    return RequestablePage(items=items[offset : offset + limit], total=len(items),
                           offset=offset, limit=limit)  # fmt: skip
