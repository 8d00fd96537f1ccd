"""SCIM 2.0 use cases (RFC 7644): Users and Groups pushed by an IdP.

Every failure is a ``scim2_models.SCIMException`` (the API turns it into a SCIM Error body).
SCIM sees only what SCIM owns: live users and groups of source ``scim``. Usernames and group
names are unique across sources (case-insensitively): a clash with a user or group of source
``identity_center`` *adopts* that row, so the person keeps their identity store mapping and
history; a clash with anything else is ``409 uniqueness``.

Users follow ``user_lifecycle``: ``active=false`` ends every session, token and grant of the
user; SCIM cannot re-activate a user an admin deactivated (the answer shows the user still
inactive, and ``user.reactivation_refused`` is audited); deleting a user is final (the row is
kept for history with ``deleted_at``, reads as 404, and a later POST with the same userName
makes a new user). Deleting a group deletes it. ``If-Match`` is honoured on PUT, PATCH and
DELETE.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    InvalidFilterException,
    InvalidValueException,
    ListResponse,
    NotFoundException,
    PatchOp,
    PreconditionFailedException,
    Resource,
    SCIMException,
    ScimFilter,
    UniquenessException,
)
from scim2_models.path.expressions import Comparison
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.services.audit import trail as audit
from grantflow.services.directory import people as directory
from grantflow.services.directory import user_lifecycle
from grantflow.services.directory.scim_resources import (
    MAX_RESULTS,
    POLICY,
    ScimGroup,
    ScimUser,
    group_resource,
    store_user,
    user_resource,
)
from grantflow.store.models import Group as GroupRow
from grantflow.store.models import GroupMembership
from grantflow.store.models import User as UserRow

SCIM = directory.SCIM
# A name held by a row of one of these sources is adopted by SCIM (the row becomes SCIM's).
ADOPTABLE = frozenset({directory.IDENTITY_CENTER})
ModelT = TypeVar("ModelT", bound=Any)
ResourceT = TypeVar("ResourceT", ScimUser, ScimGroup)
RowT = TypeVar("RowT", UserRow, GroupRow)


MAX_FILTER_BYTES = 4096  # a filter is parsed, then matched against every resource


@dataclass(frozen=True, slots=True)
class ListQuery:
    filter: str | None = None
    start_index: int = 1
    count: int | None = None

    def __post_init__(self) -> None:
        """Refuse an oversized (or non-text) filter before anything parses it."""
        if self.filter is None:
            return
        if not isinstance(self.filter, str):
            raise InvalidFilterException(detail="filter must be a string")
        if len(self.filter.encode("utf-8", "surrogatepass")) > MAX_FILTER_BYTES:
            raise InvalidFilterException(
                detail=f"the filter is longer than {MAX_FILTER_BYTES} bytes"
            )


def parse(model: type[ModelT], payload: Any, ctx: Context) -> ModelT:
    """Validate a request body; a validation error becomes its SCIM exception."""
    try:
        return model.model_validate(payload, scim_ctx=ctx, scim_policy=POLICY)  # type: ignore[no-any-return]
    except ValidationError as err:
        raise SCIMException.from_error(Error.from_validation_errors(err)[0]) from err


def _check_version(current: Resource[Any], if_match: str | None) -> None:
    if not if_match or if_match.strip() == "*":
        return
    version = current.meta.version if current.meta else None
    if version not in [tag.strip() for tag in if_match.split(",")]:
        raise PreconditionFailedException(detail="the resource changed: If-Match does not match")


def _page(items: list[Any], query: ListQuery) -> tuple[list[Any], int]:
    start = max(query.start_index, 1)
    count = MAX_RESULTS if query.count is None else min(max(query.count, 0), MAX_RESULTS)
    return items[start - 1 : start - 1 + count], start


def _simple_eq(flt: ScimFilter[Any]) -> tuple[str, str] | None:
    node = flt.ast
    if not isinstance(node, Comparison) or node.op.value != "eq":
        return None
    path = node.attr_path
    if path.sub_attr is not None or not isinstance(node.value, str):
        return None
    if path.uri not in (None, "urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:core:2.0:Group"):  # fmt: skip
        return None
    return path.attr.lower(), node.value


def _list(
    query: ListQuery,
    model: type[Any],
    rows: Callable[[tuple[str, str] | None], list[Any]],
    render: Callable[[list[Any]], list[Any]],
) -> ListResponse[Any]:
    flt = ScimFilter[model](query.filter) if query.filter else None  # type: ignore[valid-type]
    simple = _simple_eq(flt) if flt is not None else None
    resources = render(rows(simple))
    if flt is not None:
        resources = [r for r in resources if flt.match(r)]
    page, start = _page(resources, query)
    return ListResponse[model](  # type: ignore[valid-type]
        total_results=len(resources), start_index=start, items_per_page=len(page), resources=page
    )


# --- users --------------------------------------------------------------------------------


def _scim_groups_of(session: Session, user_ids: list[str]) -> dict[str, list[GroupRow]]:
    out: dict[str, list[GroupRow]] = {uid: [] for uid in user_ids}
    rows = session.execute(
        select(GroupMembership.user_id, GroupRow)
        .join(GroupRow, GroupRow.id == GroupMembership.group_id)
        .where(GroupMembership.user_id.in_(user_ids), GroupRow.source == SCIM)
        .order_by(GroupRow.name)
    )
    for user_id, group in rows:
        out[user_id].append(group)
    return out


def _render_users(session: Session, rows: list[UserRow], base: str) -> list[ScimUser]:
    groups = _scim_groups_of(session, [r.id for r in rows])
    return [user_resource(r, groups[r.id], base) for r in rows]


def _user_row(session: Session, user_id: str) -> UserRow:
    row = session.get(UserRow, user_id)
    if row is None or row.source != SCIM or row.deleted_at is not None:
        raise NotFoundException(detail=f"no user {user_id}")
    return row


def get_user(session: Session, user_id: str, base: str) -> ScimUser:
    return _render_users(session, [_user_row(session, user_id)], base)[0]


def list_users(session: Session, query: ListQuery, base: str) -> ListResponse[Any]:
    def rows(simple: tuple[str, str] | None) -> list[UserRow]:
        stmt = user_lifecycle.live_users().where(UserRow.source == SCIM)
        if simple and simple[0] == "username":
            stmt = stmt.where(func.lower(UserRow.username) == simple[1].lower())
        elif simple and simple[0] == "externalid":
            stmt = stmt.where(UserRow.external_id == simple[1])
        return list(session.scalars(stmt.order_by(UserRow.created_at, UserRow.id)))

    return _list(query, ScimUser, rows, lambda found: _render_users(session, found, base))


def _write_user(
    session: Session, row: UserRow, user: ScimUser, actor: audit.Actor, action: str
) -> None:
    was_active = row.active is not False
    before = {k: getattr(row, k) for k in ("username", "email", "display_name", "external_id")}
    store_user(row, user)
    now_active, row.active = row.active, was_active
    row.source = SCIM
    session.flush()
    changed = sorted(k for k, v in before.items() if getattr(row, k) != v)
    audit.record(session, actor, action, "user", row.id, {"source": SCIM, "fields": changed})
    user_lifecycle.set_active(
        session, row, now_active, actor, origin=user_lifecycle.Origin.SCIM, reason="set over SCIM"
    )
    directory.refresh_user_mapping(session, row, actor)


def _delete_user(session: Session, row: UserRow, actor: audit.Actor) -> None:
    for group in _scim_groups_of(session, [row.id])[row.id]:
        members = set(_member_ids(session, group.id)) - {row.id}
        directory.set_group_members(session, group, members, SCIM, actor)
    row.external_id = None
    user_lifecycle.delete_user(
        session, row, actor, origin=user_lifecycle.Origin.SCIM, reason="deleted over SCIM"
    )


# --- groups -------------------------------------------------------------------------------


def _member_ids(session: Session, group_id: str) -> list[str]:
    return list(
        session.scalars(
            select(GroupMembership.user_id)
            .where(GroupMembership.group_id == group_id)
            .order_by(GroupMembership.created_at, GroupMembership.user_id)
        )
    )


def _group_row(session: Session, group_id: str) -> GroupRow:
    row = session.get(GroupRow, group_id)
    if row is None or row.source != SCIM:
        raise NotFoundException(detail=f"no group {group_id}")
    return row


def get_group(session: Session, group_id: str, base: str) -> ScimGroup:
    row = _group_row(session, group_id)
    return group_resource(row, _member_ids(session, row.id), base)


def list_groups(session: Session, query: ListQuery, base: str) -> ListResponse[Any]:
    def rows(simple: tuple[str, str] | None) -> list[GroupRow]:
        stmt = select(GroupRow).where(GroupRow.source == SCIM)
        if simple and simple[0] == "displayname":
            stmt = stmt.where(func.lower(GroupRow.name) == simple[1].lower())
        elif simple and simple[0] == "externalid":
            stmt = stmt.where(GroupRow.external_id == simple[1])
        return list(session.scalars(stmt.order_by(GroupRow.created_at, GroupRow.id)))

    def render(found: list[GroupRow]) -> list[ScimGroup]:
        return [group_resource(r, _member_ids(session, r.id), base) for r in found]

    return _list(query, ScimGroup, rows, render)


def _wanted_members(session: Session, group: ScimGroup) -> set[str]:
    wanted: set[str] = set()
    for member in group.members or []:
        if member.type not in (None, "User"):
            raise InvalidValueException(detail="only users can be group members (no nesting)")
        user = session.get(UserRow, member.value or "")
        if user is None or user.source != SCIM or user.deleted_at is not None:
            raise InvalidValueException(detail=f"member {member.value!r} is not a SCIM user")
        wanted.add(user.id)
    return wanted


def _write_group(
    session: Session, row: GroupRow, group: ScimGroup, actor: audit.Actor, action: str
) -> None:
    members = _wanted_members(session, group)
    row.name = str(group.display_name)
    row.external_id = group.external_id
    row.source = SCIM
    session.flush()
    audit.record(session, actor, action, "group", row.id, {"source": SCIM, "name": row.name})
    directory.set_group_members(session, row, members, SCIM, actor)


def _delete_group(session: Session, row: GroupRow, actor: audit.Actor) -> None:
    audit.record(session, actor, "group.deleted", "group", row.id, {"name": row.name})
    session.delete(row)
    session.flush()


# --- the use cases, the same for both types ---------------------------------------------


@dataclass(frozen=True)
class Kind(Generic[ResourceT, RowT]):
    """One SCIM resource type: what differs between Users and Groups."""

    endpoint: str  # "Users": the URL path
    noun: str  # "user": audit actions, messages, the id's path parameter
    model: type[ResourceT]
    name_attribute: str  # the unique name, as SCIM calls it
    name_of: Callable[[ResourceT], str]
    by_name: Callable[[Session, str], RowT | None]  # the live row holding a name, any source
    new_row: Callable[[ResourceT], RowT]
    row: Callable[[Session, str], RowT]  # NotFound unless the row is SCIM's
    get: Callable[[Session, str, str], ResourceT]
    search: Callable[[Session, ListQuery, str], ListResponse[Any]]
    write: Callable[[Session, RowT, ResourceT, audit.Actor, str], None]
    delete: Callable[[Session, RowT, audit.Actor], None]


def _claim(
    kind: Kind[ResourceT, RowT], session: Session, name: str, self_id: str | None
) -> RowT | None:
    """The row to adopt for ``name``, None for a new one; 409 when it is taken by a live
    row (a deleted user's name is free: its row is never adopted)."""
    existing = kind.by_name(session, name)
    if existing is None or existing.id == self_id:
        return None
    if self_id is None and existing.source in ADOPTABLE:
        return existing
    raise UniquenessException(detail=f"{kind.name_attribute} {name!r} is already taken")


def create(
    kind: Kind[ResourceT, RowT], session: Session, payload: Any, base: str, actor: audit.Actor
) -> ResourceT:
    resource = parse(kind.model, payload, Context.RESOURCE_CREATION_REQUEST)
    row = _claim(kind, session, kind.name_of(resource), None)
    action = f"{kind.noun}.adopted_by_scim" if row is not None else f"{kind.noun}.created"
    if row is None:
        row = kind.new_row(resource)
        session.add(row)
    kind.write(session, row, resource, actor, action)
    return kind.get(session, row.id, base)


def change(
    kind: Kind[ResourceT, RowT],
    session: Session,
    resource_id: str,
    payload: Any,
    base: str,
    actor: audit.Actor,
    if_match: str | None,
    *,
    patch: bool,
) -> ResourceT:
    """Replace (PUT) or patch (PATCH) one resource."""
    current = kind.get(session, resource_id, base)
    _check_version(current, if_match)
    changed: ResourceT | None = current
    if patch:
        model: Any = PatchOp[kind.model]  # type: ignore[name-defined]
        operation = parse(model, payload, Context.RESOURCE_PATCH_REQUEST)
        changed = current if operation.patch(current, scim_policy=POLICY) else None
    else:
        changed = parse(kind.model, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        changed.replace(current)
    if changed is not None:
        _claim(kind, session, kind.name_of(changed), resource_id)
        row = kind.row(session, resource_id)
        kind.write(session, row, changed, actor, f"{kind.noun}.updated")
    return kind.get(session, resource_id, base)


def delete(
    kind: Kind[ResourceT, RowT],
    session: Session,
    resource_id: str,
    base: str,
    actor: audit.Actor,
    if_match: str | None,
) -> None:
    _check_version(kind.get(session, resource_id, base), if_match)
    kind.delete(session, kind.row(session, resource_id), actor)


USERS: Kind[ScimUser, UserRow] = Kind(
    endpoint="Users",
    noun="user",
    model=ScimUser,
    name_attribute="userName",
    name_of=lambda user: str(user.user_name),
    by_name=user_lifecycle.live_user_by_username,
    new_row=lambda user: UserRow(
        username=str(user.user_name), role="member", source=SCIM, active=True
    ),
    row=_user_row,
    get=get_user,
    search=list_users,
    write=_write_user,
    delete=_delete_user,
)
GROUPS: Kind[ScimGroup, GroupRow] = Kind(
    endpoint="Groups",
    noun="group",
    model=ScimGroup,
    name_attribute="displayName",
    name_of=lambda group: str(group.display_name),
    by_name=directory.group_by_name,
    new_row=lambda group: GroupRow(name=str(group.display_name), source=SCIM),
    row=_group_row,
    get=get_group,
    search=list_groups,
    write=_write_group,
    delete=_delete_group,
)
