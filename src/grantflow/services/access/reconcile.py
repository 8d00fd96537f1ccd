"""Reconciliation: does AWS still hold what Grantflow granted, and nothing it revoked?

The connector answers with the same plans granting and revoking use: a live grant whose
grant plan is not a no-op has drifted (missing in AWS); a recently revoked grant whose revoke
plan is not a no-op has drifted the other way (still in AWS). Drift is reported as an audit
event and, when repair is on, fixed by queueing the grant or revoke again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.connector_jobs import (
    JobType,
    PlanItem,
    PlannedItem,
    PlanPayload,
    PlanResult,
    payload_for,
    result_as,
    result_dump,
)
from grantflow.domain.jobs import JobPriority
from grantflow.services.access import grant_jobs
from grantflow.services.audit import trail as audit
from grantflow.services.jobs import queue as jobs
from grantflow.store.models import AccessRequest, Grant, Integration, Job
from grantflow.store.types import utcnow

RECENT_REVOKES = timedelta(hours=24)


def _items(session: Session, integ: Integration) -> list[PlanItem]:
    base = (
        select(Grant)
        .join(AccessRequest, AccessRequest.id == Grant.request_id)
        .where(AccessRequest.integration_id == integ.id)
    )
    items: list[PlanItem] = []
    for grant in session.scalars(base.where(Grant.state == "granted")):
        spec = {**grant.spec, "known_pre_existing": grant.pre_existing}
        items.append(PlanItem(grant_id=grant.id, action="grant", expect="present", spec=spec))
    since = utcnow() - RECENT_REVOKES
    for grant in session.scalars(
        base.where(
            Grant.state == "revoked", Grant.revoked_at >= since, Grant.pre_existing.is_not(True)
        )
    ):
        if grant.handle and not grant_jobs.still_needed(session, grant):
            items.append(PlanItem(grant_id=grant.id, action="revoke", expect="absent",
                                  handle=grant.handle, still_needed=False))  # fmt: skip
    return items


def enqueue(session: Session, integ: Integration, repair: bool) -> Job | None:
    items = _items(session, integ)
    if not items:
        return None
    access = grant_jobs.access_of(integ)
    payload = payload_for(
        JobType.PLAN, PlanPayload(integration_id=integ.id, items=items, repair=repair, **access)
    )
    # A plan job, but the system's upkeep: leased before users' dry runs.
    return jobs.enqueue(session, integ.connector_id, JobType.PLAN, payload,
                        idempotency_key=f"reconcile:{integ.id}", max_attempts=2,
                        priority=JobPriority.SYNC)  # fmt: skip


def _held_again(session: Session, item: PlannedItem) -> bool:
    """A revoked grant's access found in AWS is no drift when another live grant of the same
    tuple holds it now (it became live after the check was queued)."""
    if item.action != "revoke":
        return False
    grant = session.get(Grant, item.grant_id)
    return grant is not None and grant_jobs.still_needed(session, grant)


def finished(session: Session, job: Job) -> list[dict[str, Any]]:
    """Record drift from a reconcile plan and, with repair, queue the fixes."""
    planned = result_as(PlanResult, job.result).items
    drift = [i for i in planned if not i.in_sync and not _held_again(session, i)]
    integration_id = str(job.payload.get("integration_id"))
    if not drift:
        return []
    items = [result_dump(i) for i in drift]
    audit.record(session, audit.SYSTEM, "reconcile.drift", "integration", integration_id,
                 {"items": items, "repair": bool(job.payload.get("repair"))})  # fmt: skip
    if not job.payload.get("repair"):
        return items
    integ = session.get(Integration, integration_id)
    for item in drift:
        grant = session.get(Grant, item.grant_id)
        if grant is None or integ is None:
            continue
        if item.action == "grant" and grant.state == "granted":
            grant_jobs.enqueue_grant(session, integ, grant)
        elif item.action == "revoke" and grant.state == "revoked":
            grant.state = "revoking"
            grant_jobs.enqueue_revoke(session, grant)
    return items
