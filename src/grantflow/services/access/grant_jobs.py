"""Grants and revocations as connector jobs, and what their outcomes do to a request.

Revocation cannot be lost: expiry is read from the database by the scheduler, a revoke job
is retried until AWS confirms, and a failed attempt stays visible (audit event, metric) and
is queued again. Reference counting: a revoke tells the connector whether another live grant
still needs the same AWS tuple, and the connector never removes what existed before.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.connector_jobs import (
    GrantPayload,
    GrantResult,
    JobType,
    RevokePayload,
    RevokeResult,
    payload_for,
    result_as,
)
from grantflow.domain.request_states import EndReason, Event, RequestState, finish_revocation
from grantflow.services.access import grant_building, request_policy, session_cuts
from grantflow.services.access.transitions import move
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.jobs import queue as jobs
from grantflow.store.models import AccessRequest, Grant, Integration, Job, Resource, User
from grantflow.store.types import utcnow

REVOKE_RETRY_SECONDS = 60
HOLDING_STATES = ("granting", "granted")


def _integration(session: Session, request: AccessRequest) -> Integration:
    row = session.get(Integration, request.integration_id)
    assert row is not None
    return row


def start_granting(session: Session, request: AccessRequest) -> None:
    """Approved → granting, unless today's policy no longer allows the request: then it
    ends failed with the reason and nothing is queued (services.request_policy)."""
    if request_policy.granting_refused(session, request):
        return
    move(session, request, Event.START_GRANT, audit.SYSTEM)
    integ = _integration(session, request)
    user = session.get(User, request.requester_id)
    assert user is not None
    for grant in session.scalars(select(Grant).where(Grant.request_id == request.id)):
        resource = session.get(Resource, grant.resource_id) if grant.resource_id else None
        if resource is None:
            raise Conflict("a requested resource disappeared before it was granted")
        built = grant_building.build(session, integ, user, resource, request.permission)
        grant.spec, grant.tuple_key, grant.state = built.spec, built.tuple_key, "granting"
        if _made_by_grantflow(session, grant):
            grant.pre_existing = False  # our own live grant made it: never "pre-existing"
        enqueue_grant(session, integ, grant)


def _made_by_grantflow(session: Session, grant: Grant) -> bool:
    """Whether another live grant of the same tuple found it absent and created it: then an
    assignment this grant finds in AWS is Grantflow's, not access that existed before.
    (A live grant that found it pre-existing says nothing: the access stays standing.)"""
    return (
        session.scalar(
            select(Grant.id).where(
                Grant.tuple_key == grant.tuple_key,
                Grant.id != grant.id,
                Grant.state.in_(("granting", "granted", "revoking")),
                Grant.pre_existing.is_(False),
            )
        )
        is not None
    )


def access_of(integ: Integration) -> dict[str, str]:
    """How the connector reaches Identity Center: the management role, with the external id."""
    config = integrations.config_of(integ)
    return {"management_role_arn": config.management_role_arn, "external_id": integ.connector_id}


def enqueue_grant(session: Session, integ: Integration, grant: Grant) -> Job:
    spec = {**grant.spec, "known_pre_existing": grant.pre_existing}
    payload = payload_for(JobType.GRANT, GrantPayload(
        grant_id=grant.id, tuple_key=grant.tuple_key, spec=spec, **access_of(integ)))  # fmt: skip
    return jobs.enqueue(session, integ.connector_id, JobType.GRANT, payload,
                        idempotency_key=f"grant:{grant.id}", max_attempts=8)  # fmt: skip


def record_pre_existing(session: Session, grant_id: str, pre_existing: bool) -> None:
    """What AWS looked like before the first attempt changed anything; kept for retries."""
    grant = session.get(Grant, grant_id, with_for_update=True)
    if grant is not None and grant.pre_existing is None:
        grant.pre_existing = pre_existing and not _made_by_grantflow(session, grant)


def _lock_tuple(session: Session, grant_id: str) -> Grant | None:
    """Lock every grant of the same AWS tuple (in id order), then return this one.

    A grant finishing and a revoke of the same tuple finishing must see each other: without
    the lock, two PostgreSQL transactions (two replicas) each miss the other's change.
    """
    key = session.scalar(select(Grant.tuple_key).where(Grant.id == grant_id))
    if key is None:
        return None
    audit.lock_chain(session)  # before the rows: the order expire_due takes them in
    if key:
        session.scalars(
            select(Grant.id).where(Grant.tuple_key == key).order_by(Grant.id).with_for_update()
        ).all()
    return session.get(Grant, grant_id, with_for_update=True)


def _revoked_since(session: Session, grant: Grant, since: datetime) -> bool:
    """Whether another grant of the same tuple was revoked in AWS at or after ``since``."""
    return (
        session.scalar(
            select(Grant.id).where(
                Grant.tuple_key == grant.tuple_key,
                Grant.id != grant.id,
                Grant.state == "revoked",
                Grant.revoked_at >= since,
            )
        )
        is not None
    )


def _finishing(session: Session, job: Job) -> tuple[Grant, AccessRequest] | None:
    """The grant a grant or revoke job reported on, its tuple locked (``_lock_tuple``), and
    its request locked; None if the grant is gone."""
    grant = _lock_tuple(session, str(job.payload["grant_id"]))
    if grant is None:
        return None
    request = session.get(AccessRequest, grant.request_id, with_for_update=True)
    assert request is not None
    return grant, request


def grant_finished(session: Session, job: Job, failed: bool) -> None:
    finishing = _finishing(session, job)
    if finishing is None:
        return
    grant, request = finishing
    if failed:
        grant.state, grant.error = "failed", job.last_error
        audit.record(session, audit.SYSTEM, "grant.failed", "grant", grant.id,
                     {"request_id": request.id, "error": job.last_error})  # fmt: skip
        if request.state == RequestState.GRANTING.value:
            request.failure_reason = job.last_error
            move(session, request, Event.GRANT_FAILED, audit.SYSTEM, {"error": job.last_error})
            start_revoking(session, request)
        return
    grant.handle = dict(result_as(GrantResult, job.result).handle)
    if grant.handle.get("pre_existing") and (
        grant.pre_existing is False or _made_by_grantflow(session, grant)
    ):
        # Another of our grants created it while this one was being planned (or handed it
        # over when it ended), or this grant's first attempt found it absent: ours.
        grant.handle = {**grant.handle, "pre_existing": False}
    grant.pre_existing = bool(grant.handle.get("pre_existing", False))
    integ = _integration(session, request)
    if request.state == RequestState.GRANTED.value and grant.state == "granted":
        # A grant run again (reconciliation's repair, or after a revoke of the same tuple):
        # the access is back, the request unchanged.
        audit.record(session, audit.SYSTEM, "grant.regranted", "grant", grant.id,
                     {"request_id": request.id})  # fmt: skip
        if _revoked_since(session, grant, job.created_at):
            enqueue_grant(session, integ, grant)
        return
    if request.state != RequestState.GRANTING.value:
        # Revoked (or failed) while this grant ran: undo it now.
        grant.state = "granted"
        enqueue_revoke(session, grant)
        return
    if _revoked_since(session, grant, job.created_at):
        # A revoke of the same tuple removed the assignment while this grant ran (it may
        # have found it still there and done nothing): grant again, idempotently.
        enqueue_grant(session, integ, grant)
    grant.state, grant.granted_at = "granted", utcnow()
    audit.record(session, audit.SYSTEM, "grant.granted", "grant", grant.id,
                 {"request_id": request.id, "pre_existing": grant.pre_existing})  # fmt: skip
    pending = session.scalar(
        select(Grant.id).where(Grant.request_id == request.id, Grant.state != "granted")
    )
    if pending is None:
        now = utcnow()
        request.granted_at = now
        request.expires_at = now + timedelta(seconds=request.duration_seconds)
        for g in session.scalars(select(Grant).where(Grant.request_id == request.id)):
            g.expires_at = request.expires_at
        move(session, request, Event.GRANTED, audit.SYSTEM,
             {"expires_at": request.expires_at.isoformat()})  # fmt: skip


def still_needed(session: Session, grant: Grant) -> bool:
    """Whether another grant that holds the same AWS tuple is live."""
    return (
        session.scalar(
            select(Grant.id).where(
                Grant.tuple_key == grant.tuple_key,
                Grant.id != grant.id,
                Grant.state.in_(HOLDING_STATES),
            )
        )
        is not None
    )


def enqueue_revoke(session: Session, grant: Grant, delay: float = 0.0) -> Job | None:
    request = session.get(AccessRequest, grant.request_id)
    assert request is not None
    integ = _integration(session, request)
    grant.state = "revoking"
    # Revokes are leased before grants (JobPriority): a grant job of this grant still waiting
    # would run after the revoke and put the access back. It never runs now.
    stale = jobs.cancel_queued(session, f"grant:{grant.id}", "superseded by the grant's revoke")
    if stale is not None:
        audit.record(session, audit.SYSTEM, "job.cancelled", "job", stale.id,
                     {"type": stale.type, "grant_id": grant.id,
                      "reason": "superseded by the grant's revoke"})  # fmt: skip
    payload = payload_for(JobType.REVOKE, RevokePayload(
        grant_id=grant.id, tuple_key=grant.tuple_key, handle=grant.handle, spec=grant.spec,
        still_needed=still_needed(session, grant), **access_of(integ)))  # fmt: skip
    return jobs.enqueue(session, integ.connector_id, JobType.REVOKE, payload,
                        idempotency_key=f"revoke:{grant.id}", max_attempts=8,
                        available_at=utcnow() + timedelta(seconds=delay))  # fmt: skip


def start_revoking(session: Session, request: AccessRequest) -> None:
    for grant in session.scalars(select(Grant).where(Grant.request_id == request.id)):
        if grant.state in ("granted", "revoking") or (grant.state == "granting" and grant.handle):
            enqueue_revoke(session, grant)
        elif grant.state in ("pending", "failed"):
            grant.state = "revoked" if grant.state == "pending" else "failed"
        # a grant still "granting" is revoked when its job reports (grant_finished)
    _maybe_finish(session, request)


def _maybe_finish(session: Session, request: AccessRequest) -> None:
    if request.state != RequestState.REVOKING.value:
        return
    open_grants = session.scalar(
        select(Grant.id).where(
            Grant.request_id == request.id, Grant.state.in_(("granting", "granted", "revoking"))
        )
    )
    if open_grants is not None:
        return
    reason = EndReason(request.end_reason or "revoked")
    before = request.state
    request.state = finish_revocation(RequestState(request.state), reason).value
    request.ended_at = utcnow()
    audit.record(session, audit.SYSTEM, f"request.{request.state}", "access_request",
                 request.id, {"from": before, "to": request.state})  # fmt: skip


def revoke_finished(session: Session, job: Job, failed: bool) -> None:
    finishing = _finishing(session, job)
    if finishing is None:
        return
    grant, request = finishing
    if failed:
        grant.error = job.last_error
        audit.record(session, audit.SYSTEM, "grant.revoke_failed", "grant", grant.id,
                     {"request_id": request.id, "error": job.last_error,
                      "retry_in_seconds": REVOKE_RETRY_SECONDS})  # fmt: skip
        enqueue_revoke(session, grant, delay=REVOKE_RETRY_SECONDS)
        return
    result = result_as(RevokeResult, job.result)
    grant.state, grant.revoked_at, grant.error = "revoked", utcnow(), None
    audit.record(session, audit.SYSTEM, "grant.revoked", "grant", grant.id,
                 {"request_id": request.id, "outcome": result.status})  # fmt: skip
    _regrant_if_needed(session, grant, result)
    if result.status == "kept-still-needed" and grant.pre_existing is False:
        _hand_over(session, grant)
    session_cuts.after_revoke(session, _integration(session, request), grant, result)
    _maybe_finish(session, request)


def _hand_over(session: Session, grant: Grant) -> None:
    """Grantflow made this assignment and left it for the tuple's other live grants: it is
    theirs to remove now. Without this, one still planning (or retrying after a crash) finds
    it in AWS with no live maker left and takes it for access that existed before Grantflow,
    and its revoke then keeps it for ever."""
    for other in session.scalars(
        select(Grant).where(Grant.tuple_key == grant.tuple_key, Grant.id != grant.id,
                            Grant.state.in_(HOLDING_STATES))
    ):  # fmt: skip
        if other.pre_existing is not False:
            other.pre_existing = False
            if other.handle.get("pre_existing"):
                other.handle = {**other.handle, "pre_existing": False}


def _regrant_if_needed(session: Session, grant: Grant, result: RevokeResult) -> None:
    """A grant of the same tuple that became live after this revoke was planned would have
    lost its access: grant it again (idempotent)."""
    if result.status != "revoked":
        return
    for other in session.scalars(
        select(Grant).where(Grant.tuple_key == grant.tuple_key, Grant.state == "granted",
                            Grant.id != grant.id)
    ):  # fmt: skip
        request = session.get(AccessRequest, other.request_id)
        assert request is not None
        enqueue_grant(session, _integration(session, request), other)


def expire_due(session: Session) -> int:
    """Move every granted request whose time is up to revoking and queue its revokes."""
    query = select(AccessRequest).where(
        AccessRequest.state == RequestState.GRANTED.value, AccessRequest.expires_at <= utcnow()
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    due = session.scalars(query.limit(200)).all()
    for request in due:
        move(session, request, Event.EXPIRE, audit.SYSTEM)
        start_revoking(session, request)
    return len(due)
