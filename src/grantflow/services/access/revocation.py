"""Revoking: one request (``end_request``, the one revocation entry point), or in bulk (a
deleted integration, a deactivated user, a withdrawn flow).

Each live request is ended through the state machine; its grants get revoke jobs, which are
retried until AWS confirms.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.request_states import Event, RequestState
from grantflow.services.access import grant_jobs
from grantflow.services.access.transitions import move
from grantflow.services.audit import trail as audit
from grantflow.store.models import AccessRequest, Integration
from grantflow.store.types import utcnow

OPEN_STATES = ("pending", "approved", "granting", "granted")


def end_request(session: Session, request: AccessRequest, actor: audit.Actor, reason: str) -> None:
    """Revoke: ends a pending request, or takes granted access away."""
    state = RequestState(request.state)
    move(session, request, Event.REVOKE, actor, {"reason": reason})
    if state in (RequestState.PENDING, RequestState.APPROVED):
        request.ended_at = utcnow()
        return
    grant_jobs.start_revoking(session, request)


def _end_all(session: Session, query_filter: object, actor: audit.Actor, reason: str) -> int:
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
