"""Connectors as admins manage them: create (token shown once), list, rotate, delete, template."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.aws import cloudformation
from grantflow.services import connectors, jobs
from grantflow.services.errors import Invalid
from grantflow.store.db import transaction
from grantflow.store.models import Connector, Job
from grantflow.store.types import utcnow

router = APIRouter(prefix="/api/v1/connectors", tags=["connectors"])

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"


class ConnectorKind(StrEnum):
    MANAGED = "managed"
    SELF_HOSTED = "self_hosted"


class ConnectorCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="Letters, digits, space, _ . - (≤64)")
    kind: ConnectorKind = ConnectorKind.SELF_HOSTED


class VerificationPublic(BaseModel):
    job_id: str
    state: str
    role_arn: str | None
    finished_at: datetime | None
    result: dict[str, object] | None
    error: str | None


class ConnectorPublic(BaseModel):
    id: str
    name: str
    kind: str
    status: str = Field(description="connected, disconnected or never_connected")
    version: str | None
    aws_identity_arn: str | None = Field(description="The AWS identity the connector runs as")
    connector_role_arn: str | None = Field(description="Paste into the template's ConnectorRoleArn")
    aws_account_id: str | None
    last_heartbeat_at: datetime | None
    token_prefix: str
    created_at: datetime
    last_verification: VerificationPublic | None = None


class ConnectorCreated(ConnectorPublic):
    token: str = Field(description="The connector's secret. Shown once; only its hash is kept.")


class VerifyCreate(BaseModel):
    role_arn: str = Field(pattern=cloudformation.ROLE_ARN_PATTERN)


class TemplatePublic(BaseModel):
    connector_id: str
    template: str
    template_file: str
    deploy_command: str | None
    quick_create_url: str | None
    parameters: dict[str, str | None]
    instructions: list[str]
    prerequisites: list[str]


def connector_role_arn(identity_arn: str | None) -> str | None:
    """``arn:aws:sts::A:assumed-role/R/s`` → ``arn:aws:iam::A:role/R``; IAM role ARNs as is."""
    if not identity_arn:
        return None
    parts = identity_arn.split(":", 5)
    if len(parts) != 6:
        return None
    _, partition, service, _, account, resource = parts
    if service == "iam" and resource.startswith("role/"):
        return identity_arn
    if service == "sts" and resource.startswith("assumed-role/"):
        role = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{role}"
    return None


def _latest_verification(session: object, connector_id: str) -> VerificationPublic | None:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    job = session.scalar(
        select(Job)
        .where(Job.connector_id == connector_id, Job.type == "verify")
        .order_by(Job.created_at.desc())
        .limit(1)
    )
    if job is None:
        return None
    return VerificationPublic(
        job_id=job.id,
        state=job.state,
        role_arn=str(job.payload.get("role_arn")),
        finished_at=job.finished_at,
        result=job.result,
        error=job.last_error,
    )


def to_public(connector: Connector, session: object | None = None) -> ConnectorPublic:
    return ConnectorPublic(
        id=connector.id,
        name=connector.name,
        kind=connector.kind,
        status=connectors.status_of(connector, utcnow()),
        version=connector.version,
        aws_identity_arn=connector.aws_identity_arn,
        connector_role_arn=connector_role_arn(connector.aws_identity_arn),
        aws_account_id=connector.aws_account_id,
        last_heartbeat_at=connector.last_heartbeat_at,
        token_prefix=connector.token_prefix,
        created_at=connector.created_at,
        last_verification=_latest_verification(session, connector.id) if session else None,
    )


@router.post("", response_model=ConnectorCreated, status_code=status.HTTP_201_CREATED)
def create_connector(
    body: ConnectorCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> ConnectorCreated:
    with transaction(ctx.sessions) as session:
        row, token = connectors.create(
            session, body.name, body.kind.value, actor_of(admin, request)
        )
        return ConnectorCreated(**to_public(row).model_dump(), token=token)


@router.get("", response_model=list[ConnectorPublic])
def list_connectors(ctx: Ctx, _admin: AdminUser) -> list[ConnectorPublic]:
    with transaction(ctx.sessions) as session:
        rows = session.scalars(select(Connector).order_by(Connector.name)).all()
        return [to_public(r, session) for r in rows]


@router.get("/{connector_id}", response_model=ConnectorPublic)
def get_connector(connector_id: str, ctx: Ctx, _admin: AdminUser) -> ConnectorPublic:
    with transaction(ctx.sessions) as session:
        return to_public(connectors.get(session, connector_id), session)


@router.post("/{connector_id}/rotate-token", response_model=ConnectorCreated)
def rotate_token(
    connector_id: str, ctx: Ctx, admin: AdminUser, request: Request
) -> ConnectorCreated:
    with transaction(ctx.sessions) as session:
        token = connectors.rotate_token(session, connector_id, actor_of(admin, request))
        row = connectors.get(session, connector_id)
        return ConnectorCreated(**to_public(row, session).model_dump(), token=token)


@router.delete("/{connector_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_connector(connector_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> None:
    with transaction(ctx.sessions) as session:
        connectors.delete(session, connector_id, actor_of(admin, request))


@router.post("/{connector_id}/verify", response_model=VerificationPublic, status_code=202)
def verify(
    connector_id: str, body: VerifyCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> VerificationPublic:
    """Ask the connector to assume the management role (external id = connector id) and
    describe the organization. Poll ``GET /api/v1/connectors/{id}`` for the outcome."""
    with transaction(ctx.sessions) as session:
        connector = connectors.get(session, connector_id)
        job = jobs.enqueue(
            session,
            connector.id,
            "verify",
            {"role_arn": body.role_arn, "external_id": connector.id},
            max_attempts=3,
        )
        from grantflow.services import audit

        audit.record(
            session,
            actor_of(admin, request),
            "connector.verify_requested",
            "connector",
            connector.id,
            {"role_arn": body.role_arn, "job_id": job.id},
        )
        return VerificationPublic(
            job_id=job.id,
            state=job.state,
            role_arn=body.role_arn,
            finished_at=None,
            result=None,
            error=None,
        )


class PingCreate(BaseModel):
    delay_seconds: float = Field(default=0.0, ge=0, le=60)


class JobPublic(BaseModel):
    id: str
    type: str
    state: str
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
    with transaction(ctx.sessions) as session:
        connector = connectors.get(session, connector_id)
        job = jobs.enqueue(
            session, connector.id, "ping", {"delay_seconds": body.delay_seconds}, max_attempts=3
        )
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
    with transaction(ctx.sessions) as session:
        connectors.get(session, connector_id)
        query = select(Job).where(Job.connector_id == connector_id)
        if state:
            query = query.where(Job.state == state)
        rows = session.scalars(query.order_by(Job.created_at.desc()).limit(limit)).all()
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
) -> TemplatePublic:
    with transaction(ctx.sessions) as session:
        connector = connectors.get(session, connector_id)
        role_arn = connector_role_arn(connector.aws_identity_arn)
    ready = role_arn is not None and organizational_unit_id is not None
    command = url = None
    if ready:
        assert role_arn is not None and organizational_unit_id is not None
        command = cloudformation.deploy_command(connector.id, role_arn, organizational_unit_id)
        if ctx.settings.template_url:
            url = cloudformation.quick_create_url(
                ctx.settings.template_url, region, connector.id, role_arn, organizational_unit_id
            )
    elif role_arn is None and connector.aws_identity_arn is not None:
        raise Invalid(
            f"the connector runs as {connector.aws_identity_arn}, which is not an IAM role; "
            "run the connector with an IAM role (instance profile, IRSA or assumed role)",
            field="connector",
        )
    return TemplatePublic(
        connector_id=connector.id,
        template=cloudformation.render_template(),
        template_file=cloudformation.TEMPLATE_FILE,
        deploy_command=command,
        quick_create_url=url,
        parameters={
            "ConnectorId": connector.id,
            "ConnectorRoleArn": role_arn,
            "OrganizationalUnitId": organizational_unit_id,
        },
        instructions=_instructions(ready, role_arn, bool(ctx.settings.template_url)),
        prerequisites=[cloudformation.EC2_PREREQUISITE_NOTE],
    )


def _instructions(ready: bool, role_arn: str | None, has_url: bool) -> list[str]:
    steps = []
    if role_arn is None:
        steps.append(
            "Start the connector first: its AWS identity becomes the ConnectorRoleArn parameter."
        )
    steps += [
        f"Save the template as {cloudformation.TEMPLATE_FILE} and deploy it in the "
        "Organization's management account (it needs CAPABILITY_NAMED_IAM).",
        "OrganizationalUnitId is the root (r-…) or the OU whose accounts Grantflow may read; "
        "a service-managed StackSet puts the read-only member role into each of them.",
        f"Copy the stack output {cloudformation.OUTPUT_ROLE_ARN} into the integration's "
        "Management Account Role ARN.",
    ]
    if ready:
        steps.insert(
            0, "Run the deploy command below (AWS CLI v2, management-account credentials)."
        )
    if has_url and ready:
        steps.append("Or open the quick-create link in the AWS console.")
    return steps
