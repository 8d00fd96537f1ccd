"""A flow or an integration deleted or disabled: what it had allowed ends.

- Its **pending and approved** requests end ``failed`` at once (event
  ``request.policy_failed``, audited, with a reason that names the flow or integration; the
  requester is notified). Nothing of them exists in AWS yet.
- Its **live** requests (granting, granted) keep their access until they expire — unless the
  admin asks to end them (``revoke_live``): then each is revoked through the normal path
  (``request.revoke`` → revoke jobs, retried until AWS confirms), with the same reason.
- The answer (``Withdrawal``) lists what failed, what is being revoked and what is left live,
  and ``advice`` says how to revoke what is left.

``fail_request`` is the one place a request moves to ``failed`` for policy reasons; the
re-check at approve / start granting (``services.request_policy``) uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from grantflow.domain.request_policy import Check
from grantflow.domain.request_states import Event, InvalidTransition, RequestState, transition
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict
from grantflow.store.models import AccessRequest, Grant
from grantflow.store.types import utcnow

NOT_YET_GRANTED = (RequestState.PENDING.value, RequestState.APPROVED.value)
HOLDING = (RequestState.GRANTING.value, RequestState.GRANTED.value)
HOLDING_GRANTS = ("granting", "granted", "revoking")
REVOKE_HINT = "POST /api/v1/access-requests/<id>/revoke (grantflow requests revoke <id>)"


def fail_request(
    session: Session, request: AccessRequest, reason: str, check: Check, actor: audit.Actor,
    data: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Pending or approved → failed, because today's policy no longer allows the request."""
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


@dataclass(frozen=True, slots=True)
class Withdrawal:
    failed: tuple[str, ...] = ()  # request ids: pending/approved, now failed
    revoking: tuple[str, ...] = ()  # request ids: live, now being revoked (revoke_live)
    live: tuple[str, ...] = ()  # request ids: live, left holding access
    live_grants: int = 0  # grants of ``live`` that hold (or are getting) access

    def advice(self, again: str | None) -> str:
        """What happened, and how to revoke what is left (``again``: the same call with
        revoke_live, when repeating it is possible)."""
        parts = [f"{len(self.failed)} pending or approved request(s) failed"]
        if self.revoking:
            parts.append(f"{len(self.revoking)} live request(s) are being revoked")
        if not self.live:
            return "; ".join(parts) + "; no live grants remain"
        how = f"repeat with {again} or revoke" if again else "revoke"
        parts.append(
            f"{self.live_grants} live grant(s) of {len(self.live)} request(s) keep their "
            f"access until they expire: {how} each with {REVOKE_HINT}"
        )
        return "; ".join(parts)


def withdraw(
    session: Session,
    where: ColumnElement[bool],
    reason: str,
    check: Check,
    revoke_live: bool,
    actor: audit.Actor,
) -> Withdrawal:
    """Fail the open requests ``where`` selects; revoke (or count) the live ones."""
    failed = []
    for request in _requests(session, where, NOT_YET_GRANTED):
        fail_request(session, request, reason, check, actor)
        failed.append(request.id)
    live = _requests(session, where, HOLDING)
    if revoke_live:
        # access_requests imports the flows' views; this bulk path reaches back for the one
        # revocation entry point (as services.revocation does).
        from grantflow.services.access.access_requests import end_request

        for request in live:
            end_request(session, request, actor, reason)
        return Withdrawal(failed=tuple(failed), revoking=tuple(r.id for r in live))
    ids = tuple(r.id for r in live)
    grants = (
        session.scalar(
            select(func.count())
            .select_from(Grant)
            .where(Grant.request_id.in_(ids), Grant.state.in_(HOLDING_GRANTS))
        )
        if ids
        else 0
    )
    return Withdrawal(failed=tuple(failed), live=ids, live_grants=int(grants or 0))


def _requests(
    session: Session, where: ColumnElement[bool], states: tuple[str, ...]
) -> list[AccessRequest]:
    query = (
        select(AccessRequest)
        .where(where, AccessRequest.state.in_(states))
        .order_by(AccessRequest.created_at, AccessRequest.id)
    )
    return list(session.scalars(query))
