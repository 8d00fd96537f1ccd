"""Disabling or deleting an integration: what it allowed ends, then the integration goes.

``services.integrations`` owns the integration row and never reaches into access; this module,
one layer up, does the whole step in order:

- **disable**: the row is marked disabled (``integrations.mark_disabled``), its pending and
  approved requests fail and, with ``revoke_live``, its live ones are revoked
  (``policy_withdrawal``);
- **delete**: refused while grants hold access unless ``revoke_live``; its requests are
  withdrawn the same way, its access flows deleted through the flow-deletion path, and the row
  removed or kept disabled for their history (``integrations.remove``).

Both lock the integration row first, before approvals re-checking it (``request_policy``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.domain.request_policy import Check
from grantflow.services.access import access_flows, policy_withdrawal
from grantflow.services.access.policy_withdrawal import Withdrawal
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict
from grantflow.services.integrations import lifecycle as integrations
from grantflow.store.models import AccessFlow, AccessRequest, Grant, Integration

HOLDING_GRANT_STATES = ("granting", "granted", "revoking")


def disable(
    session: Session, row: Integration, actor: audit.Actor, revoke_live: bool = False
) -> Withdrawal | None:
    """Disabling fails the integration's pending requests and, with ``revoke_live``, revokes
    its live ones (also when it is already disabled: then nothing else changes). None: it was
    already disabled and nothing was asked of its requests."""
    session.refresh(row, with_for_update=True)  # before approvals re-checking it
    if not row.enabled:
        if revoke_live:
            return _withdraw(session, row, "disabled", revoke_live, actor)
        return None
    integrations.mark_disabled(row)
    withdrawal = _withdraw(session, row, "disabled", revoke_live, actor)
    audit.record(session, actor, "integration.disabled", "integration", row.id,
                 _withdrawal_data(withdrawal, revoke_live))  # fmt: skip
    return withdrawal


def _withdraw(
    session: Session, row: Integration, what: str, revoke_live: bool, actor: audit.Actor
) -> Withdrawal:
    reason = f"integration {row.name!r} was {what}"
    check = Check.INTEGRATION_DELETED if what == "deleted" else Check.INTEGRATION_DISABLED
    return policy_withdrawal.withdraw(session, AccessRequest.integration_id == row.id, reason,
                                      check, revoke_live, actor)  # fmt: skip


def _withdrawal_data(withdrawal: Withdrawal, revoke_live: bool) -> dict[str, Any]:
    return {"revoke_live": revoke_live, "failed_requests": list(withdrawal.failed),
            "revoking_requests": list(withdrawal.revoking),
            "live_requests": list(withdrawal.live)}  # fmt: skip


def holding_grant_count(session: Session, row: Integration) -> int:
    """Grants of this integration that hold access in AWS (or are getting or losing it)."""
    query = (
        select(func.count())
        .select_from(Grant)
        .join(AccessRequest, AccessRequest.id == Grant.request_id)
        .where(AccessRequest.integration_id == row.id, Grant.state.in_(HOLDING_GRANT_STATES))
    )
    return session.scalar(query) or 0


def delete(session: Session, row: Integration, revoke_live: bool, actor: audit.Actor) -> None:
    """Delete: pending requests fail; live grants must be revoked first, or with
    ``revoke_live`` (``force``) they are revoked through the normal path before it goes.
    Its access flows are deleted with it, each through the flow-deletion path (audited
    ``access_flow.deleted``; its requests keep their history). An integration that requests
    refer to stays, disabled, for their history; one nothing refers to is removed with its
    inventory and sync history."""
    session.refresh(row, with_for_update=True)  # before approvals re-checking it
    live = holding_grant_count(session, row)
    if live and not revoke_live:
        raise Conflict(
            f"{live} grant(s) of this integration hold access; revoke them first or delete "
            "with revoke_live=true (which revokes them in AWS before the integration goes)"
        )
    withdrawal = _withdraw(session, row, "deleted", revoke_live, actor)
    flows = list(session.scalars(
        select(AccessFlow).where(AccessFlow.integration_id == row.id).order_by(AccessFlow.name)
    ))  # fmt: skip
    audit.record(session, actor, "integration.deleted", "integration", row.id,
                 {"before": integrations.snapshot(row), "forced": revoke_live, "live_grants": live,
                  "deleted_flows": [{"id": f.id, "name": f.name} for f in flows],
                  **_withdrawal_data(withdrawal, revoke_live)})  # fmt: skip
    for flow in flows:
        access_flows.delete(session, flow, actor, revoke_live,
                            cause={"integration_deleted": row.id})  # fmt: skip
    session.flush()  # the flows go before the integration they refer to
    integrations.remove(session, row, revoking=bool(live))
