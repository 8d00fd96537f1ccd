"""What a user may request, computed by the database from the eligibility index.

Each flow that lists the user is compiled into one indexed set of resource ids — its
integration and types, then its scope as set operations over the index tables
(``store.models_index``: a resource's OUs, its tags, inactive accounts) and the resources'
own indexed columns (id, AWS id, account), minus its exclusions. Flows whose scopes differ
only in the values they name (the same tag key, OU lists, account lists, id lists, the same
exclusions) share one set. The sets are unioned, suspended accounts taken out, and the
database counts and pages the result; the cost grows with the rows that match, not with
resources times flows. Only the page's rows are matched back to their flows in Python, with the
pure rule that decides a request (``domain.flows.in_scope``); the property test
tests/hardening/test_properties_requestable.py checks both give the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select, union
from sqlalchemy.orm import Session

from grantflow.domain.flows import FlowView, Requestors, ScopeMode, in_scope, requestor_matches
from grantflow.services.access import access_flows
from grantflow.store.models import AccessFlow, Resource, User
from grantflow.store.models_index import InactiveResource, ResourceOu, ResourceTag


@dataclass(frozen=True, slots=True)
class _SetKey:
    """What a compiled set depends on besides the values it names."""

    integration_id: str
    types: tuple[str, ...]
    mode: ScopeMode
    tag_key: str | None  # TAG: the key; "any value" flows get their own set
    any_value: bool
    exclude_resource_ids: tuple[str, ...]
    exclude_account_ids: tuple[str, ...]
    exclude_ou_ids: tuple[str, ...]


def _key_and_values(flow: FlowView) -> tuple[_SetKey, list[str]]:
    scope = flow.definition.scope
    tag = scope.tag if scope.mode is ScopeMode.TAG else None
    values = {
        ScopeMode.ALL: [],
        ScopeMode.IDS: scope.resource_ids,
        ScopeMode.TAG: [tag.value] if tag is not None and tag.value is not None else [],
        ScopeMode.ACCOUNTS: scope.account_ids,
        ScopeMode.OUS: scope.ou_ids,
    }[scope.mode]
    key = _SetKey(
        flow.integration_id,
        tuple(sorted(set(scope.resource_types))),
        scope.mode,
        tag.key if tag is not None else None,
        tag is not None and tag.value is None,
        tuple(sorted(set(scope.exclude_resource_ids))),
        tuple(sorted(set(scope.exclude_account_ids))),
        tuple(sorted(set(scope.exclude_ou_ids))),
    )
    return key, list(values)


def _under_ous(ous: Sequence[str]) -> Select[Any]:
    return select(ResourceOu.resource_id).where(ResourceOu.ou_id.in_(ous))


def _not_under_ous(ous: Sequence[str]) -> ColumnElement[bool]:
    """Probed per candidate row (the primary key of ``resource_ous``), so that excluding a
    large OU costs nothing for the rows that are not candidates."""
    return ~exists().where(ResourceOu.resource_id == Resource.id, ResourceOu.ou_id.in_(ous))


def _scope_condition(key: _SetKey, values: Sequence[str]) -> ColumnElement[bool] | None:
    if key.mode is ScopeMode.IDS:
        return or_(Resource.id.in_(values), Resource.aws_id.in_(values))
    if key.mode is ScopeMode.TAG:
        tagged = select(ResourceTag.resource_id).where(ResourceTag.key == key.tag_key)
        if not key.any_value:
            tagged = tagged.where(ResourceTag.value.in_(values))
        return Resource.id.in_(tagged)
    if key.mode is ScopeMode.ACCOUNTS:
        return Resource.account_id.in_(values)
    if key.mode is ScopeMode.OUS:
        return Resource.id.in_(_under_ous(values))
    return None


def compiled_set(
    key: _SetKey, values: Sequence[str], filters: Sequence[ColumnElement[bool]] = ()
) -> Select[Any]:
    """The ids of the resources one flow (or several sharing ``key``) covers."""
    query = select(Resource.id).where(
        Resource.integration_id == key.integration_id, Resource.type.in_(key.types), *filters
    )
    condition = _scope_condition(key, values)
    if condition is not None:
        query = query.where(condition)
    if key.exclude_resource_ids:
        query = query.where(Resource.id.not_in(key.exclude_resource_ids),
                            Resource.aws_id.not_in(key.exclude_resource_ids))  # fmt: skip
    if key.exclude_account_ids:
        # in_scope: a resource without an account is not in an excluded account
        query = query.where(or_(Resource.account_id.is_(None), Resource.account_id == "",
                                Resource.account_id.not_in(key.exclude_account_ids)))  # fmt: skip
    if key.exclude_ou_ids:
        query = query.where(_not_under_ous(key.exclude_ou_ids))
    return query


def compiled_sets(flows: Sequence[FlowView]) -> dict[_SetKey, list[str]]:
    """Flows grouped by what their sets depend on, each group with the values it names."""
    grouped: dict[_SetKey, set[str]] = {}
    for flow in flows:
        key, values = _key_and_values(flow)
        grouped.setdefault(key, set()).update(values)
    return {key: sorted(values) for key, values in grouped.items()}


def requestable_ids(
    flows: Sequence[FlowView], filters: Sequence[ColumnElement[bool]] = ()
) -> Select[Any] | None:
    """The ids of every resource some flow covers (``filters`` applied), suspended accounts
    left out; None when no flow covers anything."""
    sets = [compiled_set(key, values, filters) for key, values in compiled_sets(flows).items()]
    if not sets:
        return None
    ids = union(*sets).subquery() if len(sets) > 1 else sets[0].subquery()
    return select(ids.c.id).where(ids.c.id.not_in(select(InactiveResource.resource_id)))


def flows_for(session: Session, user: User) -> list[FlowView]:
    """The enabled flows listing ``user`` as a requestor (only those are turned into views)."""
    requester = access_flows.requester_view(session, user)
    rows = [
        row for row in session.scalars(select(AccessFlow).where(AccessFlow.enabled.is_(True)))
        if requestor_matches(Requestors.model_validate((row.definition or {}).get("requestors")),
                             requester)
    ]  # fmt: skip
    return [f for f in access_flows.flow_views(session, rows) if f.enabled]


def page(
    session: Session,
    flows: list[FlowView],
    filters: Sequence[ColumnElement[bool]],
    offset: int,
    limit: int,
) -> tuple[int, list[tuple[Resource, list[FlowView]]]]:
    ids = requestable_ids(flows, filters)
    if ids is None:
        return 0, []
    # The total rides on the page's own rows (a window over the whole set), so the set is
    # computed once; only an empty page (past the end, or nothing matches) counts apart.
    found = session.execute(
        select(Resource, func.count().over().label("total"))
        .where(Resource.id.in_(ids))
        .order_by(Resource.type, Resource.name, Resource.id)
        .offset(offset)
        .limit(limit)
    ).all()
    if found:
        total = int(found[0].total)
    else:
        total = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    out = []
    for resource in (row[0] for row in found):
        view = access_flows.resource_view(resource)
        matching = [
            f for f in flows
            if f.integration_id == resource.integration_id
            and in_scope(f.definition.scope, view) is None
        ]  # fmt: skip
        out.append((resource, matching))
    return total, out
