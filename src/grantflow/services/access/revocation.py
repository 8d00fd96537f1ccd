"""Revoking in bulk: a deleted integration, a deactivated user.

Each live request is ended through the state machine; its grants get revoke jobs, which are
retried until AWS confirms.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.services.audit import trail as audit
from grantflow.store.models import AccessRequest, Integration

OPEN_STATES = ("pending", "approved", "granting", "granted")


def _end_all(session: Session, query_filter: object, actor: audit.Actor, reason: str) -> int:
    from grantflow.services.access.access_requests import end_request

    live = session.scalars(
        select(AccessRequest).where(query_filter, AccessRequest.state.in_(OPEN_STATES))  # type: ignore[arg-type]
    ).all()
    for request in live:
        end_request(session, request, actor, reason=reason)
    return len(live)


def revoke_integration_grants(session: Session, row: Integration, actor: audit.Actor) -> int:
    return _end_all(session, AccessRequest.integration_id == row.id, actor, "integration deleted")


def revoke_user_grants(session: Session, user_id: str, actor: audit.Actor, reason: str) -> int:
    return _end_all(session, AccessRequest.requester_id == user_id, actor, reason)
