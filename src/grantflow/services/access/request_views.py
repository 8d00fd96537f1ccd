"""Access requests as the API shows them, for one request or a page of them.

Everything a page of requests shows — requesters, integrations, flows, grants and their
resources, approvals and their approvers, approvers' names — is read with one statement per
kind of row for the whole page, never one per request (no N+1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from grantflow.domain.flows import FlowDefinition
from grantflow.services.access import grant_building, request_lists, session_cuts
from grantflow.services.identity.approver_names import ApproverNames
from grantflow.store.id_lists import any_of
from grantflow.store.models import (
    AccessFlow,
    Approval,
    Grant,
    Group,
    Integration,
    Resource,
    User,
)

REQUEST_FIELDS = request_lists.REQUEST_FIELDS
# Plain rows of only what the page shows, one statement per kind of row (ORM objects cost
# ~0.1 ms each to build; a page of 100 requests loaded ~800 of them).
# a grant's handle only shapes the access details of a granted one: not read (nor decoded) else
GRANT_HANDLE = case((Grant.state == "granted", Grant.handle)).label("handle")
GRANT_COLUMNS = (Grant.id, Grant.request_id, Grant.resource_id, Grant.state, GRANT_HANDLE,
                 Grant.pre_existing, Grant.error, Grant.granted_at, Grant.expires_at,
                 Grant.revoked_at)  # fmt: skip
APPROVAL_COLUMNS = (Approval.request_id, Approval.approver_id, Approval.decision,
                    Approval.reason, Approval.created_at)  # fmt: skip


def _by_id(
    session: Session, model: type[Any], ids: Iterable[str | None], *columns: Any
) -> dict[str, Any]:
    """Plain rows of ``columns`` (and the id) by id."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    query = select(model.id, *columns).where(any_of(session, model.id, wanted))
    return {row.id: row for row in session.execute(query)}


class _Names(ApproverNames):
    """``ApproverNames.preload`` from plain rows (id, username, display name; group names)."""

    def preload(self, refs: Iterable[str], user_ids: Iterable[str] = ()) -> dict[str, Any]:
        refs = list(refs)
        wanted, group_ids = self.ids_named(refs, user_ids)
        users: dict[str, Any] = {}
        if wanted:
            query = select(User.id, User.username, User.display_name)
            among = any_of(self._session, User.id, wanted)
            users = {u.id: u for u in self._session.execute(query.where(among))}
        groups: dict[str, Any] = {}
        if group_ids:
            among = any_of(self._session, Group.id, group_ids)
            named = select(Group.id, Group.name).where(among)
            groups = {g.id: g for g in self._session.execute(named)}
        self.remember(refs, users, groups)
        return users


def _approval_refs(rows: Sequence[Any]) -> set[str]:
    return {ref for r in rows for s in (r.approval or {}).get("sets", [])
            for ref in s.get("principals", [])}  # fmt: skip


def _named_approval(namer: ApproverNames, approval: dict[str, Any] | None) -> dict[str, Any]:
    """The stored approval sets, each with ``names``: its approvers as people read them."""
    data = dict(approval or {})
    data["sets"] = [{**s, "names": namer.names(s.get("principals", []))}
                    for s in data.get("sets", [])]  # fmt: skip
    return data


def _grant(grant: Any, resource: Any, integ: Any,
           permission: str) -> dict[str, Any]:  # fmt: skip
    access: dict[str, Any] = {}
    if grant.state == "granted" and integ is not None:
        access = grant_building.access_details(integ, grant.handle, resource, permission)
    return {
        "id": grant.id, "resource_id": grant.resource_id,
        "resource_name": resource.name if resource else None,
        "resource_type": resource.type if resource else None,
        "account_id": resource.account_id if resource else None, "state": grant.state,
        "pre_existing": grant.pre_existing, "error": grant.error, "granted_at": grant.granted_at,
        "expires_at": grant.expires_at, "revoked_at": grant.revoked_at, "access": access,
    }  # fmt: skip


def views(
    session: Session,
    rows: Sequence[Any],
    viewer: User | None = None,
    approvable: set[str] | None = None,
) -> list[dict[str, Any]]:
    """The public form of ``rows`` (AccessRequest objects, or rows of
    ``request_lists.SHOWN``), in order. ``can_approve`` is for ``viewer`` (False
    without one); pass ``approvable`` when the caller already knows which rows they are."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    grants: dict[str, list[Any]] = defaultdict(list)
    for grant in session.execute(
        select(*GRANT_COLUMNS).where(any_of(session, Grant.request_id, ids))
    ):
        grants[grant.request_id].append(grant)
    approvals: dict[str, list[Any]] = defaultdict(list)
    for a in session.execute(
        select(*APPROVAL_COLUMNS).where(any_of(session, Approval.request_id, ids))
    ):
        approvals[a.request_id].append(a)
    granted = (g.resource_id for gs in grants.values() for g in gs)
    shown = (Resource.name, Resource.type, Resource.account_id, Resource.aws_id)
    resources = _by_id(session, Resource, granted, *shown)
    cuts = session_cuts.of_requests(session, ids)
    integ_ids = (r.integration_id for r in rows)
    integrations = _by_id(session, Integration, integ_ids, Integration.config)
    flows = _by_id(session, AccessFlow, (r.flow_id for r in rows), AccessFlow.definition)
    extensions = {i: FlowDefinition.stored(f.definition).max_extensions for i, f in flows.items()}
    people = {r.requester_id for r in rows} | {a.approver_id for v in approvals.values() for a in v}
    namer = _Names(session)
    users = namer.preload(_approval_refs(rows), people)
    if approvable is None:
        approvable = request_lists.approvable_among(session, viewer, rows) if viewer else set()
    out = []
    for r in rows:
        integ = integrations.get(r.integration_id)
        requester = users.get(r.requester_id)
        data = {name: getattr(r, name) for name in REQUEST_FIELDS}
        data.update(
            requester=requester.username if requester else "?",
            grants=[{**_grant(g, resources.get(g.resource_id or ""), integ, r.permission),
                     "session_cut": cuts.get(g.id)} for g in grants[r.id]],
            approvals=[{"approver_id": a.approver_id,
                        "approver": users[a.approver_id].username if a.approver_id in users
                        else "?", "decision": a.decision, "reason": a.reason,
                        "created_at": a.created_at} for a in approvals[r.id]],
            approval=_named_approval(namer, r.approval),
            max_extensions=extensions.get(r.flow_id or "", 0),
            can_approve=r.id in approvable,
        )  # fmt: skip
        out.append(data)
    return out
