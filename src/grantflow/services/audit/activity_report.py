"""The access activity report: one row per request, for auditors (streamed as CSV)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.store.db import read_transaction
from grantflow.store.models import AccessRequest, Approval, Grant, Resource, User
from grantflow.store.types import utcnow

CHUNK = 500
COLUMNS = (
    "request_id", "requester", "requester_email", "status", "end_reason", "permission",
    "resource_type", "resources", "accounts", "justification", "approvers",
    "requested_at", "approved_at", "granted_at", "expires_at", "revoked_at",
    "requested_duration_seconds", "granted_duration_seconds", "failure_reason",
)  # fmt: skip


def _approvers(session: Session, ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    query = (
        select(Approval.request_id, User.username, Approval.decision, Approval.reason)
        .join(User, User.id == Approval.approver_id)
        .where(Approval.request_id.in_(ids))
        .order_by(Approval.created_at)
    )
    for request_id, username, decision, reason in session.execute(query):
        found[request_id].append(f"{username} ({decision}): {reason}" if reason
                                 else f"{username} ({decision})")  # fmt: skip
    return found


def _resources(session: Session, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    query = (
        select(Grant.request_id, Resource.name, Resource.aws_id, Resource.account_id)
        .join(Resource, Resource.id == Grant.resource_id)
        .where(Grant.request_id.in_(ids))
        .order_by(Resource.name)
    )
    for request_id, name, aws_id, account in session.execute(query):
        found[request_id].append((name or aws_id, account or ""))
    return found


def _row(request: AccessRequest, requester: User, approvers: list[str],
         resources: list[tuple[str, str]]) -> dict[str, Any]:  # fmt: skip
    revoked = request.ended_at if request.granted_at else None
    held = None
    if request.granted_at is not None:
        held = int(((revoked or utcnow()) - request.granted_at).total_seconds())
    return {
        "request_id": request.id, "requester": requester.username,
        "requester_email": requester.email or "", "status": request.state,
        "end_reason": request.end_reason, "permission": request.permission,
        "resource_type": request.resource_type,
        "resources": "; ".join(name for name, _ in resources),
        "accounts": "; ".join(sorted({acct for _, acct in resources if acct})),
        "justification": request.justification, "approvers": " | ".join(approvers),
        "requested_at": request.created_at, "approved_at": request.approved_at,
        "granted_at": request.granted_at, "expires_at": request.expires_at,
        "revoked_at": revoked, "requested_duration_seconds": request.duration_seconds,
        "granted_duration_seconds": held, "failure_reason": request.failure_reason,
    }  # fmt: skip


def _chunk(
    session: Session, since: datetime | None, until: datetime | None,
    after: tuple[datetime, str] | None,
) -> list[dict[str, Any]]:  # fmt: skip
    query = select(AccessRequest, User).join(User, User.id == AccessRequest.requester_id)
    if since is not None:
        query = query.where(AccessRequest.created_at >= since)
    if until is not None:
        query = query.where(AccessRequest.created_at < until)
    if after is not None:
        query = query.where(or_(AccessRequest.created_at > after[0],
                                and_(AccessRequest.created_at == after[0],
                                     AccessRequest.id > after[1])))  # fmt: skip
    rows = session.execute(
        query.order_by(AccessRequest.created_at, AccessRequest.id).limit(CHUNK)
    ).all()
    ids = [request.id for request, _ in rows]
    approvers, resources = _approvers(session, ids), _resources(session, ids)
    return [_row(r, u, approvers.get(r.id, []), resources.get(r.id, [])) for r, u in rows]


def stream(
    sessions: sessionmaker[Session], since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Requests made in ``[since, until)``, oldest first, ``CHUNK`` per transaction."""
    after: tuple[datetime, str] | None = None
    while True:
        with read_transaction(sessions) as session:
            rows = _chunk(session, since, until, after)
        yield from rows
        if len(rows) < CHUNK:
            return
        after = (rows[-1]["requested_at"], rows[-1]["request_id"])
