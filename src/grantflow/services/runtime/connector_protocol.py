"""The connector's side of the job protocol as use cases, each owning its transaction:
heartbeat, lease, complete, fail, extend, release, and a running job's reports (inventory
batches, the sync's account total, a grant's pre-existing access).

Every function acts only on ``connector_id``'s own jobs (``jobs.queue.check_lease``). The
job's payload and result are read through their models (``domain.connector_jobs``), the
protocol's single definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.connector_jobs import (
    BadJobData,
    GrantPayload,
    JobType,
    LeasedJob,
    SyncPayload,
    parse_result,
    result_dump,
)
from grantflow.domain.inventory import AccountInventory
from grantflow.services.access import grant_jobs
from grantflow.services.errors import Invalid
from grantflow.services.integrations import connectors, sync_ingest
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime import job_outcomes
from grantflow.store.db import transaction
from grantflow.store.models import Job, SyncRun


@dataclass(frozen=True)
class Held:
    """A job as its connector names it in a report: the job and the lease it holds."""

    connector_id: str
    job_id: str
    lease_id: str


@dataclass(frozen=True)
class HeartbeatSeen:
    status: str
    server_time: datetime | None


def heartbeat(
    sessions: sessionmaker[Session], connector_id: str, reported: connectors.Reported
) -> HeartbeatSeen:
    with transaction(sessions) as session:
        row = connectors.heartbeat(session, connector_id, reported)
        return HeartbeatSeen(connectors.status_of(row), row.last_heartbeat_at)


def claim(
    sessions: sessionmaker[Session], connector_id: str, max_jobs: int, lease_seconds: int
) -> list[LeasedJob]:
    """Lease up to ``max_jobs`` of the connector's queued jobs (one short transaction)."""
    with transaction(sessions) as session:
        return [
            LeasedJob(
                id=leased.job.id,
                type=leased.job.type,
                payload=leased.job.payload,
                attempt=leased.job.attempts,
                lease_id=leased.lease_id,
                lease_expires_at=leased.deadline,
            )
            for leased in jobs.lease(session, connector_id, max_jobs, lease_seconds)
        ]


def _valid_result(job_type: str, result: dict[str, Any]) -> dict[str, Any]:
    """The result as its job type's model has it. One that does not fit is refused (422,
    naming the field) and the job stays leased; the connector then fails it for good with
    this reason (connector.agent: a refused report is not retried)."""
    try:
        return result_dump(parse_result(job_type, result))
    except BadJobData as err:
        field = f"result.{err.field}"
        raise Invalid(f"{field}: {err.reason}", field=field) from None


def _check(session: Session, held: Held) -> Job:
    return jobs.check_lease(session, held.connector_id, held.job_id, held.lease_id)


def complete(sessions: sessionmaker[Session], held: Held, result: dict[str, Any]) -> Job:
    """The job is done: its result checked against its type's model, then what follows it
    (``job_outcomes``) in the same transaction."""
    with transaction(sessions) as session:
        valid = _valid_result(_check(session, held).type, result)  # 409 first
        job = jobs.complete(session, held.connector_id, held.job_id, held.lease_id, valid)
        job_outcomes.on_finished(session, job)
        return job


def fail(
    sessions: sessionmaker[Session],
    held: Held,
    error: str,
    *,
    retryable: bool,
    result: dict[str, Any] | None,
) -> Job:
    with transaction(sessions) as session:
        job = jobs.fail(session, held.connector_id, held.job_id, held.lease_id, error,
                        retryable=retryable, result=result)  # fmt: skip
        job_outcomes.on_finished(session, job)
        return job


def _sync_report(
    sessions: sessionmaker[Session], held: Held, land: Callable[[Session, str], SyncRun]
) -> SyncRun:
    """``land`` what a sync job reports into its run (named by the job's payload)."""
    with transaction(sessions) as session:
        job = _check(session, held)
        if job.type != JobType.SYNC:
            raise Invalid("only sync jobs report inventory and sync progress", field="job_id")
        return land(session, SyncPayload.model_validate(job.payload).sync_run_id)


def sync_batch(sessions: sessionmaker[Session], held: Held, account: AccountInventory) -> SyncRun:
    """One account's inventory, landed in the sync's run."""
    return _sync_report(
        sessions, held, lambda session, run: sync_ingest.ingest_account(session, run, account)
    )


def sync_total(sessions: sessionmaker[Session], held: Held, accounts_total: int) -> SyncRun:
    """How many accounts the sync will read."""
    return _sync_report(
        sessions, held, lambda session, run: sync_ingest.report_total(session, run, accounts_total)
    )


def grant_progress(sessions: sessionmaker[Session], held: Held, pre_existing: bool) -> Job:
    """Before a grant changes anything: whether the access already existed in AWS."""
    with transaction(sessions) as session:
        job = _check(session, held)
        if job.type != JobType.GRANT:
            raise Invalid("only grant jobs report grant progress", field="job_id")
        grant_id = GrantPayload.model_validate(job.payload).grant_id
        grant_jobs.record_pre_existing(session, grant_id, pre_existing)
        return job


def extend(sessions: sessionmaker[Session], held: Held, seconds: int) -> datetime:
    """The lease's new deadline."""
    with transaction(sessions) as session:
        return jobs.extend(session, held.connector_id, held.job_id, held.lease_id, seconds)


def release(sessions: sessionmaker[Session], held: Held) -> Job:
    with transaction(sessions) as session:
        return jobs.release(session, held.connector_id, held.job_id, held.lease_id)
