"""What a user may request: each flow's scope compiled into an indexed set, kept in memory.

Each flow that lists the user is compiled into one SQL query over the eligibility index — its
integration and types, then its scope as set operations over the index tables
(``store.models_index``: a resource's OUs, its tags) and the resources' own indexed columns
(id, AWS id, account), minus its exclusions. Its answer is kept as a bitset over the listing's
order by ``services.access.eligibility_cache``, by the flow's content and for the current
eligibility generation: a request unions its flows' bitsets, takes out suspended accounts,
applies the filters as masks, counts with a popcount and pages by walking set bits — no
query over every resource. Only the page's rows are read, and matched back to their flows
with the pure rule that decides a request (``domain.flows.in_scope``); the property test
tests/hardening/test_properties_requestable.py checks both give the same answer, through the
cache and across changes of the data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Select, Text, cast, exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.flows import FlowView, Requestors, ScopeMode, in_scope, requestor_matches
from grantflow.services.access import eligibility_cache, flow_views
from grantflow.services.access.eligibility_cache import Criteria
from grantflow.store.db import read_transaction
from grantflow.store.models import AccessFlow, Resource, User
from grantflow.store.models_index import ResourceOu, ResourceTag

log = structlog.get_logger(__name__)


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


def compiled_set(key: _SetKey, values: Sequence[str]) -> Select[Any]:
    """The ids of the resources one flow covers (in any account's status)."""
    query = select(Resource.id).where(
        Resource.integration_id == key.integration_id, Resource.type.in_(key.types)
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


def flow_sets(
    session: Session, listing: eligibility_cache.Listing, flows: Sequence[FlowView]
) -> list[int]:
    """Each flow's set as a bitset over ``listing``'s ranks (suspended accounts still in).
    A set is kept by its content — the flow's ``_SetKey`` and values — so a flow edit needs
    no invalidation: the edited flow is a new set, built on first use."""
    out = []
    for flow in flows:
        key, values = _key_and_values(flow)
        named = (key, tuple(sorted(set(values))))
        out.append(listing.of_query(session, named, partial(compiled_set, key, named[1])))
    return out


def warm_tick(sessions: sessionmaker[Session]) -> int:
    """The scheduler's duty: once the data has settled after a change, build the listing,
    the sets requests asked for lately and the set of every enabled flow (each once: sets are
    kept by content), so that users rarely pay the rebuild. Returns how many sets it built."""
    started = time.perf_counter()
    size = 0
    with read_transaction(sessions) as session:

        def every_flow(listing: eligibility_cache.Listing) -> int:
            nonlocal size
            size = listing.size
            rows = session.scalars(select(AccessFlow).where(AccessFlow.enabled.is_(True)))
            views = [f for f in flow_views.flow_views(session, rows.all()) if f.enabled]
            return len(flow_sets(session, listing, views))

        built = eligibility_cache.warm(session, every_flow)
    if size:
        log.info("eligibility_warmed", resources=size, sets_built=built,
                 seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    return built


_REQUESTORS_KEPT = 10_000
_requestors: dict[str, Requestors] = {}


def _requestors_of(text: str | None) -> Requestors:
    """A flow's requestors, parsed once per JSON text (kept by content: an edited flow is a
    new text)."""
    key = text or "null"
    found = _requestors.get(key)
    if found is None:
        if len(_requestors) >= _REQUESTORS_KEPT:
            _requestors.clear()
        found = Requestors.model_validate(json.loads(key))
        _requestors[key] = found
    return found


def flows_for(session: Session, user: User) -> list[FlowView]:
    """The enabled flows listing ``user`` as a requestor (only those are read whole and
    turned into views): every enabled flow's requestors are read as JSON text and parsed
    once per text, not once per request."""
    requester = flow_views.requester_view(session, user)
    listed = [
        flow_id for flow_id, definition in session.execute(
            select(AccessFlow.id, cast(AccessFlow.definition["requestors"], Text))
            .where(AccessFlow.enabled.is_(True)).order_by(AccessFlow.name)
        )
        if requestor_matches(_requestors_of(definition), requester)
    ]  # fmt: skip
    if not listed:
        return []
    rows = {r.id: r for r in session.scalars(select(AccessFlow).where(AccessFlow.id.in_(listed)))}
    ordered = [rows[i] for i in listed if i in rows]
    return [f for f in flow_views.flow_views(session, ordered) if f.enabled]


def page(
    session: Session,
    flows: list[FlowView],
    criteria: Criteria,
    offset: int,
    limit: int,
) -> tuple[int, list[tuple[Resource, list[FlowView]]]]:
    """One page of what ``flows`` let their user request, in the listing's order (type,
    name, id), and how many there are; each resource with the flows that allow it."""
    if not flows:
        return 0, []
    listing = eligibility_cache.listing(session)
    sets = flow_sets(session, listing, flows)
    union = 0
    for bitset in sets:
        union |= bitset
    chosen = union & ~listing.inactive & listing.mask(session, criteria)
    total = chosen.bit_count()
    ids = listing.page_ids(chosen, offset, limit)
    if not ids:
        return total, []
    rows = {r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(ids)))}
    out = []
    held = [eligibility_cache.as_bytes(bitset) for bitset in sets]
    for resource in (rows[i] for i in ids if i in rows):
        # the flows whose set holds the resource, each confirmed by the pure rule
        at, bit = divmod(listing.rank[resource.id], 8)
        view = flow_views.resource_view(resource)
        matching = [
            f for f, data in zip(flows, held, strict=True)
            if at < len(data) and data[at] >> bit & 1
            and f.integration_id == resource.integration_id
            and in_scope(f.definition.scope, view) is None
        ]  # fmt: skip
        out.append((resource, matching))
    return total, out
