"""What can I request: resources some enabled flow lets this user ask for, with the flows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from grantflow.api.deps import Ctx, CurrentUser
from grantflow.api.paging import MAX_OFFSET
from grantflow.domain.flows import FlowView, resolve_approvers
from grantflow.services.access import requestable as requestable_service
from grantflow.services.access.eligibility_cache import Criteria
from grantflow.services.access.flow_views import resource_view
from grantflow.services.errors import NotFound
from grantflow.services.identity.approver_names import ApproverNames
from grantflow.store.db import read_transaction
from grantflow.store.models import Integration, Resource, User

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
    with read_transaction(ctx.sessions) as session:
        me = session.get(User, user.id)
        if me is None:
            raise NotFound("user not found")
        flows = requestable_service.flows_for(session, me)
        total, rows = requestable_service.page(session, flows, criteria, offset, limit)
        namer = ApproverNames(session)
        names = {i.id: i.name for i in session.scalars(select(Integration))}
        items = [_item(resource, matching, namer, names.get(resource.integration_id, ""))
                 for resource, matching in rows]  # fmt: skip
    return RequestablePage(items=items, total=total, offset=offset, limit=limit)


def _item(
    resource: Resource, flows: list[FlowView], namer: ApproverNames, integration_name: str
) -> Requestable:
    view = resource_view(resource)
    options = [
        FlowOption(
            flow_id=f.id,
            flow_name=f.name,
            permissions=f.definition.permissions.get(resource.type, []),
            approval=f.definition.approval.mode.value,
            approvers=namer.of_sets(resolve_approvers(f, [view])),
            max_duration_seconds=f.definition.max_duration_seconds,
            justification_required=f.definition.justification_required,
        )
        for f in flows
    ]
    return Requestable(
        resource_id=resource.id,
        integration_id=resource.integration_id,
        integration_name=integration_name,
        type=resource.type,
        name=resource.name,
        aws_id=resource.aws_id,
        account_id=resource.account_id,
        region=resource.region,
        tags={str(k): str(v) for k, v in (resource.tags or {}).items()},
        flows=options,
    )
