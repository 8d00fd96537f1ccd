"""Integrations: create, read, update, enable/disable, delete, sync, sync history and a
running sync's progress.

Admins read the full integration (its configuration names the management role, and the
connector id is that role's ExternalId). Members read a public view (`IntegrationSummary`):
name, type, status and what they themselves may request there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from grantflow.api.deps import AdminUser, Ctx, CurrentUser, actor_of
from grantflow.api.patching import refuse_null
from grantflow.api.withdrawals import RevokeLive, WithdrawalPublic, withdrawal_public
from grantflow.domain.integration_config import AwsOrganizationConfig, valid_name
from grantflow.services.access import integration_actions
from grantflow.services.integrations.lifecycle import IntegrationInput

router = APIRouter(prefix="/api/v1/integrations", tags=["integrations"])


class IntegrationCreate(BaseModel):
    name: str = Field(description="Unique; letters, digits, space, - and _ (1-64)")
    type: str = Field(default="aws-organization", pattern="^aws-organization$")
    connector_id: str
    resource_types: list[str] = Field(description="Resource types to sync (see the catalog)")
    config: AwsOrganizationConfig
    sync_interval_seconds: int | None = Field(default=None, ge=60, le=86400)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return valid_name(value)


class IntegrationUpdate(BaseModel):
    name: str | SkipJsonSchema[None] = None
    connector_id: str | SkipJsonSchema[None] = None
    resource_types: list[str] | SkipJsonSchema[None] = None
    config: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None,
        description="A JSON merge patch (RFC 7396) of the configuration: the fields given "
        "change (or, as RFC 7396 says, are removed), the rest is kept; the result is "
        "validated whole",
    )
    sync_interval_seconds: int | None = Field(default=None, ge=60, le=86400)

    _not_null = field_validator("name", "connector_id", "resource_types", "config",
                                mode="before")(refuse_null)  # fmt: skip

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return valid_name(value) if value is not None else None


class SyncRunPublic(BaseModel):
    id: str
    generation: int
    trigger: str
    state: str
    started_at: datetime
    finished_at: datetime | None
    accounts_done: int = Field(description="Accounts read so far")
    accounts_total: int | None = Field(
        description="Accounts in scope; None until the connector has walked the organization"
    )
    resources_seen: int = Field(description="Records the connector has sent so far")
    updated_at: datetime | None = Field(description="When the run last moved")
    counts: dict[str, Any]
    accounts: dict[str, Any] | None = Field(
        description="Per-account outcomes (None when asked for without them: accounts=false)"
    )
    aws_calls: int
    error: str | None


class IntegrationPublic(BaseModel):
    """The full integration, for admins."""

    view: Literal["admin"] = "admin"
    id: str
    name: str
    type: str
    connector_id: str
    resource_types: list[str]
    config: dict[str, Any]
    status: str
    status_message: str | None
    enabled: bool
    sync_interval_seconds: int | None
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    counts: dict[str, int] = Field(description="Resources per type")
    scanned_regions: list[str] = Field(
        default_factory=list,
        description="Regions scanned for regional resources (EC2, RDS): config.sync_regions, "
        "or only config.region when that list is empty",
    )
    current_sync: SyncRunPublic | None = Field(
        default=None, description="The running sync's progress (accounts: see …/syncs/{id})"
    )
    last_sync: SyncRunPublic | None = Field(
        default=None, description="The last finished sync (accounts: see …/syncs/{id})"
    )
    created_at: datetime


class RequestableType(BaseModel):
    resource_type: str
    permissions: list[str] = Field(description="What the caller's flows let them request")


class IntegrationSummary(BaseModel):
    """An integration as a member sees it: nothing about how Grantflow reaches the
    organization (role, connector, configuration, errors), only what they may ask for."""

    view: Literal["member"] = "member"
    id: str
    name: str
    type: str
    status: str
    enabled: bool
    requestable: list[RequestableType] = Field(
        description="Resource types and permissions the caller's access flows offer here"
    )


IntegrationView = Annotated[IntegrationPublic | IntegrationSummary, Field(discriminator="view")]


def _integration(view: dict[str, Any]) -> IntegrationPublic | IntegrationSummary:
    if view["view"] == "admin":
        return IntegrationPublic.model_validate(view)
    return IntegrationSummary.model_validate(view)


@router.post("", response_model=IntegrationPublic, status_code=status.HTTP_201_CREATED)
def create(
    body: IntegrationCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> IntegrationPublic:
    data = IntegrationInput(
        body.name, body.connector_id, body.resource_types, body.config, body.sync_interval_seconds
    )
    found = integration_actions.create(ctx.sessions, data, actor_of(admin, request))
    return IntegrationPublic.model_validate(found)


@router.get("", response_model=list[IntegrationView])
def list_integrations(ctx: Ctx, user: CurrentUser) -> list[IntegrationPublic | IntegrationSummary]:
    """Admins get every integration in full; members the public view (``view`` tells which)."""
    return [_integration(v) for v in integration_actions.listed(ctx.sessions, user)]


@router.get("/{integration_id}", response_model=IntegrationView)
def get(integration_id: str, ctx: Ctx, user: CurrentUser) -> IntegrationPublic | IntegrationSummary:
    return _integration(integration_actions.show(ctx.sessions, integration_id, user))


@router.patch("/{integration_id}", response_model=IntegrationPublic)
def update(
    integration_id: str, body: IntegrationUpdate, ctx: Ctx, admin: AdminUser, request: Request
) -> IntegrationPublic:
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    found = integration_actions.update(
        ctx.sessions, integration_id, changes, actor_of(admin, request)
    )
    return IntegrationPublic.model_validate(found)


@router.delete("/{integration_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(
    integration_id: str,
    ctx: Ctx,
    admin: AdminUser,
    request: Request,
    revoke_live: RevokeLive = False,
    force: Annotated[bool, Query(description="Older name of revoke_live")] = False,
) -> None:
    """Delete an integration and what only it gives meaning to.

    - Its **pending and approved requests fail** (reason: the integration was deleted).
    - Its **live grants** make it 409 (naming how many) unless ``revoke_live``: then they are
      revoked in AWS through the normal path.
    - Its **access flows are deleted with it**, each as ``DELETE /access-flows/{id}`` would
      (audited ``access_flow.deleted``; the ``integration.deleted`` event lists them).
    - **History is kept:** when requests refer to the integration it stays, disabled, so
      their pages and the audit log still name it (deleting it again is harmless); one that no
      request refers to is removed with its inventory and sync history.
    """
    integration_actions.delete(
        ctx.sessions, integration_id, revoke_live or force, actor_of(admin, request)
    )


class IntegrationDisabled(IntegrationPublic):
    withdrawal: WithdrawalPublic | None = Field(
        default=None, description="What became of its requests (None: it was already disabled)"
    )


@router.post("/{integration_id}/disable", response_model=IntegrationDisabled)
def disable(
    integration_id: str, ctx: Ctx, admin: AdminUser, request: Request,
    revoke_live: RevokeLive = False,
) -> IntegrationDisabled:  # fmt: skip
    """Its pending requests fail; see ``revoke_live`` for its live ones (also when it is
    already disabled)."""
    found, withdrawal = integration_actions.disable(
        ctx.sessions, integration_id, actor_of(admin, request), revoke_live
    )
    again = f"POST /api/v1/integrations/{found['id']}/disable?revoke_live=true"
    return IntegrationDisabled(
        **IntegrationPublic.model_validate(found).model_dump(),
        withdrawal=withdrawal_public(withdrawal, again) if withdrawal else None,
    )


@router.post("/{integration_id}/enable", response_model=IntegrationPublic)
def enable(integration_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> IntegrationPublic:
    found = integration_actions.enable(ctx.sessions, integration_id, actor_of(admin, request))
    return IntegrationPublic.model_validate(found)


@router.post("/{integration_id}/sync", response_model=SyncRunPublic, status_code=202)
def sync_now(integration_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> SyncRunPublic:
    run = integration_actions.sync_now(ctx.sessions, integration_id, actor_of(admin, request))
    return SyncRunPublic.model_validate(run)


@router.get("/{integration_id}/syncs", response_model=list[SyncRunPublic])
def sync_history(
    integration_id: str,
    ctx: Ctx,
    _admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[SyncRunPublic]:
    runs = integration_actions.sync_history(ctx.sessions, integration_id, limit)
    return [SyncRunPublic.model_validate(r) for r in runs]


@router.get("/{integration_id}/syncs/{sync_run_id}", response_model=SyncRunPublic)
def sync_run(
    integration_id: str,
    sync_run_id: str,
    ctx: Ctx,
    _admin: AdminUser,
    accounts: Annotated[
        bool, Query(description="Include the per-account outcomes (false: progress only)")
    ] = True,
) -> SyncRunPublic:
    """One sync run: while it runs, its progress (accounts done of total, records seen)."""
    run = integration_actions.sync_run(ctx.sessions, integration_id, sync_run_id, accounts)
    return SyncRunPublic.model_validate(run)


class ReconcileQueued(BaseModel):
    job_id: str | None = Field(description="None when Grantflow manages nothing here yet")


@router.post("/{integration_id}/reconcile", response_model=ReconcileQueued, status_code=202)
def reconcile_now(
    integration_id: str,
    ctx: Ctx,
    _admin: AdminUser,
    repair: Annotated[bool, Query(description="Fix drift, not only report it")] = True,
) -> ReconcileQueued:
    """Compare what Grantflow granted (and recently revoked) with AWS; report drift as the
    audit event ``reconcile.drift`` and, with repair, grant or revoke again."""
    return ReconcileQueued(
        job_id=integration_actions.reconcile_now(ctx.sessions, integration_id, repair)
    )
