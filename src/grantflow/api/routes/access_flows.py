"""Access flows (admin): who may request what, approved by whom, for how long."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.domain.flows import FlowDefinition
from grantflow.services import access_flows
from grantflow.store.db import transaction
from grantflow.store.models import AccessFlow

router = APIRouter(prefix="/api/v1/access-flows", tags=["access flows"])

NAME = Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")


class FlowCreate(BaseModel):
    name: str = NAME
    description: str = Field(default="", max_length=2000)
    enabled: bool = True
    integration_id: str
    definition: FlowDefinition


class FlowUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    definition: FlowDefinition | None = None


class FlowPublic(BaseModel):
    id: str
    name: str
    description: str
    enabled: bool
    integration_id: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _public(row: AccessFlow) -> FlowPublic:
    return FlowPublic.model_validate(row, from_attributes=True)


@router.post("", response_model=FlowPublic, status_code=status.HTTP_201_CREATED)
def create(body: FlowCreate, ctx: Ctx, admin: AdminUser, request: Request) -> FlowPublic:
    with transaction(ctx.sessions) as session:
        row = access_flows.create(session, body.name, body.description, body.enabled,
                                  body.integration_id, body.definition,
                                  actor_of(admin, request))  # fmt: skip
        return _public(row)


@router.get("", response_model=list[FlowPublic])
def list_flows(ctx: Ctx, _admin: AdminUser) -> list[FlowPublic]:
    with transaction(ctx.sessions) as session:
        return [_public(r) for r in session.scalars(select(AccessFlow).order_by(AccessFlow.name))]


@router.get("/{flow_id}", response_model=FlowPublic)
def get(flow_id: str, ctx: Ctx, _admin: AdminUser) -> FlowPublic:
    with transaction(ctx.sessions) as session:
        return _public(access_flows.get(session, flow_id))


@router.patch("/{flow_id}", response_model=FlowPublic)
def update(
    flow_id: str, body: FlowUpdate, ctx: Ctx, admin: AdminUser, request: Request
) -> FlowPublic:
    with transaction(ctx.sessions) as session:
        row = access_flows.get(session, flow_id)
        changes = {k: getattr(body, k) for k in body.model_fields_set}
        access_flows.update(session, row, changes, actor_of(admin, request))
        return _public(row)


@router.delete("/{flow_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(flow_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> None:
    with transaction(ctx.sessions) as session:
        access_flows.delete(session, access_flows.get(session, flow_id), actor_of(admin, request))
