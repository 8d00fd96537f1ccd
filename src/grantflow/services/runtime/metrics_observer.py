"""Prometheus metrics read from the database by a scheduler tick.

Latencies and failures are computed from timestamps the use cases already write (requests'
``approved_at``/``granted_at``, revoke jobs' ``created_at``/``finished_at``, ``grant.revoke_failed``
audit events, sync runs), for rows that finished since the previous tick of this process. Nothing
in the request path has to remember to observe a metric, and a restarted process starts counting
from its start (Prometheus counters reset with the process anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.connector_jobs import JobType
from grantflow.domain.jobs import JobState
from grantflow.domain.request_states import RequestState
from grantflow.metrics import Metrics
from grantflow.store.db import transaction
from grantflow.store.models import AccessRequest, AuditEvent, Job, SyncRun
from grantflow.store.models_audit import SessionAuditEvent
from grantflow.store.types import utcnow


@dataclass
class Watermarks:
    """What this process has observed already."""

    since: datetime = field(default_factory=utcnow)
    audit_seq: int | None = None


def _requests_by_state(session: Session, metrics: Metrics) -> None:
    counts = dict(session.execute(
        select(AccessRequest.state, func.count()).group_by(AccessRequest.state)).all())  # fmt: skip
    for state in RequestState:
        metrics.requests_by_state.labels(state=state.value).set(counts.get(state.value, 0))


def _latencies(session: Session, metrics: Metrics, since: datetime, until: datetime) -> None:
    granted = session.execute(
        select(AccessRequest.approved_at, AccessRequest.granted_at).where(
            AccessRequest.granted_at > since, AccessRequest.granted_at <= until,
            AccessRequest.approved_at.is_not(None))
    )  # fmt: skip
    for approved_at, granted_at in granted:
        metrics.grant_latency.observe(_seconds(approved_at, granted_at))
    revoked = session.execute(
        select(Job.created_at, Job.finished_at).where(
            Job.type == JobType.REVOKE, Job.state == JobState.SUCCEEDED.value,
            Job.finished_at > since, Job.finished_at <= until)
    )  # fmt: skip
    for created_at, finished_at in revoked:
        metrics.revoke_latency.observe(_seconds(created_at, finished_at))
    runs = session.execute(
        select(SyncRun.state, SyncRun.started_at, SyncRun.finished_at).where(
            SyncRun.finished_at > since, SyncRun.finished_at <= until)
    )  # fmt: skip
    for state, started_at, finished_at in runs:
        metrics.sync_duration.labels(state=state).observe(_seconds(started_at, finished_at))
        if state == "failed":
            metrics.sync_errors.inc()
    stored = session.scalar(select(func.count()).select_from(SessionAuditEvent).where(
        SessionAuditEvent.ingested_at > since, SessionAuditEvent.ingested_at <= until))  # fmt: skip
    metrics.session_audit_events.inc(stored or 0)


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return max((end - start).total_seconds(), 0.0) if start and end else 0.0


def _revoke_failures(session: Session, metrics: Metrics, marks: Watermarks) -> None:
    upto = session.scalar(select(func.max(AuditEvent.seq))) or 0
    if marks.audit_seq is not None:  # the first tick only sets the mark: count from now on
        failed = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.seq > marks.audit_seq, AuditEvent.seq <= upto,
            AuditEvent.action == "grant.revoke_failed"))  # fmt: skip
        metrics.revoke_failures.inc(failed or 0)
    marks.audit_seq = upto


def observe(sessions: sessionmaker[Session], metrics: Metrics, marks: Watermarks) -> None:
    until = utcnow()
    with transaction(sessions) as session:
        _requests_by_state(session, metrics)
        _latencies(session, metrics, marks.since, until)
        _revoke_failures(session, metrics, marks)
    marks.since = until
