"""Regressions found by the hardening runs: grant and revoke jobs of one AWS tuple finishing
in an unlucky order, on both database backends (the job protocol's complete → on_finished)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.access import grant_jobs
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime import job_outcomes
from grantflow.store.db import build_engine, transaction
from grantflow.store.models import AccessRequest, Connector, Grant, Integration, Job, User
from grantflow.store.types import utcnow
from tests.fixtures.db import postgresql_only

CID = "gfc-racesracesracesraces"
TUPLE = "assignment:111111111111:arn:aws:sso:::permissionSet/ssoins-1/ps-1:u-1"
HANDLE: dict[str, Any] = {"kind": "account_assignment", "pre_existing": False}


def _setup(session: Session) -> tuple[str, str]:
    session.add(Connector(id=CID, name="c", kind="self_hosted", token_hash="x" * 64,
                          token_prefix="x"))  # fmt: skip
    config = {"region": "us-east-1", "sso_region": "us-east-1",
              "sso_portal": "https://x.awsapps.com/start",
              "management_role_arn": "arn:aws:iam::111111111111:role/r"}  # fmt: skip
    integ = Integration(name="races", type="aws-organization", connector_id=CID,
                        resource_types=["aws-account"], config=config)  # fmt: skip
    user = User(username="alice")
    session.add_all([integ, user])
    session.flush()
    return integ.id, user.id


def _request(session: Session, integ: str, user: str, state: str, grant_state: str) -> Grant:
    request = AccessRequest(
        requester_id=user, integration_id=integ, resource_type="aws-account",
        permission="ReadOnlyAccess", duration_seconds=3600, state=state,
    )  # fmt: skip
    session.add(request)
    session.flush()
    grant = Grant(request_id=request.id, state=grant_state, tuple_key=TUPLE, spec={"x": 1},
                  handle=HANDLE if grant_state != "granting" else {})  # fmt: skip
    session.add(grant)
    session.flush()
    return grant


def _finish(sessions: sessionmaker[Session], job_id: str, result: dict[str, Any]) -> None:
    """Lease the job and report it done, as the connector protocol does."""
    with transaction(sessions) as session:
        jobs.lease(session, CID, 50, 60)
        lease_id = session.get(Job, job_id).lease_id  # type: ignore[union-attr]
    assert lease_id is not None
    with transaction(sessions) as session:
        job = jobs.complete(session, CID, job_id, lease_id, result)
        job_outcomes.on_finished(session, job)


def _queued(session: Session, job_type: str, grant_id: str) -> list[Job]:
    return [
        j
        for j in session.scalars(select(Job).where(Job.type == job_type, Job.state == "queued"))
        if j.payload.get("grant_id") == grant_id
    ]


def test_a_regranted_grant_stays_granted(sessions: sessionmaker[Session]) -> None:
    """Reconciliation's repair (or a regrant after a revoke) runs a grant job for a grant whose
    request is already granted: it used to be treated as "revoked while granting" and undone."""
    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        grant = _request(session, integ_id, user_id, "granted", "granted")
        integ = session.get(Integration, integ_id)
        assert integ is not None
        job_id = grant_jobs.enqueue_grant(session, integ, grant).id
        grant_id = grant.id
    _finish(sessions, job_id, {"handle": HANDLE})
    with transaction(sessions) as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        assert grant.state == "granted"
        assert _queued(session, "revoke", grant_id) == []


def test_a_grant_that_ran_while_its_tuple_was_revoked_is_granted_again(
    sessions: sessionmaker[Session],
) -> None:
    """A's revoke deletes the assignment while B's grant job (same tuple) had already found it
    in place and done nothing; A's revoke reports first. B must be granted again."""
    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        a = _request(session, integ_id, user_id, "revoking", "granted")
        b = _request(session, integ_id, user_id, "granting", "granting")
        integ = session.get(Integration, integ_id)
        assert integ is not None
        revoke_job = grant_jobs.enqueue_revoke(session, a)
        assert revoke_job is not None
        revoke_id, a_id, b_id = revoke_job.id, a.id, b.id
        grant_job = grant_jobs.enqueue_grant(session, integ, b).id
    _finish(sessions, revoke_id, {"status": "revoked"})  # B still granting: no regrant yet
    _finish(sessions, grant_job, {"handle": HANDLE})  # B planned before the delete: a no-op
    with transaction(sessions) as session:
        b_row = session.get(Grant, b_id)
        a_row = session.get(Grant, a_id)
        assert a_row is not None and a_row.state == "revoked"
        assert b_row is not None and b_row.state == "granted"
        again = _queued(session, "grant", b_id)
        assert len(again) == 1  # granted again: the assignment is back
    _finish(sessions, again[0].id, {"handle": HANDLE})
    with transaction(sessions) as session:
        b_row = session.get(Grant, b_id)
        assert b_row is not None and b_row.state == "granted"
        assert _queued(session, "grant", b_id) == []  # and no endless loop
        assert _queued(session, "revoke", b_id) == []


def test_a_grant_created_after_the_revoke_is_not_granted_twice(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        a = _request(session, integ_id, user_id, "revoking", "granted")
        a.state, a.revoked_at = "revoked", utcnow()
        b = _request(session, integ_id, user_id, "granting", "granting")
        integ = session.get(Integration, integ_id)
        assert integ is not None
        session.flush()
        job_id, b_id = grant_jobs.enqueue_grant(session, integ, b).id, b.id
    _finish(sessions, job_id, {"handle": HANDLE})
    with transaction(sessions) as session:
        assert _queued(session, "grant", b_id) == []


def test_an_assignment_another_grant_is_creating_is_not_pre_existing(
    sessions: sessionmaker[Session],
) -> None:
    """A is granting (it found the tuple absent and is creating it); B plans after A's create
    and finds it there. B used to record it as pre-existing, so no revoke ever removed it."""
    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        a = _request(session, integ_id, user_id, "granting", "granting")
        b = _request(session, integ_id, user_id, "granting", "granting")
        integ = session.get(Integration, integ_id)
        assert integ is not None
        a_id, b_id = a.id, b.id
        grant_jobs.record_pre_existing(session, a_id, False)  # A saw it absent
        grant_jobs.record_pre_existing(session, b_id, True)  # B saw A's assignment
        job_id = grant_jobs.enqueue_grant(session, integ, b).id
    _finish(sessions, job_id, {"handle": {**HANDLE, "pre_existing": True}})
    with transaction(sessions) as session:
        b_row = session.get(Grant, b_id)
        assert b_row is not None
        assert b_row.pre_existing is False
        assert b_row.handle["pre_existing"] is False  # what the revoke job will act on


def test_an_assignment_left_for_a_grant_still_planning_is_handed_over_not_pre_existing(
    sessions: sessionmaker[Session],
) -> None:
    """Found by the chaos run: A created the assignment; B (same tuple) was still granting,
    its connector killed mid-job; A's revoke kept the assignment for B; B's retried job then
    found it in AWS with no live maker left, recorded it as pre-existing, and B's revoke kept
    it for ever (a lost revocation). A's revoke now hands the assignment over to B."""
    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        a = _request(session, integ_id, user_id, "revoking", "granted")
        a.pre_existing = False  # A found it absent and created it
        b = _request(session, integ_id, user_id, "granting", "granting")
        integ = session.get(Integration, integ_id)
        assert integ is not None
        revoke_job = grant_jobs.enqueue_revoke(session, a)
        assert revoke_job is not None and revoke_job.payload["still_needed"] is True
        revoke_id, b_id = revoke_job.id, b.id
        grant_job = grant_jobs.enqueue_grant(session, integ, b).id
    _finish(sessions, revoke_id, {"status": "kept-still-needed"})
    with transaction(sessions) as session:
        grant_jobs.record_pre_existing(session, b_id, True)  # the retry sees it in place
    _finish(sessions, grant_job, {"handle": {**HANDLE, "pre_existing": True}})
    with transaction(sessions) as session:
        b_row = session.get(Grant, b_id)
        assert b_row is not None and b_row.state == "granted"
        assert b_row.pre_existing is False
        assert b_row.handle["pre_existing"] is False  # so B's revoke removes it
        revoke_b = grant_jobs.enqueue_revoke(session, b_row)
        assert revoke_b is not None
        assert revoke_b.payload["handle"]["pre_existing"] is False
        assert revoke_b.payload["still_needed"] is False


def test_standing_access_stays_pre_existing_for_every_grant(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        a = _request(session, integ_id, user_id, "granted", "granted")
        a.pre_existing = True  # it existed before Grantflow
        b = _request(session, integ_id, user_id, "granting", "granting")
        session.flush()
        grant_jobs.record_pre_existing(session, b.id, True)
        assert b.pre_existing is True


def _someone_waits_for_a_lock(db_url: str) -> bool:
    """A session of this test's database waits for a lock (its own connection: inside a
    transaction, PostgreSQL shows the activity as it was when the transaction first looked)."""
    engine = build_engine(db_url)
    try:
        with engine.connect() as conn:
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        return bool(waiting)
    finally:
        engine.dispose()


@postgresql_only  # SQLite serializes every write transaction: no row locks to interleave
def test_a_finishing_job_and_an_expiry_do_not_deadlock(
    sessions: sessionmaker[Session], db_url: str
) -> None:
    """Two replicas: one expires a request (it holds the audit chain's lock, then updates the
    grant), the other completes a job of the same tuple (it locked the grant rows, then wanted
    the audit lock): PostgreSQL found a deadlock and aborted one of them."""
    import threading
    import time

    from grantflow.services.audit import trail as audit

    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        a = _request(session, integ_id, user_id, "revoking", "granted")
        revoke_job = grant_jobs.enqueue_revoke(session, a)
        assert revoke_job is not None
        job_id, a_id = revoke_job.id, a.id
    with transaction(sessions) as session:
        jobs.lease(session, CID, 50, 60)
        lease_id = session.get(Job, job_id).lease_id  # type: ignore[union-attr]
    errors: list[BaseException] = []

    def finish() -> None:
        try:
            with transaction(sessions) as session:
                job = jobs.complete(session, CID, job_id, str(lease_id), {"status": "revoked"})
                job_outcomes.on_finished(session, job)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    with transaction(sessions) as expiring:
        audit.record(expiring, audit.SYSTEM, "request.expire", "access_request", "x")
        finisher = threading.Thread(target=finish)
        finisher.start()
        deadline = time.monotonic() + 60
        while not _someone_waits_for_a_lock(db_url):  # the finisher reached the audit lock
            assert finisher.is_alive() and time.monotonic() < deadline, errors
            time.sleep(0.05)
        row = expiring.get(Grant, a_id)
        assert row is not None
        row.error = "touched by the expiry"
        expiring.flush()
    finisher.join(30)
    assert errors == []


def test_reconciliation_does_not_revoke_again_what_another_grant_now_holds(
    sessions: sessionmaker[Session],
) -> None:
    """Reconciliation checked a revoked grant A; meanwhile B of the same tuple was granted, so
    AWS holds the assignment. That is no drift: it used to be reported and "repaired" by a
    second revoke of A (and a second grant.revoked event)."""
    from grantflow.services.access import reconcile

    with transaction(sessions) as session:
        integ_id, user_id = _setup(session)
        a = _request(session, integ_id, user_id, "revoked", "revoked")
        a.revoked_at = utcnow()
        b = _request(session, integ_id, user_id, "granted", "granted")
        session.flush()
        job = jobs.enqueue(session, CID, "plan", {"integration_id": integ_id, "repair": True})
        items = [{"grant_id": a.id, "action": "revoke", "in_sync": False},
                 {"grant_id": b.id, "action": "grant", "in_sync": True}]  # fmt: skip
        job.result = {"items": items}
        assert reconcile.finished(session, job) == []
        assert a.state == "revoked"
        assert _queued(session, "revoke", a.id) == []
