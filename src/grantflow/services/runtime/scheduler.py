"""The control plane's periodic duties. The database is the truth; these only read it and act.

Each duty is a plain function over a session factory, run in a thread by ``Workers``; a
process killed between ticks loses nothing because the next tick (here or in another
replica) sees the same rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from functools import partial

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.metrics import Metrics
from grantflow.notify.base import Channel
from grantflow.notify.registry import build_channels, by_name
from grantflow.services.access import grant_jobs, reconcile, requestable, session_cuts
from grantflow.services.audit import audit_checkpoints, audit_sinks
from grantflow.services.audit import trail as audit
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.integrations import session_audit
from grantflow.services.jobs import queue as jobs
from grantflow.services.notifications import notify_delivery, notify_outbox
from grantflow.services.runtime import job_outcomes, metrics_observer
from grantflow.services.runtime.workers import Workers
from grantflow.settings import Settings
from grantflow.store import duty_lock
from grantflow.store.db import transaction
from grantflow.store.models import Integration
from grantflow.store.types import utcnow

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


def start_due_syncs(sessions: sessionmaker[Session]) -> int:
    """Queue a sync for every enabled integration whose next sync time has come."""
    started = 0
    with transaction(sessions) as session:
        if not duty_lock.acquire(session, "periodic-sync"):
            return 0  # another replica is queueing them now
        due = session.scalars(
            select(Integration).where(
                Integration.enabled.is_(True),
                Integration.next_sync_at.is_not(None),
                Integration.next_sync_at <= utcnow(),
            )
        ).all()
        for row in due:
            if integrations.sync_in_flight(session, row) is None:
                integrations.request_sync(session, row, "schedule", audit.SYSTEM)
                started += 1
            else:
                row.next_sync_at = utcnow() + timedelta(seconds=row.sync_interval_seconds or 300)
    return started


RECONCILE_EVERY = timedelta(minutes=10)


def reconcile_integrations(sessions: sessionmaker[Session], repair: bool = True) -> int:
    """Queue a reconciliation for each active integration not checked recently."""
    queued = 0
    now = utcnow()
    with transaction(sessions) as session:
        if not duty_lock.acquire(session, "reconcile"):
            return 0  # another replica is queueing them now
        for row in session.scalars(select(Integration).where(Integration.enabled.is_(True))):
            last = row.facts.get("reconciled_at")
            if last and now - datetime.fromisoformat(last) < RECONCILE_EVERY:
                continue
            if reconcile.enqueue(session, row, repair) is not None:
                queued += 1
            queued += session_cuts.reconcile(session, row) if repair else 0
            row.facts = {**row.facts, "reconciled_at": now.isoformat()}
    return queued


def drive_session_cuts(sessions: sessionmaker[Session]) -> int:
    """Queue the writes and lifts of session cuts the database says are due."""
    with transaction(sessions) as session:
        if not duty_lock.acquire(session, "session-cuts"):
            return 0  # another replica is queueing them now
        return session_cuts.drive(session)


def expire_grants(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        return grant_jobs.expire_due(session)


def observe_queue(sessions: sessionmaker[Session], metrics: Metrics) -> None:
    with transaction(sessions) as session:
        depth, age = jobs.queue_depth(session)
    metrics.jobs_queued.set(depth)
    metrics.jobs_oldest_age.set(age)


def start_audit_ingest(
    sessions: sessionmaker[Session], limits: Mapping[str, int] | None = None
) -> int:
    """Queue CloudTrail ingestion for audit-enabled integrations that are due (``limits``:
    the per-file limits of ``session_audit.payload_limits``)."""
    with transaction(sessions) as session:
        if not duty_lock.acquire(session, "audit-ingest"):
            return 0  # another replica is queueing them now
        return session_audit.enqueue_due(session, limits)


def produce_notifications(sessions: sessionmaker[Session], outbox: notify_outbox.Outbox) -> int:
    """Audit events and approaching expiries become notification deliveries (the outbox)."""
    with transaction(sessions) as session:
        # the cursor is row-locked once it exists; the lock covers creating it (first tick)
        added = (
            notify_outbox.produce(session, outbox)
            if duty_lock.acquire(session, "notify-produce")
            else 0
        )
    with transaction(sessions) as session:
        return added + notify_outbox.warn_expiring(session, outbox)


def deliver_notifications(
    sessions: sessionmaker[Session], channels: list[Channel], metrics: Metrics, max_attempts: int
) -> int:
    sent = notify_delivery.deliver_due(sessions, by_name(channels), metrics, max_attempts)
    with transaction(sessions) as session:
        metrics.notifications_pending.set(notify_delivery.pending_count(session))
    return sent


def install_notifications(
    workers: Workers, sessions: sessionmaker[Session], metrics: Metrics, settings: Settings
) -> list[Channel]:
    """Both notification duties, only when a channel is configured."""
    channels = build_channels(settings)
    if not channels:
        return []
    outbox = notify_outbox.Outbox(channels, settings.base_url)
    max_attempts = settings.notify_max_attempts
    workers.every("notify-produce", 1.0, _threaded(lambda: produce_notifications(sessions, outbox)))
    workers.every(
        "notify-deliver",
        1.0,
        _threaded(lambda: deliver_notifications(sessions, channels, metrics, max_attempts)),
    )
    return channels


def install_audit_checkpoints(
    workers: Workers, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Sign a checkpoint of the audit chains every interval (when they moved) and send it to
    the sinks outside the database; only when there is an audit key."""
    keys = audit.factory_keyring(sessions)
    if keys.current is None:
        log.warning("audit_checkpoints_off", reason="no audit key (GRANTFLOW_AUDIT_KEY)")
        return
    sinks = audit_sinks.build(settings)
    interval = settings.audit_checkpoint_interval_seconds
    take = partial(audit_checkpoints.take, sessions, keys, sinks, interval)
    workers.every("audit-checkpoint", min(interval, 15.0), _threaded(take))


def _threaded(func: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def tick() -> None:
        await asyncio.to_thread(func)

    return tick


def install(
    workers: Workers,
    sessions: sessionmaker[Session],
    metrics: Metrics,
    settings: Settings | None = None,
) -> None:
    trail_limits = session_audit.payload_limits(settings) if settings is not None else None
    workers.every("lease-expiry", 1.0, _threaded(lambda: requeue_expired_leases(sessions, metrics)))
    workers.every("queue-metrics", 10.0, _threaded(lambda: observe_queue(sessions, metrics)))
    workers.every("periodic-sync", 5.0, _threaded(lambda: start_due_syncs(sessions)))
    workers.every("grant-expiry", 0.5, _threaded(lambda: expire_grants(sessions)))
    workers.every("session-cuts", 2.0, _threaded(lambda: drive_session_cuts(sessions)))
    workers.every("reconcile", 60.0, _threaded(lambda: reconcile_integrations(sessions)))
    workers.every("eligibility-warm", 2.0, _threaded(lambda: requestable.warm_tick(sessions)))
    workers.every(
        "audit-ingest", 60.0, _threaded(lambda: start_audit_ingest(sessions, trail_limits))
    )
    marks = metrics_observer.Watermarks()
    workers.every(
        "db-metrics", 15.0, _threaded(lambda: metrics_observer.observe(sessions, metrics, marks))
    )
