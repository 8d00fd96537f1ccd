"""Dry runs: the AWS calls a grant or a revoke would make, planned by the connector
against AWS's actual state (the same plan the grant and revoke jobs apply)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.services import grant_building, grant_jobs, jobs
from grantflow.services.errors import Conflict
from grantflow.store.models import AccessRequest, Grant, Integration, Job, Resource, User

PLANNABLE = ("pending", "approved", "granting", "granted", "revoking")


def enqueue_plan(session: Session, request: AccessRequest) -> Job:
    if request.state not in PLANNABLE:
        raise Conflict(f"a {request.state} request has nothing left to plan")
    integ = session.get(Integration, request.integration_id)
    user = session.get(User, request.requester_id)
    assert integ is not None and user is not None
    items: list[dict[str, Any]] = []
    for grant in session.scalars(select(Grant).where(Grant.request_id == request.id)):
        if grant.state in ("granted", "revoking") and grant.handle:
            items.append({"grant_id": grant.id, "action": "revoke", "handle": grant.handle,
                          "still_needed": grant_jobs.still_needed(session, grant)})  # fmt: skip
            continue
        resource = session.get(Resource, grant.resource_id) if grant.resource_id else None
        if resource is None:
            continue
        spec = (
            grant.spec
            or grant_building.build(session, integ, user, resource, request.permission).spec
        )
        items.append({"grant_id": grant.id, "action": "grant", "spec": spec})
    payload = {"request_id": request.id, "items": items, **grant_jobs.access_of(integ)}
    return jobs.enqueue(session, integ.connector_id, "plan", payload, max_attempts=2)
