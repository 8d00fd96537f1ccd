"""Scheduler duties that read and then insert run in one replica at a time (``duty_lock``).

Two replicas on one PostgreSQL database both decided to queue the same periodic sync (or
reconciliation); the job's unique idempotency key stopped the second insert and that
replica's tick failed with an IntegrityError, logged as an error on every multi-replica
deployment. Here two threads play the two replicas, made to read the due integrations at the
same moment; and a tick finding the duty's lock held must skip at once, not wait.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.notify.base import Channel
from grantflow.services.access import reconcile
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.notifications import notify_outbox
from grantflow.services.runtime import scheduler
from grantflow.store import duty_lock
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessRequest,
    Connector,
    Grant,
    Integration,
    Job,
    SyncRun,
    User,
)
from grantflow.store.models_notify import NotificationCursor
from grantflow.store.types import utcnow
from tests.fixtures.db import postgresql_only

CID = "gfc-dutylocksdutylocksdut"


def _due_integration(session: Session) -> str:
    """An enabled integration whose sync is due, never reconciled or audited, with one live
    grant (so reconciliation and audit ingestion have something to queue)."""
    session.add(Connector(id=CID, name="c", kind="self_hosted", token_hash="d" * 64,
                          token_prefix="d"))  # fmt: skip
    config = {"region": "us-east-1", "sso_region": "us-east-1",
              "sso_portal": "https://x.awsapps.com/start",
              "management_role_arn": "arn:aws:iam::111111111111:role/r",
              "enable_audit": True, "audit_bucket": "trail-bucket"}  # fmt: skip
    integ = Integration(name="duty-locks", type="aws-organization", connector_id=CID,
                        resource_types=["aws-account"], config=config, status="active",
                        facts={"organization_id": "o-example"}, sync_interval_seconds=300,
                        next_sync_at=utcnow() - timedelta(seconds=5))  # fmt: skip
    user = User(username="alice")
    session.add_all([integ, user])
    session.flush()
    request = AccessRequest(
        requester_id=user.id, integration_id=integ.id, resource_type="aws-account",
        permission="ReadOnlyAccess", duration_seconds=3600, state="granted",
    )  # fmt: skip
    session.add(request)
    session.flush()
    session.add(Grant(request_id=request.id, state="granted", tuple_key="assignment:dl",
                      spec={"kind": "account_assignment", "account_id": "111111111111"},
                      handle={"kind": "account_assignment", "pre_existing": False},
                      granted_at=utcnow() - timedelta(minutes=1)))  # fmt: skip
    return integ.id


def _jobs(sessions: sessionmaker[Session], job_type: str) -> int:
    with transaction(sessions) as session:
        return (
            session.scalar(select(func.count()).select_from(Job).where(Job.type == job_type)) or 0
        )


def _meeting_point(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str
) -> Callable[[], None]:
    """Make ``module.name`` wait, the first time each thread calls it, until the other thread
    has called it too or finished its tick: both "replicas" then act on what they read at the
    same moment. Returns what a thread calls when its tick is over."""
    barrier = threading.Barrier(2, timeout=20)
    met: set[int] = set()
    original = getattr(module, name)

    def meet() -> None:
        if threading.get_ident() not in met:
            met.add(threading.get_ident())
            barrier.wait()

    def waiting(*args: Any, **kwargs: Any) -> Any:
        meet()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, waiting)
    return meet


def _race(
    tick: Callable[[], int], after: Callable[[], None]
) -> tuple[list[int], list[BaseException]]:
    results: list[int] = []
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            results.append(tick())
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)
        finally:
            with contextlib.suppress(threading.BrokenBarrierError):
                after()  # let the other replica go on if this one never reached the point

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    return results, errors


@postgresql_only
def test_two_replicas_queue_one_periodic_sync(
    sessions: sessionmaker[Session], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(sessions) as session:
        integ_id = _due_integration(session)
    after = _meeting_point(monkeypatch, integrations, "sync_in_flight")
    results, errors = _race(lambda: scheduler.start_due_syncs(sessions), after)
    assert errors == []
    assert sorted(results) == [0, 1]
    assert _jobs(sessions, "sync") == 1
    with transaction(sessions) as session:
        runs = session.scalars(select(SyncRun).where(SyncRun.integration_id == integ_id)).all()
        assert [r.generation for r in runs] == [1]


@postgresql_only
def test_two_replicas_queue_one_reconciliation(
    sessions: sessionmaker[Session], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with transaction(sessions) as session:
        _due_integration(session)
    after = _meeting_point(monkeypatch, reconcile, "enqueue")
    results, errors = _race(lambda: scheduler.reconcile_integrations(sessions), after)
    assert errors == []
    assert sorted(results) == [0, 1]
    assert _jobs(sessions, "plan") == 1


def _notify_produce(sessions: sessionmaker[Session]) -> int:
    channels: list[Channel] = []
    outbox = notify_outbox.Outbox(channels, "http://grantflow.test")
    return scheduler.produce_notifications(sessions, outbox)


def _cursors(sessions: sessionmaker[Session]) -> int:
    with transaction(sessions) as session:
        return session.scalar(select(func.count()).select_from(NotificationCursor)) or 0


# duty name, its tick, what the tick leaves behind when it runs (0 before)
Tick = Callable[[sessionmaker[Session]], int]
DUTIES: list[tuple[str, Tick, Tick]] = [
    ("periodic-sync", scheduler.start_due_syncs, lambda s: _jobs(s, "sync")),
    ("reconcile", scheduler.reconcile_integrations, lambda s: _jobs(s, "plan")),
    ("audit-ingest", scheduler.start_audit_ingest, lambda s: _jobs(s, "audit_ingest")),
    ("notify-produce", _notify_produce, _cursors),  # its first tick creates the cursor
]


def _while_held(run: Callable[[], int]) -> int:
    """``run()`` in another thread; its answer, which must come while this thread holds on."""
    answers: list[int] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            answers.append(run())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(120)  # a bound for a loaded machine; a tick waiting for the lock never ends
    assert not thread.is_alive(), "the tick waited for the replica holding the duty"
    assert errors == []
    return answers[0]


@postgresql_only
@pytest.mark.parametrize(("duty", "tick", "effect"), DUTIES, ids=[d[0] for d in DUTIES])
def test_a_tick_skips_at_once_while_another_replica_holds_the_duty(
    sessions: sessionmaker[Session],
    db_url: str,
    duty: str,
    tick: Tick,
    effect: Tick,
) -> None:
    with transaction(sessions) as session:
        _due_integration(session)
    with transaction(sessions) as holder:
        assert duty_lock.acquire(holder, duty)
        # Skipped, did not wait for the holder: it returns while the holder still holds the
        # lock (a tick that waited could only return after the holder commits, below).
        assert _while_held(lambda: tick(sessions)) == 0
        assert effect(sessions) == 0
    tick(sessions)  # the holder committed: the next tick does the work
    assert effect(sessions) == 1


@postgresql_only
def test_the_lock_is_the_transactions_and_each_duty_has_its_own(
    sessions: sessionmaker[Session], db_url: str
) -> None:
    with transaction(sessions) as first:
        assert duty_lock.acquire(first, "periodic-sync")
        assert duty_lock.acquire(first, "periodic-sync")  # re-entrant in one transaction
        with transaction(sessions) as second:
            assert not duty_lock.acquire(second, "periodic-sync")
            assert duty_lock.acquire(second, "reconcile")
    with transaction(sessions) as third:  # released at commit
        assert duty_lock.acquire(third, "periodic-sync")
    with pytest.raises(RuntimeError), transaction(sessions) as failing:
        assert duty_lock.acquire(failing, "periodic-sync")
        raise RuntimeError("tick failed")
    with transaction(sessions) as fourth:  # and at rollback
        assert duty_lock.acquire(fourth, "periodic-sync")
    assert len({duty_lock.key_of(name) for name, _, _ in DUTIES}) == len(DUTIES)
    assert duty_lock.key_of("periodic-sync") == duty_lock.key_of("periodic-sync")


def test_the_duties_run_on_either_backend(sessions: sessionmaker[Session]) -> None:
    """On SQLite ``acquire`` always succeeds (one writer at a time); both backends queue."""
    with transaction(sessions) as session:
        _due_integration(session)
        assert duty_lock.acquire(session, "periodic-sync")
    assert scheduler.start_due_syncs(sessions) == 1
    assert scheduler.start_due_syncs(sessions) == 0  # next sync in 300 s
    assert scheduler.reconcile_integrations(sessions) == 1
    assert scheduler.reconcile_integrations(sessions) == 0  # reconciled just now
    assert scheduler.start_audit_ingest(sessions) == 1
    assert _notify_produce(sessions) == 0 and _cursors(sessions) == 1
    assert (_jobs(sessions, "sync"), _jobs(sessions, "plan"), _jobs(sessions, "audit_ingest")) == (
        1,
        1,
        1,
    )
