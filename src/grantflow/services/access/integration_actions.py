"""The integration use cases the API calls, each owning its transaction: create, list,
show, change, enable, disable, delete, sync now, sync history, one sync run, reconcile.

Admins get the full integration (``integration_views.admin_view``); members a public view
(``view``: ``member``): name, type, status and what their own access flows let them
request there. Disabling and deleting go through ``integration_retirement`` (requests
withdrawn, flows deleted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.authz import Principal, Role
from grantflow.services.access import integration_retirement, reconcile, requestable
from grantflow.services.access.policy_withdrawal import Withdrawal
from grantflow.services.audit import trail as audit
from grantflow.services.errors import NotFound
from grantflow.services.integrations import integration_views
from grantflow.services.integrations import lifecycle as integrations
from grantflow.services.integrations.lifecycle import IntegrationInput
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import Integration, SyncRun, User

View = dict[str, Any]


def _offers(session: Session, principal: Principal) -> dict[str, dict[str, set[str]]]:
    """Per integration, per resource type, the permissions the caller's flows offer."""
    user = session.get(User, principal.id)
    out: dict[str, dict[str, set[str]]] = {}
    for flow in requestable.flows_for(session, user) if user is not None else []:
        types = out.setdefault(flow.integration_id, {})
        for rtype in flow.definition.scope.resource_types:
            types.setdefault(rtype, set()).update(flow.definition.permissions.get(rtype, []))
    return out


def _member_view(row: Integration, offers: dict[str, set[str]]) -> View:
    return {
        "view": "member", "id": row.id, "name": row.name, "type": row.type,
        "status": row.status, "enabled": row.enabled,
        "requestable": [{"resource_type": t, "permissions": sorted(p)}
                        for t, p in sorted(offers.items())],
    }  # fmt: skip


def _views(session: Session, principal: Principal, rows: list[Integration]) -> list[View]:
    if principal.role is Role.ADMIN:
        return [integration_views.admin_view(session, r) for r in rows]
    offers = _offers(session, principal)
    return [_member_view(r, offers.get(r.id, {})) for r in rows]


def create(sessions: sessionmaker[Session], data: IntegrationInput, actor: audit.Actor) -> View:
    with transaction(sessions) as session:
        return integration_views.admin_view(session, integrations.create(session, data, actor))


def listed(sessions: sessionmaker[Session], principal: Principal) -> list[View]:
    """Every integration by name, as ``principal`` may see it (``view`` tells which)."""
    with transaction(sessions) as session:
        rows = list(session.scalars(select(Integration).order_by(Integration.name)).all())
        return _views(session, principal, rows)


def show(sessions: sessionmaker[Session], integration_id: str, principal: Principal) -> View:
    with transaction(sessions) as session:
        (view,) = _views(session, principal, [integrations.get(session, integration_id)])
        return view


def update(
    sessions: sessionmaker[Session], integration_id: str, changes: dict[str, Any],
    actor: audit.Actor,
) -> View:  # fmt: skip
    """``changes`` as given; a ``config`` in them is a JSON merge patch of the stored one."""
    with transaction(sessions) as session:
        row = integrations.get(session, integration_id)
        if "config" in changes:
            changes = {**changes, "config": integrations.merged_config(row, changes["config"])}
        integrations.update(session, row, changes, actor)
        return integration_views.admin_view(session, row)


def delete(
    sessions: sessionmaker[Session], integration_id: str, revoke_live: bool, actor: audit.Actor
) -> None:
    with transaction(sessions) as session:
        row = integrations.get(session, integration_id)
        integration_retirement.delete(session, row, revoke_live, actor)


def disable(
    sessions: sessionmaker[Session], integration_id: str, actor: audit.Actor, revoke_live: bool
) -> tuple[View, Withdrawal | None]:
    """The integration, and what became of its requests (None: it was already disabled)."""
    with transaction(sessions) as session:
        row = integrations.get(session, integration_id)
        withdrawal = integration_retirement.disable(session, row, actor, revoke_live)
        return integration_views.admin_view(session, row), withdrawal


def enable(sessions: sessionmaker[Session], integration_id: str, actor: audit.Actor) -> View:
    with transaction(sessions) as session:
        row = integrations.get(session, integration_id)
        integrations.enable(session, row, actor)
        return integration_views.admin_view(session, row)


def sync_now(sessions: sessionmaker[Session], integration_id: str, actor: audit.Actor) -> View:
    with transaction(sessions) as session:
        row = integrations.get(session, integration_id)
        return integration_views.run_view(integrations.request_sync(session, row, "manual", actor))


def sync_history(sessions: sessionmaker[Session], integration_id: str, limit: int) -> list[View]:
    """The latest ``limit`` sync runs, newest first."""
    with transaction(sessions) as session:
        integrations.get(session, integration_id)
        runs = session.scalars(
            select(SyncRun)
            .where(SyncRun.integration_id == integration_id)
            .order_by(SyncRun.generation.desc())
            .limit(limit)
        ).all()
        return [integration_views.run_view(r) for r in runs]


def sync_run(
    sessions: sessionmaker[Session], integration_id: str, sync_run_id: str, accounts: bool
) -> View:
    with read_transaction(sessions) as session:
        run = session.get(SyncRun, sync_run_id)
        if run is None or run.integration_id != integration_id:
            raise NotFound(f"no sync run {sync_run_id} of integration {integration_id}")
        return integration_views.run_view(run, accounts)


def reconcile_now(sessions: sessionmaker[Session], integration_id: str, repair: bool) -> str | None:
    """The reconcile job's id; None when Grantflow manages nothing there yet."""
    with transaction(sessions) as session:
        job = reconcile.enqueue(session, integrations.get(session, integration_id), repair)
        return job.id if job else None
