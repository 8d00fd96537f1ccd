"""Access flows: CRUD and checks. The views the eligibility rules work on are
``services.access.flow_views``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.flows import FlowDefinition
from grantflow.domain.request_policy import Check
from grantflow.services.access import policy_withdrawal
from grantflow.services.access.flow_views import valid_permissions
from grantflow.services.access.policy_withdrawal import Withdrawal
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, Invalid, NotFound
from grantflow.services.integrations import lifecycle as integrations
from grantflow.store.models import (
    AccessFlow,
    AccessRequest,
    Group,
    Integration,
    Permission,
    Resource,
    User,
)


def get(session: Session, flow_id: str) -> AccessFlow:
    row = session.get(AccessFlow, flow_id)
    if row is None:
        raise NotFound(f"no access flow {flow_id}")
    return row


def _check_references(session: Session, integration_id: str, definition: FlowDefinition) -> None:
    row = integrations.get(session, integration_id)
    unknown = [t for t in definition.scope.resource_types if t not in row.resource_types]
    if unknown:
        raise Invalid(f"the integration does not sync {', '.join(unknown)}",
                      field="definition.scope.resource_types")  # fmt: skip
    users = set(definition.requestors.user_ids)
    groups = set(definition.requestors.group_ids)
    for approver in definition.approval.groups:
        users |= set(approver.user_ids)
        groups |= set(approver.group_ids)
    if users:
        found = set(session.scalars(select(User.id).where(User.id.in_(users))))
        if users - found:
            raise Invalid(f"unknown user id(s): {', '.join(sorted(users - found))}",
                          field="definition")  # fmt: skip
    if groups:
        found = set(session.scalars(select(Group.id).where(Group.id.in_(groups))))
        if groups - found:
            raise Invalid(f"unknown group id(s): {', '.join(sorted(groups - found))}",
                          field="definition")  # fmt: skip
    _check_permissions(session, row, definition)


def _check_permissions(session: Session, row: Integration, definition: FlowDefinition) -> None:
    for rtype, names in definition.permissions.items():
        valid = valid_permissions(session, row, rtype)
        unknown = [n for n in names if valid is not None and n not in valid]
        if unknown:
            listed = ", ".join(sorted(valid or ())) or "none (sync the integration first)"
            raise Invalid(
                f"no permission {', '.join(repr(n) for n in unknown)} on {rtype} in "
                f"integration {row.name!r}; valid: {listed}",
                field=f"definition.permissions.{rtype}",
            )


def flow_warnings(session: Session, row: AccessFlow) -> list[str]:
    """What is wrong with a saved flow without making it invalid: scopes naming excluded or
    unknown OUs or accounts, permissions deleted since it was saved (no longer offered)."""
    integ = session.get(Integration, row.integration_id)
    if integ is None:
        return []
    definition = FlowDefinition.stored(row.definition)
    return _scope_warnings(session, integ, definition) + _permission_warnings(
        session, integ, definition
    )


def _scope_warnings(session: Session, integ: Integration, definition: FlowDefinition) -> list[str]:
    scope = definition.scope
    excluded = set(integrations.config_of(integ).exclude_ou_ids)
    known = (integ.facts or {}).get("ou_ids")
    out = []
    for ou in scope.ou_ids:
        if ou in excluded:
            out.append(f"scope.ou_ids: {ou} is excluded from integration {integ.name!r} "
                       "(Exclude OUs): nothing under it is synced or requestable")  # fmt: skip
        elif isinstance(known, list) and ou not in known:
            out.append(f"scope.ou_ids: {ou} is not an OU of the organization")
    if scope.account_ids and integ.last_sync_at is not None:
        synced = set(
            session.scalars(
                select(Resource.account_id).where(
                    Resource.integration_id == integ.id,
                    Resource.account_id.in_(scope.account_ids),
                )
            )
        )
        for account in scope.account_ids:
            if account not in synced:
                out.append(f"scope.account_ids: account {account} is not synced (excluded "
                           "by Exclude OUs, or not in the organization)")  # fmt: skip
    return out


def _permission_warnings(
    session: Session, integ: Integration, definition: FlowDefinition
) -> list[str]:
    out = []
    for rtype, names in definition.permissions.items():
        valid = valid_permissions(session, integ, rtype)
        for name in names:
            if valid is not None and name not in valid:
                out.append(f"permissions.{rtype}: {name!r} no longer exists in integration "
                           f"{integ.name!r}: it is not offered")  # fmt: skip
    return out


def _check_name(session: Session, name: str, except_id: str | None = None) -> None:
    clash = session.scalar(select(AccessFlow.id).where(AccessFlow.name == name))
    if clash is not None and clash != except_id:
        raise Conflict(f"an access flow named {name!r} already exists", field="name")


def _snapshot(row: AccessFlow) -> dict[str, Any]:
    return {"name": row.name, "description": row.description, "enabled": row.enabled,
            "integration_id": row.integration_id, "definition": row.definition}  # fmt: skip


def create(
    session: Session,
    name: str,
    description: str,
    enabled: bool,
    integration_id: str,
    definition: FlowDefinition,
    actor: audit.Actor,
) -> AccessFlow:
    _check_name(session, name)
    _check_references(session, integration_id, definition)
    row = AccessFlow(name=name, description=description, enabled=enabled,
                     integration_id=integration_id,
                     definition=definition.model_dump(mode="json"))  # fmt: skip
    session.add(row)
    session.flush()
    audit.record(session, actor, "access_flow.created", "access_flow", row.id,
                 {"after": _snapshot(row)})  # fmt: skip
    return row


def update(
    session: Session, row: AccessFlow, changes: dict[str, Any], actor: audit.Actor,
    revoke_live: bool = False,
) -> Withdrawal | None:  # fmt: skip
    """Change a flow. Disabled (now, or already and ``revoke_live``): its pending requests
    fail and, with ``revoke_live``, its live ones are revoked (services.policy_withdrawal)."""
    disabling = changes.get("enabled", row.enabled) is False
    if revoke_live and not disabling:
        raise Invalid("revoke_live applies to a disabled flow: send enabled false with it",
                      field="revoke_live")  # fmt: skip
    if disabling:
        session.refresh(row, with_for_update=True)  # before approvals re-checking this flow
    before = _snapshot(row)
    if "name" in changes:
        _check_name(session, changes["name"], row.id)
        row.name = changes["name"]
    if "description" in changes:
        row.description = changes["description"]
    if "enabled" in changes:
        row.enabled = changes["enabled"]
    if "definition" in changes:
        _check_references(session, row.integration_id, changes["definition"])
        row.definition = changes["definition"].model_dump(mode="json")
    after = _snapshot(row)
    withdrawal = None
    if disabling and (before["enabled"] or revoke_live):
        withdrawal = policy_withdrawal.withdraw(
            session, AccessRequest.flow_id == row.id, f"access flow {row.name!r} was disabled",
            Check.FLOW_DISABLED, revoke_live, actor,
        )  # fmt: skip
    if after != before:
        audit.record(session, actor, "access_flow.updated", "access_flow", row.id,
                     {"before": before, "after": after,
                      **_withdrawal_data(withdrawal, revoke_live)})  # fmt: skip
    return withdrawal


def _withdrawal_data(withdrawal: Withdrawal | None, revoke_live: bool) -> dict[str, Any]:
    if withdrawal is None:
        return {}
    return {"revoke_live": revoke_live, "failed_requests": list(withdrawal.failed),
            "revoking_requests": list(withdrawal.revoking),
            "live_requests": list(withdrawal.live)}  # fmt: skip


def delete(
    session: Session, row: AccessFlow, actor: audit.Actor, revoke_live: bool = False,
    cause: dict[str, Any] | None = None,
) -> Withdrawal:  # fmt: skip
    """Delete a flow: its pending requests fail; its live ones are revoked with
    ``revoke_live``, else they keep their access until they expire (services.policy_withdrawal).
    ``cause``: recorded with the event (the flow goes with its deleted integration)."""
    session.refresh(row, with_for_update=True)  # before approvals re-checking this flow
    withdrawal = policy_withdrawal.withdraw(
        session, AccessRequest.flow_id == row.id, f"access flow {row.name!r} was deleted",
        Check.FLOW_DELETED, revoke_live, actor,
    )  # fmt: skip
    audit.record(session, actor, "access_flow.deleted", "access_flow", row.id,
                 {"before": _snapshot(row), **(cause or {}),
                  **_withdrawal_data(withdrawal, revoke_live)})  # fmt: skip
    for request in session.scalars(select(AccessRequest).where(AccessRequest.flow_id == row.id)):
        request.flow_id = None
    session.delete(row)
    return withdrawal


def permission_exists(session: Session, integration_id: str, rtype: str, name: str) -> bool:
    return (
        session.scalar(
            select(Permission.id).where(
                Permission.integration_id == integration_id,
                Permission.resource_type == rtype,
                Permission.name == name,
            )
        )
        is not None
    )
