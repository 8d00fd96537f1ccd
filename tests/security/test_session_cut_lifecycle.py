"""Session cuts driven from the database (services.session_cuts), on both backends: which
revokes cut sessions, what the connector's job carries, and what its outcome does — cut,
lift, retry, a deleted permission set, access held again, a lease lost mid-cut,
reconciliation. The connector side is tests/aws/grants/test_session_policy.py (moto)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.jobs import JobPriority
from grantflow.services.access import grant_jobs, session_cuts
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime import job_outcomes
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessRequest,
    AuditEvent,
    Connector,
    DirectoryPrincipal,
    Grant,
    Integration,
    Job,
    User,
)
from grantflow.store.models_session_cuts import SessionCut
from grantflow.store.types import utcnow

CID = "gfc-cutscutscutscutscuts"
ACCOUNT = "111111111111"
PS = "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-1111111111111111"
APPLIED = {"status": "applied", "changed": True, "session_seconds": 3600}


def _handle(kind: str = "pooled_permission_set", pre_existing: bool = False) -> dict[str, Any]:
    handle: dict[str, Any] = {
        "kind": kind, "instance_arn": "arn:aws:sso:::instance/ssoins-1111111111111111",
        "identity_store_id": "d-1", "principal_id": "u-1", "pre_existing": pre_existing,
        "assignment": [ACCOUNT, PS, "u-1"],
    }  # fmt: skip
    if kind == "pooled_permission_set":
        handle.update(permission_set_name="Grantflow-abc-RO", permission_set_arn=PS)
    return handle


def _world(session: Session, opt_in: bool = False) -> str:
    session.add(Connector(id=CID, name="c", kind="self_hosted", token_hash="y" * 64,
                          token_prefix="y"))  # fmt: skip
    config = {"region": "us-east-1", "sso_region": "us-east-1",
              "sso_portal": "https://x.awsapps.com/start",
              "management_role_arn": "arn:aws:iam::111111111111:role/r",
              "cut_sessions_on_own_permission_sets": opt_in}  # fmt: skip
    integ = Integration(name="cuts", type="aws-organization", connector_id=CID,
                        resource_types=["s3-bucket"], config=config)  # fmt: skip
    session.add(integ)
    session.add(DirectoryPrincipal(identity_store_id="d-1", principal_id="u-1",
                                   user_name="alice@example.com"))  # fmt: skip
    session.flush()
    return integ.id


def _grant(session: Session, integ_id: str, state: str, handle: dict[str, Any]) -> Grant:
    user = User(username=f"alice-{utcnow().timestamp()}")
    session.add(user)
    session.flush()
    request = AccessRequest(requester_id=user.id, integration_id=integ_id,
                            resource_type="s3-bucket", permission="read-only",
                            duration_seconds=3600, state=state)  # fmt: skip
    session.add(request)
    session.flush()
    grant = Grant(request_id=request.id, state="granted", tuple_key=f"ps|{ACCOUNT}|b|ro|u-1",
                  spec={"x": 1}, handle=handle, pre_existing=handle["pre_existing"])  # fmt: skip
    session.add(grant)
    session.flush()
    return grant


def _finish(sessions: sessionmaker[Session], job_id: str, result: dict[str, Any] | None,
            *, error: str = "") -> None:  # fmt: skip
    """Lease the job and report it, as the connector protocol does (None: failed)."""
    with transaction(sessions) as session:
        jobs.lease(session, CID, 50, 60)
        lease_id = session.get(Job, job_id).lease_id  # type: ignore[union-attr]
    assert lease_id is not None
    with transaction(sessions) as session:
        if result is None:
            job = jobs.fail(session, CID, job_id, lease_id, error, retryable=False)
        else:
            job = jobs.complete(session, CID, job_id, lease_id, result)
        job_outcomes.on_finished(session, job)


def _revoke(
    sessions: sessionmaker[Session],
    handle: dict[str, Any] | None = None,
    opt_in: bool = False,
    result: dict[str, Any] | None = None,
) -> tuple[str, str]:
    with transaction(sessions) as session:
        integ_id = _world(session, opt_in)
        grant = _grant(session, integ_id, "revoking", handle or _handle())
        job = grant_jobs.enqueue_revoke(session, grant)
        assert job is not None
        job_id, grant_id = job.id, grant.id
    _finish(sessions, job_id, result or {"status": "revoked"})
    return integ_id, grant_id


def _cut_jobs(session: Session, state: str = "queued") -> list[Job]:
    return list(session.scalars(select(Job).where(Job.type == "session_cuts",
                                                  Job.state == state)))  # fmt: skip


def _cut(session: Session, grant_id: str) -> SessionCut | None:
    return session.scalar(select(SessionCut).where(SessionCut.grant_id == grant_id))


def _actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).where(
        AuditEvent.action.like("sessions.%")).order_by(AuditEvent.seq)))  # fmt: skip


def test_a_revoked_pooled_grant_is_cut_then_lifted_once_its_sessions_expired(
    sessions: sessionmaker[Session],
) -> None:
    _integ, grant_id = _revoke(sessions)
    with transaction(sessions) as session:
        cut = _cut(session, grant_id)
        assert cut is not None and cut.state == "pending" and cut.managed
        (job,) = _cut_jobs(session)
        assert job.priority == JobPriority.REVOKE  # ending sessions is revocation
        assert job.payload["cuts"] == [{"cut_id": cut.id, "account_id": ACCOUNT,
                                        "user_name": "alice@example.com",
                                        "not_before": cut.not_before.isoformat()}]  # fmt: skip
        assert job.payload["accounts"] == [ACCOUNT] and job.payload["provision"] == "always"
        assert cut.not_before >= utcnow()  # covers every session issued before the revoke
        job_id = job.id
    _finish(sessions, job_id, APPLIED)
    with transaction(sessions) as session:
        cut = _cut(session, grant_id)
        assert cut is not None and cut.state == "active" and cut.cut_at is not None
        assert cut.release_after == cut.not_before + timedelta(seconds=3660)
        assert _actions(session) == ["sessions.revoked"]
        assert session_cuts.drive(session) == 0  # not due yet: nothing queued
        assert _cut_jobs(session) == []
        session.execute(update(SessionCut).values(release_after=utcnow() - timedelta(seconds=1)))
    with transaction(sessions) as session:
        assert session_cuts.drive(session) == 1
        (job,) = _cut_jobs(session)
        assert job.payload["cuts"] == [] and job.payload["accounts"] == [ACCOUNT]
        assert job.payload["releases"] == [{"cut_id": cut.id, "why": "sessions-expired"}]
        job_id = job.id
    _finish(sessions, job_id, {**APPLIED})
    with transaction(sessions) as session:
        cut = _cut(session, grant_id)
        assert cut is not None and cut.state == "released" and cut.released_at is not None
        assert _actions(session) == ["sessions.revoked", "sessions.release"]
        assert session_cuts.drive(session) == 0 and _cut_jobs(session) == []


def test_which_revokes_cut_sessions(sessions: sessionmaker[Session]) -> None:
    # the organization's own permission set: only with the integration's opt-in
    _i, grant_id = _revoke(sessions, _handle("account_assignment"))
    with transaction(sessions) as session:
        assert _cut(session, grant_id) is None and _cut_jobs(session) == []
        session.execute(update(Integration).values(config={
            **session.scalars(select(Integration)).one().config,
            "cut_sessions_on_own_permission_sets": True}))  # fmt: skip
        integ = session.scalars(select(Integration)).one()
        grant = _grant(session, integ.id, "revoking", _handle("account_assignment"))
        job = grant_jobs.enqueue_revoke(session, grant)
        assert job is not None
        job_id, opted_grant = job.id, grant.id
    _finish(sessions, job_id, {"status": "revoked"})
    with transaction(sessions) as session:
        cut = _cut(session, opted_grant)
        assert cut is not None and not cut.managed and cut.state == "pending"


def test_no_cut_for_access_that_existed_before_or_that_another_grant_holds(
    sessions: sessionmaker[Session],
) -> None:
    _i, kept = _revoke(sessions, _handle(pre_existing=True), result={"status": "kept-pre-existing"})
    with transaction(sessions) as session:
        assert _cut(session, kept) is None
        integ = session.scalars(select(Integration)).one()
        _grant(session, integ.id, "granted", _handle())  # holds the same tuple
        grant = _grant(session, integ.id, "revoking", _handle())
        job = grant_jobs.enqueue_revoke(session, grant)
        assert job is not None and job.payload["still_needed"] is True
        job_id, held = job.id, grant.id
    _finish(sessions, job_id, {"status": "kept-still-needed"})
    with transaction(sessions) as session:
        assert _cut(session, held) is None and _cut_jobs(session) == []


def test_a_failed_cut_is_recorded_and_retried_later(sessions: sessionmaker[Session]) -> None:
    _integ, grant_id = _revoke(sessions)
    with transaction(sessions) as session:
        (job,) = _cut_jobs(session)
        job_id = job.id
    _finish(sessions, job_id, None, error="the inline policy would be 10,300 characters")
    with transaction(sessions) as session:
        cut = _cut(session, grant_id)
        assert cut is not None and cut.state == "pending"
        assert cut.error is not None and "10,300 characters" in cut.error
        assert "sessions.cut_failed" in _actions(session)
        (retry,) = _cut_jobs(session)
        assert retry.id != job_id
        assert retry.available_at >= utcnow() + timedelta(seconds=session_cuts.RETRY_SECONDS - 5)
        assert retry.payload["cuts"][0]["cut_id"] == cut.id


def test_a_lease_lost_mid_cut_runs_the_same_cut_again(sessions: sessionmaker[Session]) -> None:
    """The connector was killed while writing the policy: the lease runs out, the same job
    (the same desired cuts, provisioned again) is leased again, and the cut completes."""
    _integ, grant_id = _revoke(sessions)
    with transaction(sessions) as session:
        (job,) = _cut_jobs(session)
        job_id, payload = job.id, dict(job.payload)
        jobs.lease(session, CID, 50, 60)
        session.execute(update(Job).where(Job.id == job_id)
                        .values(lease_expires_at=utcnow() - timedelta(seconds=1)))  # fmt: skip
    with transaction(sessions) as session:
        assert [j.id for j in jobs.requeue_expired(session)] == [job_id]
        assert session_cuts.drive(session) == 0  # its job is still there: not queued twice
    with transaction(sessions) as session:
        again = session.get(Job, job_id)
        assert again is not None and again.state == "queued" and again.payload == payload
    _finish(sessions, job_id, APPLIED)
    with transaction(sessions) as session:
        cut = _cut(session, grant_id)
        assert cut is not None and cut.state == "active"


def test_a_pending_cut_whose_job_vanished_is_queued_by_the_scheduler(
    sessions: sessionmaker[Session],
) -> None:
    _integ, grant_id = _revoke(sessions)
    with transaction(sessions) as session:
        (job,) = _cut_jobs(session)
        job.state, job.finished_at = "cancelled", utcnow()  # e.g. cancelled by an operator
    with transaction(sessions) as session:
        assert session_cuts.drive(session) == 1
        (job,) = _cut_jobs(session)
        assert [c["cut_id"] for c in job.payload["cuts"]] == [_cut(session, grant_id).id]  # type: ignore[union-attr]


def test_access_held_again_lifts_the_cut_at_once(sessions: sessionmaker[Session]) -> None:
    _integ, grant_id = _revoke(sessions)
    with transaction(sessions) as session:
        (job,) = _cut_jobs(session)
        job_id = job.id
    _finish(sessions, job_id, APPLIED)
    with transaction(sessions) as session:
        integ = session.scalars(select(Integration)).one()
        _grant(session, integ.id, "granted", _handle())  # the user is granted the same again
    with transaction(sessions) as session:
        assert session_cuts.drive(session) == 1
        (job,) = _cut_jobs(session)
        assert job.payload["releases"][0]["why"] == "held-again"
        job_id = job.id
    _finish(sessions, job_id, APPLIED)
    with transaction(sessions) as session:
        cut = _cut(session, grant_id)
        assert cut is not None and cut.state == "released"


def test_a_deleted_permission_set_leaves_nothing_to_cut(sessions: sessionmaker[Session]) -> None:
    _integ, deleted = _revoke(sessions, result={"status": "revoked",
                                                "permission_set_deleted": True})  # fmt: skip
    with transaction(sessions) as session:
        cut = _cut(session, deleted)
        assert cut is not None and cut.state == "unneeded" and _cut_jobs(session) == []
        integ = session.scalars(select(Integration)).one()
        grant = _grant(session, integ.id, "revoking", _handle())
        job = grant_jobs.enqueue_revoke(session, grant)
        assert job is not None
        job_id, gone = job.id, grant.id
    _finish(sessions, job_id, {"status": "revoked"})
    with transaction(sessions) as session:
        (job,) = _cut_jobs(session)
        job_id = job.id
    _finish(sessions, job_id, {"status": "permission-set-gone"})
    with transaction(sessions) as session:
        cut = _cut(session, gone)
        assert cut is not None and cut.state == "unneeded"
        assert _cut_jobs(session) == []


def test_reconciliation_checks_live_cuts_and_reports_a_repair_as_drift(
    sessions: sessionmaker[Session],
) -> None:
    integ_id, grant_id = _revoke(sessions)
    with transaction(sessions) as session:
        (job,) = _cut_jobs(session)
        job_id = job.id
    _finish(sessions, job_id, APPLIED)
    with transaction(sessions) as session:
        integ = session.get(Integration, integ_id)
        assert integ is not None
        assert session_cuts.reconcile(session, integ) == 1
        (check,) = _cut_jobs(session)
        assert check.payload["reason"] == "reconcile"
        assert check.payload["provision"] == "if-changed"
        assert check.payload["accounts"] == [ACCOUNT] and len(check.payload["cuts"]) == 1
        check_id = check.id
    _finish(sessions, check_id, {**APPLIED, "changed": True})  # the statement was missing
    with transaction(sessions) as session:
        drift = session.scalars(select(AuditEvent).where(AuditEvent.action == "reconcile.drift"))
        (event,) = list(drift)
        assert event.data["session_cuts"]["permission_set_arn"] == PS
        cut = _cut(session, grant_id)
        assert cut is not None and cut.state == "active"


def test_a_cut_made_while_the_sets_job_waits_joins_that_job(
    sessions: sessionmaker[Session],
) -> None:
    integ_id, first = _revoke(sessions)
    with transaction(sessions) as session:
        (waiting,) = _cut_jobs(session)
        waiting.available_at = utcnow() + timedelta(hours=1)  # e.g. waiting out a retry delay
        session.add(DirectoryPrincipal(identity_store_id="d-1", principal_id="u-2",
                                       user_name="bob@example.com"))  # fmt: skip
        handle = {**_handle(), "principal_id": "u-2", "assignment": [ACCOUNT, PS, "u-2"]}
        grant = _grant(session, integ_id, "revoking", handle)
        grant.tuple_key = f"ps|{ACCOUNT}|b|ro|u-2"
        job = grant_jobs.enqueue_revoke(session, grant)
        assert job is not None
        job_id, second = job.id, grant.id
    _finish(sessions, job_id, {"status": "revoked"})
    with transaction(sessions) as session:
        (waiting,) = _cut_jobs(session)  # one job per permission set
        names = sorted(c["user_name"] for c in waiting.payload["cuts"])
        assert names == ["alice@example.com", "bob@example.com"]
        cut_ids = {_cut(session, g).id for g in (first, second)}  # type: ignore[union-attr]
        assert {c["cut_id"] for c in waiting.payload["cuts"]} == cut_ids
