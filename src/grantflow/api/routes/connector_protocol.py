"""The connector's side of the job protocol: heartbeat, lease (long-poll), complete, fail,
and a running job's reports (inventory batches, sync and grant progress).

Every route here takes the connector's own token and acts only on that connector's jobs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from grantflow.api.deps import ConnectorAuth, Ctx
from grantflow.domain.connector_jobs import (
    BadJobData,
    JobType,
    LeasedJob,
    parse_result,
    result_dump,
)
from grantflow.domain.inventory import AccountInventory
from grantflow.domain.jobs import JobState
from grantflow.services.access import grant_jobs
from grantflow.services.errors import Invalid
from grantflow.services.integrations import connectors, sync_ingest
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime import job_outcomes
from grantflow.store.db import transaction
from grantflow.store.models import SyncRun

router = APIRouter(prefix="/api/v1/connectors/{connector_id}", tags=["connector protocol"])

POLL_INTERVAL_SECONDS = 0.2


class Heartbeat(BaseModel):
    version: str = Field(max_length=64)
    aws_identity_arn: str | None = Field(default=None, max_length=2048)
    aws_account_id: str | None = Field(default=None, pattern=r"^\d{12}$")


class HeartbeatAck(BaseModel):
    status: str
    server_time: datetime


class LeaseRequest(BaseModel):
    max_jobs: int = Field(default=1, ge=1, le=50)
    wait_seconds: float = Field(default=20, ge=0, le=60)
    lease_seconds: int = Field(default=jobs.DEFAULT_LEASE_SECONDS, ge=2, le=jobs.MAX_LEASE_SECONDS)


class LeaseResponse(BaseModel):
    jobs: list[LeasedJob]


class Completion(BaseModel):
    lease_id: str
    result: dict[str, Any] = Field(default_factory=dict)


class Failure(BaseModel):
    lease_id: str
    error: str = Field(max_length=4000)
    retryable: bool = True
    result: dict[str, Any] | None = None


class LeaseAction(BaseModel):
    lease_id: str
    seconds: int = Field(default=jobs.DEFAULT_LEASE_SECONDS, ge=2, le=jobs.MAX_LEASE_SECONDS)


class JobStatePublic(BaseModel):
    id: str
    state: JobState
    attempts: int
    lease_expires_at: datetime | None = None
    last_error: str | None = None


@router.post("/heartbeat", response_model=HeartbeatAck)
def heartbeat(
    connector_id: str, body: Heartbeat, ctx: Ctx, _connector: ConnectorAuth
) -> HeartbeatAck:
    with transaction(ctx.sessions) as session:
        row = connectors.heartbeat(
            session,
            connector_id,
            connectors.Reported(body.version, body.aws_identity_arn, body.aws_account_id),
        )
        return HeartbeatAck(status=connectors.status_of(row), server_time=row.last_heartbeat_at)


def _claim(ctx: Ctx, connector_id: str, body: LeaseRequest) -> list[LeasedJob]:
    with transaction(ctx.sessions) as session:
        return [
            LeasedJob(
                id=leased.job.id,
                type=leased.job.type,
                payload=leased.job.payload,
                attempt=leased.job.attempts,
                lease_id=leased.lease_id,
                lease_expires_at=leased.deadline,
            )
            for leased in jobs.lease(session, connector_id, body.max_jobs, body.lease_seconds)
        ]


@router.post("/jobs/lease", response_model=LeaseResponse)
async def lease(
    connector_id: str, body: LeaseRequest, ctx: Ctx, _connector: ConnectorAuth, request: Request
) -> LeaseResponse:
    """Long-poll: answer as soon as a job is available, or empty after ``wait_seconds``."""
    deadline = time.monotonic() + body.wait_seconds
    while True:
        if await request.is_disconnected():
            # Nobody is listening any more (e.g. the connector was killed): claiming now
            # would lease a job to the void until its lease runs out.
            return LeaseResponse(jobs=[])
        claimed = await run_in_threadpool(_claim, ctx, connector_id, body)
        if claimed or time.monotonic() >= deadline:
            return LeaseResponse(jobs=claimed)
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


def _valid_result(job_type: str, result: dict[str, Any]) -> dict[str, Any]:
    """The result as its job type's model has it. One that does not fit is refused (422,
    naming the field) and the job stays leased; the connector then fails it for good with
    this reason (connector.agent: a refused report is not retried)."""
    try:
        return result_dump(parse_result(job_type, result))
    except BadJobData as err:
        field = f"result.{err.field}"
        raise Invalid(f"{field}: {err.reason}", field=field) from None


@router.post("/jobs/{job_id}/complete", response_model=JobStatePublic)
def complete(
    connector_id: str, job_id: str, body: Completion, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    with transaction(ctx.sessions) as session:
        leased = jobs.check_lease(session, connector_id, job_id, body.lease_id)  # 409 first
        result = _valid_result(leased.type, body.result)
        job = jobs.complete(session, connector_id, job_id, body.lease_id, result)
        job_outcomes.on_finished(session, job)
    ctx.metrics.jobs_finished.labels(job.type, job.state).inc()
    return JobStatePublic(id=job.id, state=job.state, attempts=job.attempts)


@router.post("/jobs/{job_id}/fail", response_model=JobStatePublic)
def fail(
    connector_id: str, job_id: str, body: Failure, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    with transaction(ctx.sessions) as session:
        job = jobs.fail(
            session,
            connector_id,
            job_id,
            body.lease_id,
            body.error,
            retryable=body.retryable,
            result=body.result,
        )
        job_outcomes.on_finished(session, job)
    if job.finished_at is not None:
        ctx.metrics.jobs_finished.labels(job.type, job.state).inc()
    return JobStatePublic(
        id=job.id, state=job.state, attempts=job.attempts, last_error=job.last_error
    )


class SyncBatch(BaseModel):
    lease_id: str
    account: AccountInventory


class SyncProgress(BaseModel):
    accounts_done: int
    accounts_total: int | None = None
    resources_seen: int = 0


class SyncTotal(BaseModel):
    lease_id: str
    accounts_total: int = Field(ge=0, le=1_000_000, description="Accounts in scope")


def _sync_run_id(session: Session, connector_id: str, job_id: str, lease_id: str) -> str:
    job = jobs.check_lease(session, connector_id, job_id, lease_id)
    if job.type != JobType.SYNC:
        raise Invalid("only sync jobs report inventory and sync progress", field="job_id")
    return str(job.payload["sync_run_id"])


def _progress(run: SyncRun) -> SyncProgress:
    return SyncProgress(accounts_done=run.accounts_done, accounts_total=run.accounts_total,
                        resources_seen=run.resources_seen)  # fmt: skip


@router.post("/jobs/{job_id}/sync-batch", response_model=SyncProgress)
def sync_batch(
    connector_id: str, job_id: str, body: SyncBatch, ctx: Ctx, _connector: ConnectorAuth
) -> SyncProgress:
    """One account's inventory, sent as soon as the connector has read it."""
    with transaction(ctx.sessions) as session:
        run_id = _sync_run_id(session, connector_id, job_id, body.lease_id)
        return _progress(sync_ingest.ingest_account(session, run_id, body.account))


@router.post("/jobs/{job_id}/sync-progress", response_model=SyncProgress)
def sync_progress(
    connector_id: str, job_id: str, body: SyncTotal, ctx: Ctx, _connector: ConnectorAuth
) -> SyncProgress:
    """The organization is walked: how many accounts the sync will read, sent before the
    first batch so that progress reads "n of total" from the start."""
    with transaction(ctx.sessions) as session:
        run_id = _sync_run_id(session, connector_id, job_id, body.lease_id)
        return _progress(sync_ingest.report_total(session, run_id, body.accounts_total))


class GrantProgress(BaseModel):
    lease_id: str
    pre_existing: bool


@router.post("/jobs/{job_id}/grant-progress", response_model=JobStatePublic)
def grant_progress(
    connector_id: str, job_id: str, body: GrantProgress, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    """Before a grant changes anything: whether the access already existed in AWS."""
    with transaction(ctx.sessions) as session:
        job = jobs.check_lease(session, connector_id, job_id, body.lease_id)
        if job.type != JobType.GRANT:
            raise Invalid("only grant jobs report grant progress", field="job_id")
        grant_jobs.record_pre_existing(session, str(job.payload["grant_id"]), body.pre_existing)
        return JobStatePublic(id=job.id, state=job.state, attempts=job.attempts)


@router.post("/jobs/{job_id}/extend", response_model=JobStatePublic)
def extend(
    connector_id: str, job_id: str, body: LeaseAction, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    with transaction(ctx.sessions) as session:
        deadline = jobs.extend(session, connector_id, job_id, body.lease_id, body.seconds)
        return JobStatePublic(
            id=job_id, state=JobState.LEASED, attempts=0, lease_expires_at=deadline
        )


@router.post("/jobs/{job_id}/release", response_model=JobStatePublic)
def release(
    connector_id: str, job_id: str, body: LeaseAction, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    with transaction(ctx.sessions) as session:
        job = jobs.release(session, connector_id, job_id, body.lease_id)
        return JobStatePublic(id=job.id, state=job.state, attempts=job.attempts)
