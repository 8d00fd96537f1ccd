"""Two transactions queue the same idempotent work at the same moment (two admins pressing
"Sync now", an admin and the schedule, two replicas): both get the one job, neither a 500.

The scheduler's own ticks are kept apart by ``duty_lock``; API calls are not, so the insert
itself must settle the race (a savepoint around it, and the winner read back).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.jobs import queue as jobs
from grantflow.store.db import transaction
from grantflow.store.models import Integration, SyncRun
from tests.fixtures.db import postgresql_only
from tests.hardening.test_duty_locks import (
    CID,
    _due_integration,
    _jobs,
    _meeting_point,
    _race,
)


@postgresql_only
def test_two_manual_syncs_at_once_share_one_run(
    sessions: sessionmaker[Session], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(sessions) as session:
        integ_id = _due_integration(session)
    after = _meeting_point(monkeypatch, integrations, "sync_in_flight")
    runs: list[str] = []

    def sync_now() -> int:
        with transaction(sessions) as session:
            row = session.get(Integration, integ_id)
            assert row is not None
            runs.append(integrations.request_sync(session, row, "manual", audit.SYSTEM).id)
        return 1

    results, errors = _race(sync_now, after)
    assert errors == []
    assert results == [1, 1] and len(set(runs)) == 1  # both answered with the same run
    assert _jobs(sessions, "sync") == 1
    with transaction(sessions) as session:
        stored = session.scalars(select(SyncRun).where(SyncRun.integration_id == integ_id)).all()
        assert [r.generation for r in stored] == [1]


@postgresql_only
def test_the_same_idempotency_key_queued_twice_at_once_is_one_job(
    sessions: sessionmaker[Session], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(sessions) as session:
        _due_integration(session)
    after = _meeting_point(monkeypatch, jobs, "utcnow")  # between the read and the insert
    ids: list[str] = []

    def queue() -> int:
        with transaction(sessions) as session:
            job = jobs.enqueue(session, CID, "plan", {"x": 1}, idempotency_key="race:1")
            ids.append(job.id)
        return 1

    results, errors = _race(queue, after)
    assert errors == [] and results == [1, 1]
    assert len(set(ids)) == 1
    assert _jobs(sessions, "plan") == 1


def test_enqueue_still_reuses_and_renews_keys_on_both_backends(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        _due_integration(session)
        first = jobs.enqueue(session, CID, "plan", {}, idempotency_key="k")
        assert jobs.enqueue(session, CID, "plan", {}, idempotency_key="k").id == first.id
        first.state = "succeeded"
        session.flush()
        again = jobs.enqueue(session, CID, "plan", {}, idempotency_key="k")
        assert again.id != first.id and first.idempotency_key is None
