"""Metrics read from the database by the scheduler tick."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from grantflow.metrics import Metrics
from grantflow.services.audit import trail as audit
from grantflow.services.runtime import metrics_observer
from grantflow.store.db import transaction


def _value(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def test_requests_by_state_and_failed_revokes(sessions: sessionmaker[Session]) -> None:
    metrics, marks = Metrics(), metrics_observer.Watermarks()
    metrics_observer.observe(sessions, metrics, marks)
    with transaction(sessions) as session:
        for _ in range(2):
            audit.record(session, audit.SYSTEM, "grant.revoke_failed", "grant", "g-1", {})
        audit.record(session, audit.SYSTEM, "grant.revoked", "grant", "g-1", {})
    metrics_observer.observe(sessions, metrics, marks)
    metrics_observer.observe(sessions, metrics, marks)  # nothing new: nothing counted twice
    assert _value(metrics, "grantflow_revoke_failures_total") == 2
    assert _value(metrics, "grantflow_access_requests", {"state": "pending"}) == 0
