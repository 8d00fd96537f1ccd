"""Every move of an access request through ``domain.request_states``, audited.

The lowest module of ``services.access``: the request, grant and revocation paths above it all
move a request through here, so none of them needs another to change a state.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.request_policy import Check
from grantflow.domain.request_states import (
    Event,
    InvalidTransition,
    RequestState,
    end_reason_for,
    transition,
)
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict
from grantflow.store.models import AccessRequest, Grant
from grantflow.store.types import utcnow


def move(session: Session, request: AccessRequest, event: Event, actor: audit.Actor,
         data: dict[str, Any] | None = None) -> None:  # fmt: skip
    before = RequestState(request.state)
    try:
        after = transition(before, event)
    except InvalidTransition as err:
        raise Conflict(str(err)) from err
    request.state = after.value
    if after is RequestState.REVOKING and request.end_reason is None:
        request.end_reason = end_reason_for(event).value
    audit.record(session, actor, f"request.{event.value}", "access_request", request.id,
                 {"from": before.value, "to": after.value, **(data or {})})  # fmt: skip


def fail_request(
    session: Session, request: AccessRequest, reason: str, check: Check, actor: audit.Actor,
    data: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Pending or approved → failed, because today's policy no longer allows the request.

    The one place a request moves to ``failed`` for policy reasons: a flow or an integration
    withdrawn (``policy_withdrawal``), the re-check at approve / start granting
    (``request_policy``)."""
    before = RequestState(request.state)
    try:
        after = transition(before, Event.POLICY_FAILED)
    except InvalidTransition as err:
        raise Conflict(str(err)) from err
    request.state = after.value
    request.failure_reason = reason
    request.ended_at = utcnow()
    for grant in session.scalars(select(Grant).where(Grant.request_id == request.id)):
        if grant.state == "pending":  # never planned or sent to AWS
            grant.state, grant.error = "failed", reason
    audit.record(session, actor, f"request.{Event.POLICY_FAILED.value}", "access_request",
                 request.id, {"from": before.value, "to": after.value, "reason": reason,
                              "check": check.value, **(data or {})})  # fmt: skip
