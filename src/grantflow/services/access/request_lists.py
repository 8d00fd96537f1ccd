"""The access-request lists: mine, to approve, all — counted and paged by the database.

"To approve" is decided in SQL from each request's approval snapshot (``approval.sets[*]
.principals``, written when it was submitted): a pending request names the viewer or one of
their groups, and its requester is neither the viewer nor another account of the same person
(``principals.same_person``, the one-person-one-vote rule). That is exactly
``access_requests.can_approve`` over every pending request, without reading them one by one.
Each list costs a fixed number of statements, whatever its length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    cast,
    exists,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONPATH, array
from sqlalchemy.orm import Session

from grantflow.domain.request_states import RequestState, names_any
from grantflow.services.access.access_requests import snapshot_sets
from grantflow.services.identity import principals
from grantflow.store.id_lists import any_of
from grantflow.store.models import AccessRequest, GroupMembership, User

PENDING = RequestState.PENDING.value
NEWEST_FIRST = (AccessRequest.created_at.desc(), AccessRequest.id.desc())
# What a list page shows of a request, read as plain rows (no ORM objects: loading ~100 of
# them with their grants, approvals and names was most of a page's cost).
REQUEST_FIELDS = (
    "id", "requester_id", "integration_id", "flow_id", "resource_type", "permission",
    "justification", "duration_seconds", "state", "end_reason", "failure_reason",
    "extensions", "created_at", "approved_at", "granted_at", "expires_at", "ended_at",
)  # fmt: skip
SHOWN = tuple(getattr(AccessRequest, name) for name in (*REQUEST_FIELDS, "approval"))


@dataclass(frozen=True, slots=True)
class RequestList:
    rows: list[Any]  # rows of ``SHOWN`` (attributes named like AccessRequest's)
    total: int  # every matching request, not only this page


@dataclass(frozen=True, slots=True)
class Approver:
    """What decides which requests a user may approve: the principals that name them
    (``user:<id>``, ``group:<id>``) and the keys that make them one person."""

    user_id: str
    active: bool
    refs: frozenset[str]
    keys: frozenset[str]


def _refs(session: Session, user: User) -> frozenset[str]:
    groups = session.scalars(
        select(GroupMembership.group_id).where(GroupMembership.user_id == user.id)
    )
    return frozenset({f"user:{user.id}", *(f"group:{g}" for g in groups)})


def _approver(session: Session, user: User, refs: frozenset[str]) -> Approver:
    keys = principals.person_keys_of(session, [user.id]).get(user.id, frozenset())
    return Approver(user.id, user.active, refs, keys)


def approver(session: Session, user: User) -> Approver:
    return _approver(session, user, _refs(session, user))


def _names_any(session: Session, refs: Iterable[str]) -> ColumnElement[bool]:
    """The request's approval snapshot names one of ``refs`` in one of its sets."""
    wanted = sorted(refs)
    if session.get_bind().dialect.name == "postgresql":
        path = cast("$.sets[*].principals[*]", JSONPATH)
        named = func.jsonb_path_query_array(AccessRequest.approval, path)
        return named.op("?|")(cast(array(wanted), ARRAY(Text)))
    sets = func.json_each(AccessRequest.approval, "$.sets").table_valued("value").alias("s")
    named_in = func.json_each(sets.c.value, "$.principals").table_valued("value").alias("p")
    joined = select(literal(1)).select_from(sets).join(named_in, true())
    return exists(joined.where(named_in.c.value.in_(wanted)))


def _same_person(session: Session, me: Approver, requester_ids: Iterable[str]) -> set[str]:
    """The requesters among ``requester_ids`` that are the viewer (or one person with them)."""
    keys = principals.person_keys_of(session, requester_ids)
    return {uid for uid, theirs in keys.items() if uid == me.user_id or theirs & me.keys}


def _approvable(session: Session, me: Approver, among: Sequence[str] | None = None) -> list[str]:
    """The ids of the pending requests ``me`` may decide, newest first: one pass over the
    pending requests' snapshots, then the requesters that are ``me`` (another account of the
    same person) left out."""
    if not me.active:
        return []
    query = select(AccessRequest.id, AccessRequest.requester_id).where(
        AccessRequest.state == PENDING,
        AccessRequest.requester_id != me.user_id,
        _names_any(session, me.refs),
    )
    if among is not None:
        query = query.where(any_of(session, AccessRequest.id, among))
    found = session.execute(query.order_by(*NEWEST_FIRST)).all()
    theirs = _same_person(session, me, {requester for _, requester in found})
    return [request_id for request_id, requester in found if requester not in theirs]


def _paged(session: Session, query: Select[Any], offset: int, limit: int) -> RequestList:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.order_by(*NEWEST_FIRST).offset(offset).limit(limit)).all()
    return RequestList(list(rows), total or 0)


def _in_state(query: Select[Any], state: str | None) -> Select[Any]:
    return query.where(AccessRequest.state == state) if state else query


def mine(session: Session, user: User, state: str | None, offset: int, limit: int) -> RequestList:
    query = select(*SHOWN).where(AccessRequest.requester_id == user.id)
    return _paged(session, _in_state(query, state), offset, limit)


def to_approve(
    session: Session, user: User, state: str | None, offset: int, limit: int
) -> RequestList:
    """Pending requests ``user`` may decide (``access_requests.can_approve``), newest first.
    Another ``state`` than pending matches nothing: only pending requests are decided."""
    if state and state != PENDING:
        return RequestList([], 0)
    ids = _approvable(session, approver(session, user))
    page = ids[offset : offset + limit]
    rows = {
        r.id: r
        for r in session.execute(select(*SHOWN).where(any_of(session, AccessRequest.id, page)))
    }
    return RequestList([rows[i] for i in page if i in rows], len(ids))


def everything(session: Session, state: str | None, offset: int, limit: int) -> RequestList:
    """Every request (admins)."""
    return _paged(session, _in_state(select(*SHOWN), state), offset, limit)


def approvable_among(session: Session, user: User, rows: Sequence[Any]) -> set[str]:
    """Which of ``rows`` ``user`` may approve now (``can_approve`` for a page of rows): the
    rows are loaded already, so their snapshots are tested here (the test ``_approvable``
    makes in SQL) instead of a statement scanning the pending requests again."""
    pending = [r for r in rows if r.state == PENDING]
    if not pending or not user.active:
        return set()
    refs = _refs(session, user)
    named = [
        r
        for r in pending
        if r.requester_id != user.id and names_any(refs, snapshot_sets(r.approval)[1])
    ]
    if not named:  # nobody to tell apart from the viewer: their person keys are not read
        return set()
    me = _approver(session, user, refs)
    theirs = _same_person(session, me, {r.requester_id for r in named})
    return {r.id for r in named if r.requester_id not in theirs}
