"""Session cuts, driven from the database: created when a grant ends, written and lifted by
connector jobs, repaired by reconciliation.

* :func:`after_revoke` — a revoke confirmed by AWS whose (account, permission set, user) no
  other live grant holds: a ``pending`` cut row (pooled permission sets always; the
  organization's own sets when the integration opts in), and its job.
* :func:`enqueue_for` — one ``session_cuts`` job per permission set, built from its rows: the
  cuts that stay (pending and active) and the ones to lift (their sessions expired, or the user
  holds the same access again). The connector makes the set's cut statements exactly these.
* :func:`finished` — the job's outcome moves the rows (audit ``sessions.revoked`` /
  ``sessions.release``); a failure is recorded on the rows and retried.
* :func:`drive` — the scheduler's duty: every permission set with a pending cut or a due
  release gets its job, so a process killed at any point loses nothing.
* :func:`reconcile` — a check of every set with a live or recently lifted cut: a missing or
  stale statement is written again and reported as drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from grantflow.domain import session_cuts as rules
from grantflow.domain.connector_jobs import (
    CutItem,
    CutRelease,
    JobType,
    RevokeResult,
    SessionCutsPayload,
    SessionCutsResult,
    payload_for,
    result_as,
)
from grantflow.domain.grant_specs import GrantHandle, GrantKind
from grantflow.domain.integration_config import AwsOrganizationConfig
from grantflow.domain.jobs import FINAL_STATES, JobState
from grantflow.services.audit import trail as audit
from grantflow.services.jobs import queue as jobs
from grantflow.store.id_lists import any_of
from grantflow.store.models import DirectoryPrincipal, Grant, Integration, Job
from grantflow.store.models_session_cuts import SessionCut
from grantflow.store.types import utcnow

JOB_TYPE = JobType.SESSION_CUTS
RETRY_SECONDS = 60
# Our clock and AWS's may differ a little: the cut also covers sessions issued up to this long
# after the revocation (nobody holds the assignment then), and is lifted as much later.
CLOCK_MARGIN = timedelta(seconds=60)
RECENT_RELEASES = timedelta(hours=24)
LIVE = ("pending", "active")
_HOLDING = ("granting", "granted")


def _key(integration_id: str, permission_set_arn: str) -> str:
    return f"session-cuts:{integration_id}:{permission_set_arn}"


def opted_in(integ: Integration) -> bool:
    """Whether the organization's own permission sets get cuts too (integration config)."""
    config = AwsOrganizationConfig.model_validate(integ.config)
    return config.cut_sessions_on_own_permission_sets


def _access(integ: Integration) -> dict[str, str]:
    """How the connector reaches Identity Center (as for grants and revokes)."""
    config = AwsOrganizationConfig.model_validate(integ.config)
    return {"management_role_arn": config.management_role_arn, "external_id": integ.connector_id}


def _user_name(session: Session, handle: GrantHandle) -> str | None:
    return session.scalar(
        select(DirectoryPrincipal.user_name).where(
            DirectoryPrincipal.identity_store_id == handle.identity_store_id,
            DirectoryPrincipal.principal_id == handle.principal_id,
        )
    )


def _held(session: Session, tuple_key: str, except_grant: str | None = None) -> bool:
    """Whether a live grant holds this (account, permission set, user) now."""
    query = select(Grant.id).where(Grant.tuple_key == tuple_key, Grant.state.in_(_HOLDING))
    if except_grant is not None:
        query = query.where(Grant.id != except_grant)
    return session.scalar(query.limit(1)) is not None


def after_revoke(
    session: Session, integ: Integration, grant: Grant, result: RevokeResult
) -> SessionCut | None:
    """A confirmed revoke: cut the sessions it left behind (see the module docstring)."""
    if result.status not in ("revoked", "already-absent") or grant.pre_existing:
        return None
    kind = (grant.handle or {}).get("kind")
    if not (
        kind == GrantKind.POOLED_PERMISSION_SET.value
        or (kind == GrantKind.ACCOUNT_ASSIGNMENT.value and opted_in(integ))
    ):
        return None  # a group membership, or the organization's set without the opt-in
    if _held(session, grant.tuple_key, grant.id):
        return None  # another live grant keeps the access: its sessions stay valid
    try:
        handle = GrantHandle.model_validate(grant.handle)
    except ValidationError as err:
        data = {"grant_id": grant.id, "error": f"the grant's handle is not readable: {err}"}
        audit.record(session, audit.SYSTEM, "sessions.cut_failed", "access_request",
                     grant.request_id, data)  # fmt: skip
        return None
    if handle.assignment is None:
        return None
    name = _user_name(session, handle)
    data = {"request_id": grant.request_id, "grant_id": grant.id,
            "account_id": handle.assignment.account_id,
            "permission_set_arn": handle.assignment.permission_set_arn}  # fmt: skip
    if not name:
        error = f"the Identity Center user name of {handle.principal_id} is not known"
        audit.record(session, audit.SYSTEM, "sessions.cut_failed", "access_request",
                     grant.request_id, {**data, "error": error})  # fmt: skip
        return None
    now = utcnow()
    row = session.scalar(select(SessionCut).where(SessionCut.grant_id == grant.id))
    if row is None:
        row = SessionCut(grant_id=grant.id)
        session.add(row)
    _describe(row, integ, grant, handle, name)
    row.not_before = rules.cut_time(now + CLOCK_MARGIN)
    row.cut_at = row.release_after = row.released_at = row.error = None
    if result.permission_set_deleted:
        # Deleted with its last assignment: Identity Center removes its role from the account,
        # and a role's sessions have no permissions without it. Nothing to write.
        row.state, row.cut_at = "unneeded", now
        audit.record(session, audit.SYSTEM, "sessions.revoked", "access_request",
                     grant.request_id, {**data, "outcome": "permission-set-deleted"})  # fmt: skip
        session.flush()
        return row
    row.state = "pending"
    session.flush()
    enqueue_for(session, integ, row.permission_set_arn)
    return row


def _describe(
    row: SessionCut, integ: Integration, grant: Grant, handle: GrantHandle, user_name: str
) -> None:
    assert handle.assignment is not None
    row.integration_id, row.request_id = integ.id, grant.request_id
    row.tuple_key, row.instance_arn = grant.tuple_key, handle.instance_arn
    row.identity_center_region = handle.identity_center_region
    row.permission_set_arn = handle.assignment.permission_set_arn
    row.permission_set_name = handle.permission_set_name or ""
    row.managed = handle.kind is GrantKind.POOLED_PERMISSION_SET
    row.account_id = handle.assignment.account_id
    row.principal_id, row.user_name = handle.principal_id, user_name


def _releasable(session: Session, row: SessionCut, now: datetime) -> str | None:
    """Why the cut can be lifted now (None: it stays)."""
    if _held(session, row.tuple_key):
        return "held-again"
    if row.state == "active" and row.release_after is not None and row.release_after <= now:
        return "sessions-expired"
    return None


def enqueue_for(
    session: Session, integ: Integration, permission_set_arn: str, *, reason: str = "cut",
    delay: float = 0.0,
) -> Job | None:  # fmt: skip
    """Queue the permission set's job (an unfinished one is reused); None: nothing to do."""
    now = utcnow()
    rows = session.scalars(
        select(SessionCut).where(
            SessionCut.integration_id == integ.id,
            SessionCut.permission_set_arn == permission_set_arn,
            SessionCut.state.in_(LIVE),
        ).order_by(SessionCut.created_at)
    ).all()  # fmt: skip
    cuts: list[CutItem] = []
    releases: list[CutRelease] = []
    accounts: set[str] = set()
    for row in rows:
        why = _releasable(session, row, now)
        if why is not None:
            releases.append(CutRelease(cut_id=row.id, why=why))
            accounts.add(row.account_id)
            continue
        cuts.append(CutItem(cut_id=row.id, account_id=row.account_id, user_name=row.user_name,
                            not_before=row.not_before))  # fmt: skip
        if row.state == "pending":
            accounts.add(row.account_id)
    checking = reason == "reconcile"
    if not checking and not releases and not accounts:
        return None  # nothing pending, every active cut stays
    if checking:  # a repair provisions wherever a cut is or was lately
        accounts |= {row.account_id for row in rows} | _lately_released(
            session, integ.id, permission_set_arn
        )
    first = rows[0] if rows else _any_cut(session, integ.id, permission_set_arn)
    if first is None:
        return None
    payload = payload_for(JOB_TYPE, SessionCutsPayload(
        **_access(integ),
        integration_id=integ.id,
        instance_arn=first.instance_arn,
        identity_center_region=first.identity_center_region,
        permission_set_arn=permission_set_arn,
        cuts=cuts,
        releases=releases,
        accounts=sorted(accounts),
        reason=reason,
        # a cut or a release provisions every time (a crash may have come between the write
        # and the provisioning); a check only when it had to write
        provision="if-changed" if checking else "always",
    ))  # fmt: skip
    job = jobs.enqueue(session, integ.connector_id, JOB_TYPE, payload,
                       idempotency_key=_key(integ.id, permission_set_arn), max_attempts=8,
                       available_at=now + timedelta(seconds=delay))  # fmt: skip
    if job.state == JobState.QUEUED.value and job.payload != payload and not checking:
        job.payload = payload  # still waiting: it carries the cuts as they are now
    return job


def _lately_released(session: Session, integration_id: str, arn: str) -> set[str]:
    since = utcnow() - RECENT_RELEASES
    return set(
        session.scalars(
            select(SessionCut.account_id).where(
                SessionCut.integration_id == integration_id,
                SessionCut.permission_set_arn == arn,
                SessionCut.state == "released",
                SessionCut.released_at >= since,
            )
        ).all()
    )


def _any_cut(session: Session, integration_id: str, permission_set_arn: str) -> SessionCut | None:
    return session.scalar(
        select(SessionCut).where(SessionCut.integration_id == integration_id,
                                 SessionCut.permission_set_arn == permission_set_arn).limit(1)
    )  # fmt: skip


def _record(session: Session, action: str, row: SessionCut, **extra: object) -> None:
    data: dict[str, object] = {
        "grant_id": row.grant_id, "account_id": row.account_id,
        "permission_set_arn": row.permission_set_arn, "user_name": row.user_name,
        "not_before": row.not_before.isoformat(), **extra,
    }  # fmt: skip
    audit.record(session, audit.SYSTEM, action, "access_request", row.request_id, data)


def _lock_rows(session: Session, ids: list[str]) -> dict[str, SessionCut]:
    if not ids:
        return {}
    found = session.scalars(
        select(SessionCut).where(SessionCut.id.in_(ids)).order_by(SessionCut.id).with_for_update()
    ).all()
    return {row.id: row for row in found}


def finished(session: Session, job: Job, failed: bool) -> None:
    payload = job.payload
    integ = session.get(Integration, str(payload.get("integration_id")))
    if integ is None:
        return
    arn = str(payload["permission_set_arn"])
    audit.lock_chain(session)  # before the rows: the order revoke_finished takes them in
    cut_ids = [str(c["cut_id"]) for c in payload.get("cuts", [])]
    release_ids = [str(r["cut_id"]) for r in payload.get("releases", [])]
    rows = _lock_rows(session, cut_ids + release_ids)
    if failed:
        for row in rows.values():
            if row.state in LIVE:
                row.error = job.last_error
        audit.record(session, audit.SYSTEM, "sessions.cut_failed", "integration", integ.id,
                     {"permission_set_arn": arn, "error": job.last_error,
                      "cut_ids": cut_ids, "release_ids": release_ids,
                      "retry_in_seconds": RETRY_SECONDS})  # fmt: skip
        enqueue_for(session, integ, arn, delay=RETRY_SECONDS)
        return
    result = result_as(SessionCutsResult, job.result)
    if result.status == "permission-set-gone":
        _set_gone(session, integ.id, arn)
        return
    now = utcnow()
    seconds = result.session_seconds or rules.DEFAULT_SESSION_SECONDS
    details = {"coalesced": result.coalesced, "policy_chars": result.policy_chars}
    for cut_id in cut_ids:
        cut = rows.get(cut_id)
        if cut is None or cut.state != "pending":
            continue
        cut.state, cut.cut_at, cut.error = "active", now, None
        cut.release_after = cut.not_before + timedelta(seconds=seconds) + CLOCK_MARGIN
        _record(session, "sessions.revoked", cut, release_after=cut.release_after.isoformat(),
                **details)  # fmt: skip
    whys = {str(r["cut_id"]): str(r.get("why", "")) for r in payload.get("releases", [])}
    for cut_id in release_ids:
        lifted = rows.get(cut_id)
        if lifted is None or lifted.state not in LIVE:
            continue
        lifted.state, lifted.released_at, lifted.error = "released", now, None
        _record(session, "sessions.release", lifted, why=whys.get(cut_id, ""))
    if payload.get("reason") == "reconcile" and result.changed:
        audit.record(session, audit.SYSTEM, "reconcile.drift", "integration", integ.id,
                     {"session_cuts": {"permission_set_arn": arn,
                                       "statements": result.statements},
                      "repair": True})  # fmt: skip
    enqueue_for(session, integ, arn)  # cuts added, or releases come due, since it was queued


def _set_gone(session: Session, integration_id: str, arn: str) -> None:
    """The permission set was deleted: its roles, and every session of them, are gone."""
    now = utcnow()
    for row in session.scalars(
        select(SessionCut).where(SessionCut.integration_id == integration_id,
                                 SessionCut.permission_set_arn == arn,
                                 SessionCut.state.in_(LIVE)).with_for_update()
    ):  # fmt: skip
        if row.state == "pending":
            row.state, row.cut_at = "unneeded", now
            _record(session, "sessions.revoked", row, outcome="permission-set-deleted")
        else:
            row.state, row.released_at = "released", now
            _record(session, "sessions.release", row, why="permission-set-deleted")


def _unfinished(session: Session, key: str) -> bool:
    state = session.scalar(select(Job.state).where(Job.idempotency_key == key))
    return state is not None and JobState(state) not in FINAL_STATES


def drive(session: Session) -> int:
    """Queue the job of every permission set with a pending cut or a cut to lift."""
    now = utcnow()
    held = select(Grant.id).where(Grant.tuple_key == SessionCut.tuple_key,
                                  Grant.state.in_(_HOLDING)).exists()  # fmt: skip
    due = session.execute(
        select(SessionCut.integration_id, SessionCut.permission_set_arn).where(
            or_(
                SessionCut.state == "pending",
                (SessionCut.state == "active") & (SessionCut.release_after <= now),
                (SessionCut.state == "active") & held,
            )
        ).distinct()
    ).all()  # fmt: skip
    queued = 0
    for integration_id, arn in due:
        if _unfinished(session, _key(integration_id, arn)):
            continue
        integ = session.get(Integration, integration_id)
        if integ is not None and enqueue_for(session, integ, arn) is not None:
            queued += 1
    return queued


def reconcile(session: Session, integ: Integration) -> int:
    """Check every permission set with a live cut or one lifted lately; repair on the way."""
    since = utcnow() - RECENT_RELEASES
    arns = session.scalars(
        select(SessionCut.permission_set_arn).where(
            SessionCut.integration_id == integ.id,
            or_(SessionCut.state == "active",
                (SessionCut.state == "released") & (SessionCut.released_at >= since)),
        ).distinct()
    ).all()  # fmt: skip
    queued = 0
    for arn in arns:
        if _unfinished(session, _key(integ.id, arn)):
            continue
        if enqueue_for(session, integ, arn, reason="reconcile") is not None:
            queued += 1
    return queued


PUBLIC_FIELDS = ("state", "permission_set_arn", "account_id", "user_name", "not_before",
                 "cut_at", "release_after", "released_at", "error")  # fmt: skip


def of_requests(session: Session, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The cuts of these requests' grants as the API shows them, by grant id (one query of
    plain rows: only the columns shown)."""
    if not request_ids:
        return {}
    columns = (SessionCut.grant_id, *(getattr(SessionCut, f) for f in PUBLIC_FIELDS))
    mine = any_of(session, SessionCut.request_id, request_ids)
    rows = session.execute(select(*columns).where(mine))
    return {row.grant_id: {f: getattr(row, f) for f in PUBLIC_FIELDS} for row in rows}
