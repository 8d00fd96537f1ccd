"""What a user may request, computed in SQL: each flow that lists the user becomes one
condition over the resources table (its integration, types and scope, minus exclusions), the
conditions are OR-ed, and the database counts and pages the result. Only the page's rows are
matched back to their flows in Python, with the same pure rule (``domain.flows.in_scope``)
that decides a request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, false, func, not_, or_, select
from sqlalchemy.orm import Session

from grantflow.domain.flows import (
    INACTIVE_ACCOUNT_STATES,
    FlowView,
    ScopeMode,
    in_scope,
    requestor_matches,
)
from grantflow.services import access_flows
from grantflow.store.models import Resource, User


def _json_text(column: Any) -> Any:
    return cast(column, String)


def _tag_needle(key: str, value: str | None) -> str:
    encoded_key = json.dumps(key)
    return f"{encoded_key}: {json.dumps(value)}" if value is not None else f"{encoded_key}:"


def _any_ou(ous: Sequence[str]) -> ColumnElement[bool]:
    text = _json_text(Resource.ou_path)
    return or_(*(text.contains(json.dumps(ou)) for ou in ous)) if ous else false()


def flow_condition(flow: FlowView) -> ColumnElement[bool]:
    scope = flow.definition.scope
    parts: list[ColumnElement[bool]] = [
        Resource.integration_id == flow.integration_id,
        Resource.type.in_(scope.resource_types),
    ]
    if scope.mode is ScopeMode.IDS:
        parts.append(or_(Resource.id.in_(scope.resource_ids),
                         Resource.aws_id.in_(scope.resource_ids)))  # fmt: skip
    elif scope.mode is ScopeMode.TAG and scope.tag is not None:
        parts.append(
            _json_text(Resource.tags).contains(_tag_needle(scope.tag.key, scope.tag.value))
        )
    elif scope.mode is ScopeMode.ACCOUNTS:
        parts.append(Resource.account_id.in_(scope.account_ids))
    elif scope.mode is ScopeMode.OUS:
        parts.append(_any_ou(scope.ou_ids))
    if scope.exclude_resource_ids:
        parts.append(not_(or_(Resource.id.in_(scope.exclude_resource_ids),
                              Resource.aws_id.in_(scope.exclude_resource_ids))))  # fmt: skip
    if scope.exclude_account_ids:
        parts.append(or_(Resource.account_id.is_(None),
                         Resource.account_id.not_in(scope.exclude_account_ids)))  # fmt: skip
    if scope.exclude_ou_ids:
        parts.append(not_(_any_ou(scope.exclude_ou_ids)))
    return and_(*parts)


def active_account() -> ColumnElement[bool]:
    """Nothing in a suspended or closed account is requestable (``domain.flows.in_scope``)."""
    status = Resource.attributes["account_status"].as_string()
    return or_(status.is_(None), status.not_in(sorted(INACTIVE_ACCOUNT_STATES)))


def _plain_tag_flow(flow: FlowView) -> bool:
    scope = flow.definition.scope
    return (
        scope.mode is ScopeMode.TAG
        and scope.tag is not None
        and scope.tag.value is not None
        and not (scope.exclude_resource_ids or scope.exclude_account_ids or scope.exclude_ou_ids)
    )


def conditions(flows: list[FlowView]) -> list[ColumnElement[bool]]:
    """One condition per flow — except that flows scoped by the same tag key (the common
    "owner=<team>" case) share one: the tag's value is extracted once per row and compared
    with all their values, instead of one text search per flow."""
    grouped: dict[tuple[str, tuple[str, ...], str], set[str]] = {}
    out: list[ColumnElement[bool]] = []
    for flow in flows:
        scope = flow.definition.scope
        if _plain_tag_flow(flow) and scope.tag is not None and scope.tag.value is not None:
            key = (flow.integration_id, tuple(sorted(scope.resource_types)), scope.tag.key)
            grouped.setdefault(key, set()).add(scope.tag.value)
        else:
            out.append(flow_condition(flow))
    for (integration_id, types, tag_key), values in grouped.items():
        out.append(
            and_(
                Resource.integration_id == integration_id,
                Resource.type.in_(types),
                Resource.tags[tag_key].as_string().in_(sorted(values)),
            )
        )
    return out


def flows_for(session: Session, user: User) -> list[FlowView]:
    requester = access_flows.requester_view(session, user)
    return [
        f for f in access_flows.flow_views(session)
        if f.enabled and requestor_matches(f.definition.requestors, requester)
    ]  # fmt: skip


def page(
    session: Session,
    flows: list[FlowView],
    filters: Sequence[ColumnElement[bool]],
    offset: int,
    limit: int,
) -> tuple[int, list[tuple[Resource, list[FlowView]]]]:
    if not flows:
        return 0, []
    query = select(Resource).where(or_(*conditions(flows)), active_account(), *filters)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Resource.type, Resource.name, Resource.id).offset(offset).limit(limit)
    ).all()
    out = []
    for resource in rows:
        view = access_flows.resource_view(resource)
        matching = [
            f for f in flows
            if f.integration_id == resource.integration_id
            and in_scope(f.definition.scope, view) is None
        ]  # fmt: skip
        out.append((resource, matching))
    return total, out
