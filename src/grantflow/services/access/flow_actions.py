"""The access-flow use cases the API calls, each owning its transaction: create, list, show,
change, delete, the permissions a flow may name, and flows as code (export, apply).

A flow is answered as ``flow_view``: its columns and the warnings about what it names
(``access_flows.flow_warnings``), read in the transaction that changed it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.flows import FlowDefinition
from grantflow.services.access import access_flows, flow_views, flows_as_code
from grantflow.services.access.policy_withdrawal import Withdrawal
from grantflow.services.audit import trail as audit
from grantflow.services.integrations import lifecycle as integrations
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import AccessFlow

View = dict[str, Any]
COLUMNS = ("id", "name", "description", "enabled", "integration_id", "definition",
           "created_at", "updated_at")  # fmt: skip


def flow_view(session: Session, row: AccessFlow) -> View:
    return {**{c: getattr(row, c) for c in COLUMNS},
            "warnings": access_flows.flow_warnings(session, row)}  # fmt: skip


def create(
    sessions: sessionmaker[Session],
    name: str,
    description: str,
    enabled: bool,
    integration_id: str,
    definition: FlowDefinition,
    actor: audit.Actor,
) -> View:
    with transaction(sessions) as session:
        row = access_flows.create(
            session, name, description, enabled, integration_id, definition, actor
        )
        return flow_view(session, row)


def listed(sessions: sessionmaker[Session]) -> list[View]:
    """Every flow, by name."""
    with read_transaction(sessions) as session:
        rows = session.scalars(select(AccessFlow).order_by(AccessFlow.name))
        return [flow_view(session, r) for r in rows]


def show(sessions: sessionmaker[Session], flow_id: str) -> View:
    with read_transaction(sessions) as session:
        return flow_view(session, access_flows.get(session, flow_id))


def update(
    sessions: sessionmaker[Session],
    flow_id: str,
    changes: dict[str, Any],
    actor: audit.Actor,
    revoke_live: bool,
) -> tuple[View, Withdrawal | None]:
    """The changed flow, and what disabling it did to its requests (None: not disabled)."""
    with transaction(sessions) as session:
        row = access_flows.get(session, flow_id)
        withdrawal = access_flows.update(session, row, changes, actor, revoke_live)
        return flow_view(session, row), withdrawal


def delete(
    sessions: sessionmaker[Session], flow_id: str, actor: audit.Actor, revoke_live: bool
) -> tuple[str, Withdrawal]:
    """The deleted flow's name, and what became of its requests."""
    with transaction(sessions) as session:
        row = access_flows.get(session, flow_id)
        name = row.name
        return name, access_flows.delete(session, row, actor, revoke_live)


def permission_choices(
    sessions: sessionmaker[Session], integration_id: str
) -> list[tuple[str, list[str] | None]]:
    """Per resource type the integration syncs, the permissions a flow may name (sorted;
    None: any name, not known before the first sync)."""
    with read_transaction(sessions) as session:
        row = integrations.get(session, integration_id)
        out: list[tuple[str, list[str] | None]] = []
        for rtype in row.resource_types:
            valid = flow_views.valid_permissions(session, row, rtype)
            out.append((rtype, sorted(valid) if valid is not None else None))
        return out


def export(sessions: sessionmaker[Session]) -> flows_as_code.FlowsDoc:
    with read_transaction(sessions) as session:
        return flows_as_code.export(session)


def apply(
    sessions: sessionmaker[Session], doc: flows_as_code.FlowsDoc, actor: audit.Actor,
    dry_run: bool,
) -> flows_as_code.Diff:  # fmt: skip
    with transaction(sessions) as session:
        return flows_as_code.apply(session, doc, actor, dry_run)
