"""The views the eligibility rules (``domain.flows``) work on: a requester, a resource, the
flows as they stand today (an integration's enabled state and owners, only the permissions
that still exist), and the permissions a flow may offer.

Read-only; the request, policy and requestable paths and flow CRUD all read through here.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.aws import registry
from grantflow.domain.flows import FlowDefinition, FlowView, RequesterView, ResourceView
from grantflow.services.identity.owners import integration_owner_refs
from grantflow.services.integrations import lifecycle as integrations
from grantflow.store.models import (
    AccessFlow,
    GroupMembership,
    Integration,
    Permission,
    Resource,
    User,
)


def valid_permissions(session: Session, row: Integration, rtype: str) -> set[str] | None:
    """What a flow may offer on ``rtype``: once the integration has synced, its synced
    permission sets (aws-account) and permission levels; before, the levels each type
    defines, and None for permission sets (not known yet)."""
    if row.last_sync_at is not None:
        query = select(Permission.name).where(
            Permission.integration_id == row.id, Permission.resource_type == rtype
        )
        return set(session.scalars(query))
    if rtype == "aws-account":
        return None
    return {spec.key for spec in registry.resource_type(rtype).permissions}


def requester_view(session: Session, user: User) -> RequesterView:
    groups = frozenset(
        session.scalars(select(GroupMembership.group_id).where(GroupMembership.user_id == user.id))
    )
    return RequesterView(user.id, groups, dict(user.attributes or {}), user.active)


def resource_view(resource: Resource) -> ResourceView:
    return ResourceView(
        id=resource.id,
        integration_id=resource.integration_id,
        type=resource.type,
        aws_id=resource.aws_id,
        account_id=resource.account_id,
        ou_path=tuple(resource.ou_path or ()),
        tags={str(k): str(v) for k, v in (resource.tags or {}).items()},
        owners=tuple(resource.owners or ()),
        account_status=(resource.attributes or {}).get("account_status"),
    )


def flow_views(session: Session, rows: Iterable[AccessFlow] | None = None) -> list[FlowView]:
    if rows is None:
        rows = session.scalars(select(AccessFlow)).all()
    by_integration: dict[str, tuple[bool, tuple[str, ...]]] = {}  # enabled, owner refs
    offered: dict[str, Integration] = {}
    valid: dict[tuple[str, str], set[str] | None] = {}  # read once per integration and type
    views = []
    for row in rows:
        if row.integration_id not in by_integration:
            integ = integrations.get(session, row.integration_id)
            refs = integration_owner_refs(session, integ) if integ.enabled else []
            by_integration[row.integration_id] = (integ.enabled, tuple(refs))
            offered[row.integration_id] = integ
        integ_enabled, owners = by_integration[row.integration_id]
        definition = _existing_only(session, offered[row.integration_id],
                                    FlowDefinition.stored(row.definition), valid)  # fmt: skip
        views.append(FlowView(row.id, row.name, row.enabled and integ_enabled,
                              row.integration_id, definition, owners))  # fmt: skip
    return views


def _existing_only(
    session: Session,
    integ: Integration,
    definition: FlowDefinition,
    cache: dict[tuple[str, str], set[str] | None],
) -> FlowDefinition:
    """The definition offering only permissions that still exist (a permission set deleted
    in Identity Center since the flow was saved is not offered; ``flow_warnings`` says so)."""
    kept = {}
    for rtype, names in definition.permissions.items():
        if (integ.id, rtype) not in cache:
            cache[(integ.id, rtype)] = valid_permissions(session, integ, rtype)
        valid = cache[(integ.id, rtype)]
        kept[rtype] = names if valid is None else [n for n in names if n in valid]
    if kept == definition.permissions:
        return definition
    return definition.model_copy(update={"permissions": kept})
