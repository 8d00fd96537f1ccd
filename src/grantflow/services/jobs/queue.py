"""The job queue in the database: enqueue, lease, complete, fail, extend, release, expire.

A connector leases its jobs by priority class (``domain.jobs.JobPriority``: revoke, grant,
upkeep, a user's dry run), then in the order they became available, so revocations and expiries
never wait behind other work however much of it is queued; a connector holds at most
``MAX_LEASED_DRY_RUNS`` dry runs at once, so they never take all of its slots either.

Delivery is at-least-once: a lease that runs out puts the job back in the queue, so every
handler on the connector side must be idempotent. Claiming takes row locks with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (several servers may poll one queue); on SQLite
every write transaction begins IMMEDIATE, which serializes claims.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grantflow.domain.jobs import FINAL_STATES, JobPriority, JobState, after_failure, priority_of
from grantflow.services.errors import Conflict, Forbidden, NotFound
from grantflow.store.models import Job
from grantflow.store.types import utcnow

DEFAULT_LEASE_SECONDS = 60
MAX_LEASE_SECONDS = 900
# A connector runs at most this many users' dry runs at once, so they never fill its slots
# (4 by default) and a revocation arriving meanwhile finds one free.
MAX_LEASED_DRY_RUNS = 1


@dataclass(frozen=True, slots=True)
class Leased:
    job: Job
    lease_id: str
    deadline: datetime


def enqueue(
    session: Session,
    connector_id: str,
    job_type: str,
    payload: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    max_attempts: int = 5,
    available_at: datetime | None = None,
    priority: JobPriority | None = None,
) -> Job:
    """Queue a job; with an idempotency key, an unfinished job with that key is reused.

    ``priority`` defaults to the class of ``job_type`` (``domain.jobs.priority_of``)."""
    if idempotency_key is not None:
        existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if existing is not None:
            if JobState(existing.state) not in FINAL_STATES:
                return existing
            existing.idempotency_key = None  # the old run is history; a new one may start
            session.flush()
    job = Job(
        connector_id=connector_id,
        type=job_type,
        payload=payload,
        idempotency_key=idempotency_key,
        max_attempts=max_attempts,
        available_at=available_at or utcnow(),
        state=JobState.QUEUED.value,
        priority=int(priority if priority is not None else priority_of(job_type)),
    )
    if idempotency_key is None:
        session.add(job)
        session.flush()
        return job
    try:
        with session.begin_nested():  # a savepoint: losing the race below keeps the rest
            session.add(job)
            session.flush()
    except IntegrityError:
        # Another transaction (an API call, another replica) queued the same key between
        # the read above and this insert, and committed: that job is the one.
        winner = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if winner is None:
            raise
        return winner
    return job


def lease(session: Session, connector_id: str, max_jobs: int, lease_seconds: int) -> list[Leased]:
    now = utcnow()
    query = (
        select(Job)
        .where(
            Job.connector_id == connector_id,
            Job.state == JobState.QUEUED.value,
            Job.available_at <= now,
        )
        .order_by(Job.priority, Job.available_at, Job.created_at)
        .limit(max_jobs)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    leased = []
    deadline = now + timedelta(seconds=min(lease_seconds, MAX_LEASE_SECONDS))
    dry_runs = MAX_LEASED_DRY_RUNS - _leased_dry_runs(session, connector_id)
    for job in session.scalars(query).all():
        if job.priority >= JobPriority.PLAN:
            if dry_runs <= 0:
                continue  # stays queued: the connector's other slots are kept for real work
            dry_runs -= 1
        job.state = JobState.LEASED.value
        job.lease_id = str(uuid.uuid4())
        job.lease_expires_at = deadline
        job.attempts += 1
        leased.append(Leased(job, job.lease_id, deadline))
    session.flush()
    return leased


def _leased_dry_runs(session: Session, connector_id: str) -> int:
    leased = (
        select(func.count())
        .select_from(Job)
        .where(
            Job.connector_id == connector_id,
            Job.state == JobState.LEASED.value,
            Job.priority == int(JobPriority.PLAN),
        )
    )
    return session.scalar(leased) or 0


def cancel_queued(session: Session, idempotency_key: str, reason: str) -> Job | None:
    """Cancel the job with this key if it is still waiting for a connector (a leased one runs
    to its end); returns the cancelled job. The row lock waits for a lease claiming it now."""
    job = session.scalar(
        select(Job).where(Job.idempotency_key == idempotency_key).with_for_update()
    )
    if job is None or job.state != JobState.QUEUED.value:
        return None
    job.state = JobState.CANCELLED.value
    job.last_error = reason
    job.finished_at = utcnow()
    session.flush()
    return job


def _owned_lease(session: Session, connector_id: str, job_id: str, lease_id: str) -> Job:
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if job.connector_id != connector_id:
        raise Forbidden("this job belongs to another connector")
    if job.state != JobState.LEASED.value or job.lease_id != lease_id:
        raise Conflict("the lease on this job was lost (it expired and the job was requeued)")
    return job


def check_lease(session: Session, connector_id: str, job_id: str, lease_id: str) -> Job:
    """The job, if this connector holds its lease right now."""
    return _owned_lease(session, connector_id, job_id, lease_id)


def complete(
    session: Session, connector_id: str, job_id: str, lease_id: str, result: dict[str, Any]
) -> Job:
    job = _owned_lease(session, connector_id, job_id, lease_id)
    job.state = JobState.SUCCEEDED.value
    job.result = result
    job.finished_at = utcnow()
    job.lease_id = None
    job.lease_expires_at = None
    return job


def fail(
    session: Session,
    connector_id: str,
    job_id: str,
    lease_id: str,
    error: str,
    *,
    retryable: bool,
    result: dict[str, Any] | None = None,
) -> Job:
    job = _owned_lease(session, connector_id, job_id, lease_id)
    now = utcnow()
    outcome = after_failure(job.attempts, job.max_attempts, retryable, now, error)
    job.state = outcome.state.value
    job.last_error = outcome.reason
    job.lease_id = None
    job.lease_expires_at = None
    if result is not None:
        job.result = result
    if outcome.state is JobState.QUEUED and outcome.available_at is not None:
        job.available_at = outcome.available_at
    else:
        job.finished_at = now
    return job


def extend(
    session: Session, connector_id: str, job_id: str, lease_id: str, seconds: int
) -> datetime:
    job = _owned_lease(session, connector_id, job_id, lease_id)
    deadline = utcnow() + timedelta(seconds=min(seconds, MAX_LEASE_SECONDS))
    job.lease_expires_at = deadline
    return deadline


def release(session: Session, connector_id: str, job_id: str, lease_id: str) -> Job:
    """Give a job back unfinished (connector shutting down); the attempt does not count."""
    job = _owned_lease(session, connector_id, job_id, lease_id)
    job.state = JobState.QUEUED.value
    job.attempts = max(job.attempts - 1, 0)
    job.lease_id = None
    job.lease_expires_at = None
    job.available_at = utcnow()
    return job


def requeue_expired(session: Session) -> list[Job]:
    """Return jobs whose lease ran out to the queue (or fail them when attempts are spent)."""
    now = utcnow()
    query = select(Job).where(Job.state == JobState.LEASED.value, Job.lease_expires_at < now)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    expired = list(session.scalars(query).all())
    for job in expired:
        outcome = after_failure(
            job.attempts, job.max_attempts, True, now, "lease expired before the job finished"
        )
        job.state = outcome.state.value
        job.last_error = outcome.reason
        job.lease_id = None
        job.lease_expires_at = None
        if outcome.state is JobState.QUEUED:
            job.available_at = now
        else:
            job.finished_at = now
    session.flush()
    return expired


def queue_depth(session: Session) -> tuple[int, float]:
    """Jobs waiting now, and the age in seconds of the oldest one."""
    now = utcnow()
    waiting = (Job.state == JobState.QUEUED.value, Job.available_at <= now)
    count = session.scalar(select(func.count()).select_from(Job).where(*waiting)) or 0
    oldest = session.scalar(select(func.min(Job.available_at)).where(*waiting))
    return count, (now - oldest).total_seconds() if oldest else 0.0
