"""Access flows (admin): who may request what, approved by whom, for how long."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.patching import refuse_null
from grantflow.api.withdrawals import RevokeLive, WithdrawalPublic, withdrawal_public
from grantflow.domain.flows import FlowDefinition
from grantflow.domain.notifications import FlowNotify
from grantflow.services.access import flow_actions, flows_as_code
from grantflow.services.errors import Invalid
from grantflow.settings import Settings

router = APIRouter(prefix="/api/v1/access-flows", tags=["access flows"])

NAME = Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")


class FlowCreate(BaseModel):
    name: str = NAME
    description: str = Field(default="", max_length=2000)
    enabled: bool = True
    integration_id: str
    definition: FlowDefinition


class FlowUpdate(BaseModel):
    name: str | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$"
    )
    description: str | SkipJsonSchema[None] = Field(default=None, max_length=2000)
    enabled: bool | SkipJsonSchema[None] = None
    definition: FlowDefinition | SkipJsonSchema[None] = None

    _not_null = field_validator("name", "description", "enabled", "definition",
                                mode="before")(refuse_null)  # fmt: skip


class FlowPublic(BaseModel):
    id: str
    name: str
    description: str
    enabled: bool
    integration_id: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    warnings: list[str] = Field(
        default_factory=list,
        description="What the flow names that is excluded, unknown or deleted (it still saves)",
    )


def _check_webhooks(notify: object, settings: Settings, where: str) -> None:
    """A flow may only name webhooks this deployment configures (GRANTFLOW_WEBHOOKS)."""
    names = notify.webhooks if isinstance(notify, FlowNotify) else None
    if isinstance(notify, dict) and isinstance(notify.get("webhooks"), list):
        names = [str(n) for n in notify["webhooks"]]
    configured = {w.name for w in settings.webhooks}
    unknown = [n for n in names or [] if n not in configured]
    if unknown:
        known = ", ".join(sorted(configured)) or "none"
        raise Invalid(f"unknown webhook(s) {', '.join(unknown)}; configured: {known}",
                      field=f"{where}.notify.webhooks")  # fmt: skip


@router.post("", response_model=FlowPublic, status_code=status.HTTP_201_CREATED)
def create(body: FlowCreate, ctx: Ctx, admin: AdminUser, request: Request) -> FlowPublic:
    _check_webhooks(body.definition.notify, ctx.settings, "definition")
    found = flow_actions.create(
        ctx.sessions, body.name, body.description, body.enabled, body.integration_id,
        body.definition, actor_of(admin, request),
    )  # fmt: skip
    return FlowPublic.model_validate(found)


@router.get("", response_model=list[FlowPublic])
def list_flows(ctx: Ctx, _admin: AdminUser) -> list[FlowPublic]:
    return [FlowPublic.model_validate(f) for f in flow_actions.listed(ctx.sessions)]


class ApplyResult(BaseModel):
    dry_run: bool
    created: list[str]
    changed: list[str]
    deleted: list[str]
    unchanged: list[str]


@router.get("/export", response_model=flows_as_code.FlowsDoc, tags=["flows as code"])
def export_flows(ctx: Ctx, _admin: AdminUser) -> flows_as_code.FlowsDoc:
    """Every flow, referring to integrations, users and groups by name."""
    return flow_actions.export(ctx.sessions)


@router.post("/apply", response_model=ApplyResult, tags=["flows as code"])
def apply_flows(
    body: flows_as_code.FlowsDoc,
    ctx: Ctx,
    admin: AdminUser,
    request: Request,
    dry_run: bool = False,
) -> ApplyResult:
    """Make the flows exactly the document's: create, change, delete (or only say so)."""
    for i, flow in enumerate(body.flows):
        _check_webhooks(flow.definition.get("notify"), ctx.settings, f"flows.{i}.definition")
    diff = flow_actions.apply(ctx.sessions, body, actor_of(admin, request), dry_run)
    return ApplyResult(
        dry_run=dry_run,
        created=diff.created,
        changed=diff.changed,
        deleted=diff.deleted,
        unchanged=diff.unchanged,
    )


class PermissionChoices(BaseModel):
    resource_type: str
    names: list[str] | None = Field(
        description="what a flow of this integration may offer on the type; null: any name "
        "(the permission sets are not known before the first sync)"
    )


@router.get("/permissions", response_model=list[PermissionChoices])
def permission_choices(integration_id: str, ctx: Ctx, _admin: AdminUser) -> list[PermissionChoices]:
    """The permissions a flow may name, per resource type the integration syncs: the synced
    permission sets (aws-account) and pooled permission levels."""
    return [
        PermissionChoices(resource_type=rtype, names=names)
        for rtype, names in flow_actions.permission_choices(ctx.sessions, integration_id)
    ]


@router.get("/{flow_id}", response_model=FlowPublic)
def get(flow_id: str, ctx: Ctx, _admin: AdminUser) -> FlowPublic:
    return FlowPublic.model_validate(flow_actions.show(ctx.sessions, flow_id))


class FlowChanged(FlowPublic):
    withdrawal: WithdrawalPublic | None = Field(
        default=None, description="When the flow is disabled: what became of its requests"
    )


class FlowDeleted(BaseModel):
    id: str
    name: str
    withdrawal: WithdrawalPublic = Field(description="What became of the flow's requests")


@router.patch("/{flow_id}", response_model=FlowChanged)
def update(
    flow_id: str, body: FlowUpdate, ctx: Ctx, admin: AdminUser, request: Request,
    revoke_live: RevokeLive = False,
) -> FlowChanged:  # fmt: skip
    """Disabling a flow fails its pending requests; see ``revoke_live`` for its live ones."""
    if body.definition is not None:
        _check_webhooks(body.definition.notify, ctx.settings, "definition")
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    found, withdrawal = flow_actions.update(ctx.sessions, flow_id, changes,
                                            actor_of(admin, request), revoke_live)  # fmt: skip
    again = f"PATCH /api/v1/access-flows/{found['id']}?revoke_live=true"
    return FlowChanged(
        **FlowPublic.model_validate(found).model_dump(),
        withdrawal=withdrawal_public(withdrawal, again) if withdrawal else None,
    )


@router.delete("/{flow_id}", response_model=FlowDeleted)
def delete(
    flow_id: str, ctx: Ctx, admin: AdminUser, request: Request, revoke_live: RevokeLive = False
) -> FlowDeleted:
    """Its pending requests fail; see ``revoke_live`` for its live ones."""
    flow_name, withdrawal = flow_actions.delete(ctx.sessions, flow_id, actor_of(admin, request),
                                                revoke_live)  # fmt: skip
    return FlowDeleted(id=flow_id, name=flow_name, withdrawal=withdrawal_public(withdrawal, None))
