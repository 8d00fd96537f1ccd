"""Connectors as admins manage them: create (token shown once), list, rotate, delete, confirm
the role the template trusts, template."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.aws import cloudformation
from grantflow.domain.connector_identity import IdentityState, assess, role_of
from grantflow.domain.connector_jobs import VerifyPayload
from grantflow.domain.jobs import JobState
from grantflow.services.integrations import connector_actions, connectors
from grantflow.store.models import Job
from grantflow.store.types import utcnow

router = APIRouter(prefix="/api/v1/connectors", tags=["connectors"])

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"


class ConnectorKind(StrEnum):
    MANAGED = "managed"
    SELF_HOSTED = "self_hosted"


class ConnectorCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="Letters, digits, space, _ . - (≤64)")
    kind: ConnectorKind = ConnectorKind.SELF_HOSTED


class ConnectorVerificationPublic(BaseModel):
    """A verify job: the connector's own report that it assumed ``role_arn`` and read the
    organization. It proves the connector can reach that role; being the connector's own
    report, it never confirms which role the template trusts (an admin does that)."""

    job_id: str
    state: JobState
    role_arn: str | None
    finished_at: datetime | None
    result: dict[str, object] | None
    error: str | None


class ConnectorIdentityPublic(BaseModel):
    state: IdentityState = Field(
        description="unknown; unconfirmed (reported, no role confirmed); confirmed; changed "
        "(the connector reports another identity than the confirmed role: check it)"
    )
    confirmed_role_arn: str | None = Field(description="The role the template trusts")
    confirmed_by: str | None = Field(description="The admin's username, or the setting")
    confirmed_at: datetime | None
    reported_identity_arn: str | None = Field(
        description="The AWS identity the connector last reported (its own statement)"
    )
    reported_role_arn: str | None = Field(description="The IAM role of the reported identity")
    message: str = Field(description="What the state means and what to do")


class CredentialPublic(BaseModel):
    """A managed-connector replica's credential (its secret never leaves that replica)."""

    holder: str = Field(description="The replica: host name and port")
    token_prefix: str
    created_at: datetime
    last_used_at: datetime | None


class ConnectorPublic(BaseModel):
    id: str
    name: str
    kind: ConnectorKind
    status: str = Field(description="connected, disconnected or never_connected")
    version: str | None
    aws_identity_arn: str | None = Field(
        description="The AWS identity the connector last reported; never used unconfirmed"
    )
    reported_role_arn: str | None = Field(description="The IAM role of aws_identity_arn")
    connector_role_arn: str | None = Field(
        description="The confirmed role: the template's ConnectorRoleArn (None until an admin "
        "confirms one)"
    )
    identity: ConnectorIdentityPublic
    aws_account_id: str | None
    last_heartbeat_at: datetime | None
    token_prefix: str
    created_at: datetime
    last_verification: ConnectorVerificationPublic | None = None
    replicas: list[CredentialPublic] = Field(
        default_factory=list, description="Managed connector: one credential per replica"
    )


class ConnectorCreated(ConnectorPublic):
    token: str = Field(description="The connector's secret. Shown once; only its hash is kept.")


class VerifyCreate(BaseModel):
    role_arn: str = Field(pattern=cloudformation.ROLE_ARN_PATTERN)


class RoleConfirm(BaseModel):
    role_arn: str = Field(
        pattern=cloudformation.ROLE_ARN_PATTERN,
        max_length=2048,
        description="The IAM role the connector runs as. To confirm what the connector "
        "reports, send the reported_role_arn you checked (the request names it, so a report "
        "that changes meanwhile is never confirmed unseen).",
    )


class TemplatePublic(BaseModel):
    connector_id: str
    template: str
    template_file: str
    deploy_command: str | None = Field(
        description="With OrganizationalUnitId; holds a placeholder for ConnectorRoleArn until "
        "a role is confirmed"
    )
    quick_create_url: str | None
    connector_role_confirmed: bool
    parameters: dict[str, str | None]
    instructions: list[str]
    prerequisites: list[str]


def _verification(job: Job | None) -> ConnectorVerificationPublic | None:
    if job is None:
        return None
    return ConnectorVerificationPublic(
        job_id=job.id,
        state=job.state,
        role_arn=VerifyPayload.model_validate(job.payload).role_arn,
        finished_at=job.finished_at,
        result=job.result,
        error=job.last_error,
    )


def _identity(view: connector_actions.ConnectorView) -> ConnectorIdentityPublic:
    connector = view.connector
    assessed = assess(connector.confirmed_role_arn, connector.aws_identity_arn)
    return ConnectorIdentityPublic(
        state=assessed.state,
        confirmed_role_arn=connector.confirmed_role_arn,
        confirmed_by=view.confirmed_by,
        confirmed_at=connector.confirmed_at,
        reported_identity_arn=connector.aws_identity_arn,
        reported_role_arn=assessed.reported_role_arn,
        message=assessed.message,
    )


def to_public(view: connector_actions.ConnectorView) -> ConnectorPublic:
    connector = view.connector
    return ConnectorPublic(
        id=connector.id,
        name=connector.name,
        kind=connector.kind,
        status=connectors.status_of(connector, utcnow()),
        version=connector.version,
        aws_identity_arn=connector.aws_identity_arn,
        reported_role_arn=role_of(connector.aws_identity_arn),
        connector_role_arn=connector.confirmed_role_arn,
        identity=_identity(view),
        aws_account_id=connector.aws_account_id,
        last_heartbeat_at=connector.last_heartbeat_at,
        token_prefix=connector.token_prefix,
        created_at=connector.created_at,
        last_verification=_verification(view.last_verification),
        replicas=[CredentialPublic.model_validate(c, from_attributes=True)
                  for c in view.credentials],
    )  # fmt: skip


@router.post("", response_model=ConnectorCreated, status_code=status.HTTP_201_CREATED)
def create_connector(
    body: ConnectorCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> ConnectorCreated:
    view, token = connector_actions.create(
        ctx.sessions, body.name, body.kind.value, actor_of(admin, request)
    )
    return ConnectorCreated(**to_public(view).model_dump(), token=token)


@router.get("", response_model=list[ConnectorPublic])
def list_connectors(ctx: Ctx, _admin: AdminUser) -> list[ConnectorPublic]:
    return [to_public(v) for v in connector_actions.listed(ctx.sessions)]


@router.get("/{connector_id}", response_model=ConnectorPublic)
def get_connector(connector_id: str, ctx: Ctx, _admin: AdminUser) -> ConnectorPublic:
    return to_public(connector_actions.show(ctx.sessions, connector_id))


@router.post("/{connector_id}/rotate-token", response_model=ConnectorCreated)
def rotate_token(
    connector_id: str, ctx: Ctx, admin: AdminUser, request: Request
) -> ConnectorCreated:
    view, token = connector_actions.rotate_token(
        ctx.sessions, connector_id, actor_of(admin, request)
    )
    return ConnectorCreated(**to_public(view).model_dump(), token=token)


@router.delete("/{connector_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_connector(connector_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> None:
    connector_actions.delete(ctx.sessions, connector_id, actor_of(admin, request))


@router.post("/{connector_id}/verify", response_model=ConnectorVerificationPublic, status_code=202)
def verify(
    connector_id: str, body: VerifyCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> ConnectorVerificationPublic:
    """Ask the connector to assume the management role (external id = connector id) and
    describe the organization. Poll ``GET /api/v1/connectors/{id}`` for the outcome."""
    job = connector_actions.verify(
        ctx.sessions, connector_id, body.role_arn, actor_of(admin, request)
    )
    return ConnectorVerificationPublic(
        job_id=job.id, state=job.state, role_arn=body.role_arn, finished_at=None, result=None,
        error=None,
    )  # fmt: skip


class PingCreate(BaseModel):
    delay_seconds: float = Field(default=0.0, ge=0, le=60)


class JobPublic(BaseModel):
    id: str
    type: str
    state: JobState
    attempts: int
    max_attempts: int
    created_at: datetime
    available_at: datetime
    lease_expires_at: datetime | None
    finished_at: datetime | None
    last_error: str | None
    result: dict[str, object] | None


@router.post("/{connector_id}/ping", response_model=JobPublic, status_code=202)
def ping(connector_id: str, body: PingCreate, ctx: Ctx, _admin: AdminUser) -> JobPublic:
    """Queue a round-trip job; it succeeds when the connector answers."""
    job = connector_actions.ping(ctx.sessions, connector_id, body.delay_seconds)
    return JobPublic.model_validate(job, from_attributes=True)


@router.get("/{connector_id}/jobs", response_model=list[JobPublic])
def list_jobs(
    connector_id: str,
    ctx: Ctx,
    _admin: AdminUser,
    state: Annotated[
        str | None, Query(pattern="^(queued|leased|succeeded|failed|cancelled)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[JobPublic]:
    rows = connector_actions.jobs_of(ctx.sessions, connector_id, state, limit)
    return [JobPublic.model_validate(r, from_attributes=True) for r in rows]


@router.get("/{connector_id}/cloudformation", response_model=TemplatePublic)
def template(
    connector_id: str,
    ctx: Ctx,
    _admin: AdminUser,
    organizational_unit_id: Annotated[
        str | None,
        Query(
            pattern=cloudformation.OU_ID_PATTERN,
            description="Root (r-…) or OU (ou-…) whose accounts get the read-only member role",
        ),
    ] = None,
    region: Annotated[str, Query(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] = "us-east-1",
    audit_bucket: Annotated[
        str | None,
        Query(
            pattern=cloudformation.AUDIT_BUCKET_PATTERN,
            description="The organization trail's S3 bucket (AuditBucketName; Enable Audit "
            "needs it). Default: the bucket of this connector's integration with Enable Audit "
            "on, else empty (no session audit)",
        ),
    ] = None,
    session_cuts: Annotated[
        bool,
        Query(
            description="SessionCutsOnAssignablePermissionSets=true on the command and link: "
            "end revoked users' sessions on your own permission sets too",
        ),
    ] = False,
) -> TemplatePublic:
    view, audit_bucket = connector_actions.template_inputs(ctx.sessions, connector_id, audit_bucket)
    connector_id, role_arn = view.connector.id, view.connector.confirmed_role_arn
    identity = _identity(view)
    command = url = None
    if organizational_unit_id is not None:
        scope = cloudformation.GrantScope(session_cuts=session_cuts)
        command = cloudformation.deploy_command(
            connector_id, role_arn, organizational_unit_id, audit_bucket=audit_bucket, scope=scope
        )
        if ctx.settings.template_url and role_arn is not None:
            url = cloudformation.quick_create_url(
                ctx.settings.template_url, region, connector_id, role_arn, organizational_unit_id,
                audit_bucket=audit_bucket, scope=scope,
            )  # fmt: skip
    return TemplatePublic(
        connector_id=connector_id,
        template=cloudformation.render_template(),
        template_file=cloudformation.TEMPLATE_FILE,
        deploy_command=command,
        quick_create_url=url,
        connector_role_confirmed=role_arn is not None,
        parameters={
            "ConnectorId": connector_id,
            "ConnectorRoleArn": role_arn or cloudformation.ROLE_ARN_PLACEHOLDER,
            "OrganizationalUnitId": organizational_unit_id,
            cloudformation.AUDIT_BUCKET: audit_bucket,
        },
        instructions=_instructions(connector_id, identity, command is not None, url is not None),
        prerequisites=[cloudformation.EC2_PREREQUISITE_NOTE],
    )


def _role_steps(connector_id: str, identity: ConnectorIdentityPublic) -> list[str]:
    confirm = (
        f"an admin confirms it on the Connectors page (Role… on its row) or with "
        f'PUT /api/v1/connectors/{connector_id}/confirmed-role {{"role_arn": "…"}}'
    )
    if identity.confirmed_role_arn is None:
        return [
            f"No connector role is confirmed yet, so ConnectorRoleArn is the placeholder "
            f"{cloudformation.ROLE_ARN_PLACEHOLDER}: {identity.message} The template trusts a "
            f"role only once {confirm}."
        ]
    if identity.state is IdentityState.CHANGED:
        return [f"Warning: {identity.message}"]
    return []


def _instructions(
    connector_id: str, identity: ConnectorIdentityPublic, has_command: bool, has_url: bool
) -> list[str]:
    steps = _role_steps(connector_id, identity)
    if has_command:
        steps.append("Run the deploy command below (AWS CLI v2, management-account credentials).")
    steps += [
        f"Save the template as {cloudformation.TEMPLATE_FILE} and deploy it in the "
        "Organization's management account (it needs CAPABILITY_NAMED_IAM).",
        "OrganizationalUnitId is the root (r-…) or the OU whose accounts Grantflow may read; "
        "a service-managed StackSet puts the read-only member role into each of them.",
        f"Copy the stack output {cloudformation.OUTPUT_ROLE_ARN} into the integration's "
        "Management Account Role ARN.",
        f"{cloudformation.AUDIT_BUCKET} is the organization trail's S3 bucket: the "
        "integration's Enable Audit needs it (empty: no session audit; set it with "
        "?audit_bucket=… or in the command, and deploy again to turn audit on later).",
    ]
    if has_url:
        steps.append("Or open the quick-create link in the AWS console.")
    return steps


@router.put("/{connector_id}/confirmed-role", response_model=ConnectorPublic)
def confirm_role(
    connector_id: str, body: RoleConfirm, ctx: Ctx, admin: AdminUser, request: Request
) -> ConnectorPublic:
    """Confirm the IAM role the connector runs as: the template's ConnectorRoleArn from now
    on. Audited as ``connector.role_confirmed`` (with the reported role and whether it
    matches)."""
    view = connector_actions.confirm_role(
        ctx.sessions, connector_id, body.role_arn, actor_of(admin, request),
        confirmed_by=f"user:{admin.id}",
    )  # fmt: skip
    return to_public(view)


@router.delete("/{connector_id}/confirmed-role", response_model=ConnectorPublic)
def withdraw_role(
    connector_id: str, ctx: Ctx, admin: AdminUser, request: Request
) -> ConnectorPublic:
    """Withdraw the confirmation: the template shows a placeholder until a role is confirmed
    again. Audited as ``connector.role_withdrawn``."""
    view = connector_actions.withdraw_role(ctx.sessions, connector_id, actor_of(admin, request))
    return to_public(view)
