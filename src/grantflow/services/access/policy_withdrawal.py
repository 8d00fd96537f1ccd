"""A flow or an integration deleted or disabled, an account suspended or closed: what it
had allowed ends.

- Its **pending and approved** requests end ``failed`` at once (event
  ``request.policy_failed``, audited, with a reason that names the flow or integration; the
  requester is notified). Nothing of them exists in AWS yet.
- Its **live** requests (granting, granted) keep their access until they expire — unless the
  admin asks to end them (``revoke_live``): then each is revoked through the normal path
  (``request.revoke`` → revoke jobs, retried until AWS confirms), with the same reason.
- An account that became suspended or closed (a sync says so) ends the same way, revoking
  what was granted in it (``end_access_in_inactive_accounts``).
- The answer (``Withdrawal``) lists what failed, what is being revoked and what is left live,
  and ``advice`` says how to revoke what is left.

``transitions.fail_request`` is the one place a request moves to ``failed`` for policy
reasons; the re-check at approve / start granting (``services.request_policy``) uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from grantflow.domain.flows import INACTIVE_ACCOUNT_STATES
from grantflow.domain.request_policy import Check
from grantflow.domain.request_states import RequestState
from grantflow.services.access.revocation import end_request
from grantflow.services.access.transitions import fail_request
from grantflow.services.audit import trail as audit
from grantflow.store.models import AccessRequest, Grant, Resource

NOT_YET_GRANTED = (RequestState.PENDING.value, RequestState.APPROVED.value)
HOLDING = (RequestState.GRANTING.value, RequestState.GRANTED.value)
HOLDING_GRANTS = ("granting", "granted", "revoking")
REVOKE_HINT = "POST /api/v1/access-requests/<id>/revoke (grantflow requests revoke <id>)"


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


def end_access_in_inactive_accounts(
    session: Session, integration_id: str, accounts: dict[str, Any], actor: audit.Actor
) -> None:
    """A suspended or closed account (``accounts``: a sync run's per-account record) ends what
    was granted (or asked for) in it: live requests are revoked, pending ones fail, each with
    the account named as the reason."""
    for account_id, info in sorted(accounts.items()):
        status = info.get("status")
        if status not in INACTIVE_ACCOUNT_STATES:
            continue
        in_account = select(Grant.request_id).join(Resource, Resource.id == Grant.resource_id)
        where = AccessRequest.id.in_(
            in_account.where(
                Resource.integration_id == integration_id, Resource.account_id == account_id
            )
        )
        reason = f"account {account_id} ({info.get('name')}) is {status}: its access ended"
        withdraw(session, where, reason, Check.ACCOUNT_INACTIVE, True, actor)
