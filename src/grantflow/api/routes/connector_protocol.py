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

from grantflow.api.deps import ConnectorAuth, Ctx
from grantflow.domain.connector_jobs import LeasedJob
from grantflow.domain.inventory import AccountInventory
from grantflow.domain.jobs import JobState
from grantflow.services.integrations import connectors
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime import connector_protocol as protocol
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


def _held(connector_id: str, job_id: str, body: Completion | Failure | LeaseAction
          | SyncBatch | SyncTotal | GrantProgress) -> protocol.Held:  # fmt: skip
    """The job a report names and the lease it holds."""
    return protocol.Held(connector_id, job_id, body.lease_id)


@router.post("/heartbeat", response_model=HeartbeatAck)
def heartbeat(
    connector_id: str, body: Heartbeat, ctx: Ctx, _connector: ConnectorAuth
) -> HeartbeatAck:
    reported = connectors.Reported(body.version, body.aws_identity_arn, body.aws_account_id)
    seen = protocol.heartbeat(ctx.sessions, connector_id, reported)
    return HeartbeatAck(status=seen.status, server_time=seen.server_time)


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
        claimed = await run_in_threadpool(
            protocol.claim, ctx.sessions, connector_id, body.max_jobs, body.lease_seconds
        )
        if claimed or time.monotonic() >= deadline:
            return LeaseResponse(jobs=claimed)
        await asyncio.sleep(POLL_INTERVAL_SECONDS)


@router.post("/jobs/{job_id}/complete", response_model=JobStatePublic)
def complete(
    connector_id: str, job_id: str, body: Completion, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    job = protocol.complete(ctx.sessions, _held(connector_id, job_id, body), body.result)
    ctx.metrics.jobs_finished.labels(job.type, job.state).inc()
    return JobStatePublic(id=job.id, state=job.state, attempts=job.attempts)


@router.post("/jobs/{job_id}/fail", response_model=JobStatePublic)
def fail(
    connector_id: str, job_id: str, body: Failure, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    job = protocol.fail(
        ctx.sessions,
        _held(connector_id, job_id, body),
        body.error,
        retryable=body.retryable,
        result=body.result,
    )
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


def _progress(run: SyncRun) -> SyncProgress:
    return SyncProgress(accounts_done=run.accounts_done, accounts_total=run.accounts_total,
                        resources_seen=run.resources_seen)  # fmt: skip


@router.post("/jobs/{job_id}/sync-batch", response_model=SyncProgress)
def sync_batch(
    connector_id: str, job_id: str, body: SyncBatch, ctx: Ctx, _connector: ConnectorAuth
) -> SyncProgress:
    """One account's inventory, sent as soon as the connector has read it."""
    run = protocol.sync_batch(ctx.sessions, _held(connector_id, job_id, body), body.account)
    return _progress(run)


@router.post("/jobs/{job_id}/sync-progress", response_model=SyncProgress)
def sync_progress(
    connector_id: str, job_id: str, body: SyncTotal, ctx: Ctx, _connector: ConnectorAuth
) -> SyncProgress:
    """The organization is walked: how many accounts the sync will read, sent before the
    first batch so that progress reads "n of total" from the start."""
    run = protocol.sync_total(ctx.sessions, _held(connector_id, job_id, body), body.accounts_total)
    return _progress(run)


class GrantProgress(BaseModel):
    lease_id: str
    pre_existing: bool


@router.post("/jobs/{job_id}/grant-progress", response_model=JobStatePublic)
def grant_progress(
    connector_id: str, job_id: str, body: GrantProgress, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    """Before a grant changes anything: whether the access already existed in AWS."""
    held = _held(connector_id, job_id, body)
    job = protocol.grant_progress(ctx.sessions, held, body.pre_existing)
    return JobStatePublic(id=job.id, state=job.state, attempts=job.attempts)


@router.post("/jobs/{job_id}/extend", response_model=JobStatePublic)
def extend(
    connector_id: str, job_id: str, body: LeaseAction, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    deadline = protocol.extend(ctx.sessions, _held(connector_id, job_id, body), body.seconds)
    return JobStatePublic(id=job_id, state=JobState.LEASED, attempts=0, lease_expires_at=deadline)


@router.post("/jobs/{job_id}/release", response_model=JobStatePublic)
def release(
    connector_id: str, job_id: str, body: LeaseAction, ctx: Ctx, _connector: ConnectorAuth
) -> JobStatePublic:
    job = protocol.release(ctx.sessions, _held(connector_id, job_id, body))
    return JobStatePublic(id=job.id, state=job.state, attempts=job.attempts)
