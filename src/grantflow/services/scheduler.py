"""The control plane's periodic duties. The database is the truth; these only read it and act.

Each duty is a plain function over a session factory, run in a thread by ``Workers``; a
process killed between ticks loses nothing because the next tick (here or in another
replica) sees the same rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.orm import Session, sessionmaker

from grantflow.api.metrics import Metrics
from grantflow.services import audit, job_outcomes, jobs
from grantflow.services.workers import Workers
from grantflow.store.db import transaction

log = structlog.get_logger(__name__)


def requeue_expired_leases(sessions: sessionmaker[Session], metrics: Metrics) -> int:
    with transaction(sessions) as session:
        expired = jobs.requeue_expired(session)
        for job in expired:
            audit.record(
                session,
                audit.SYSTEM,
                "job.lease_expired",
                "job",
                job.id,
                {"type": job.type, "attempts": job.attempts, "state": job.state},
            )
            job_outcomes.on_finished(session, job)
    if expired:
        metrics.lease_expiries.inc(len(expired))
        log.info("job_leases_expired", count=len(expired))
    return len(expired)


def observe_queue(sessions: sessionmaker[Session], metrics: Metrics) -> None:
    with transaction(sessions) as session:
        depth, age = jobs.queue_depth(session)
    metrics.jobs_queued.set(depth)
    metrics.jobs_oldest_age.set(age)


def _threaded(func: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def tick() -> None:
        await asyncio.to_thread(func)

    return tick


def install(workers: Workers, sessions: sessionmaker[Session], metrics: Metrics) -> None:
    workers.every("lease-expiry", 1.0, _threaded(lambda: requeue_expired_leases(sessions, metrics)))
    workers.every("queue-metrics", 10.0, _threaded(lambda: observe_queue(sessions, metrics)))
