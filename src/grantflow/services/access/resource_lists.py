"""The discovered resources, filtered, counted and paged by the database.

Pages are ordered by type, account and name, which the index ``ix_resources_listing`` (type,
account_id, name, aws_id; migration 0015) holds in that order: a page is read from the index
instead of sorting every resource, and a name search is tested against the index's entries.
The search is case-insensitive on both backends: SQLite's ``LIKE`` already ignores ASCII case
(its ``lower()`` knows no more, and calling it per row cost 4x), PostgreSQL uses ``ILIKE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.errors import Invalid
from grantflow.store.db import read_transaction
from grantflow.store.models import Resource


@dataclass(frozen=True, slots=True)
class ResourceFilter:
    integration_id: str | None = None
    type: str | None = None
    account: str | None = None
    ou: str | None = None  # an OU id: resources in it or in an OU below it
    tag: str | None = None  # key, or key=value
    q: str | None = None  # name or AWS id contains


@dataclass(frozen=True, slots=True)
class ResourcePage:
    rows: list[Resource]
    total: int


def _contains(session: Session, column: Any, text: str) -> ColumnElement[bool]:
    pattern = f"%{text}%"
    if session.get_bind().dialect.name == "postgresql":
        return column.ilike(pattern)  # type: ignore[no-any-return]
    return column.like(pattern)  # type: ignore[no-any-return]


def _filtered(session: Session, f: ResourceFilter) -> Select[Resource]:
    query = select(Resource)
    if f.integration_id:
        query = query.where(Resource.integration_id == f.integration_id)
    if f.type:
        query = query.where(Resource.type == f.type)
    if f.account:
        query = query.where(Resource.account_id == f.account)
    if f.ou:
        # ou_path holds OU ids from the root down; a JSON text match finds nested members.
        query = query.where(cast(Resource.ou_path, Text).contains(f'"{f.ou}"'))
    if f.tag:
        key, _, value = f.tag.partition("=")
        if not key:
            raise Invalid("tag filter is key or key=value", field="tag")
        needle = f'"{key}": "{value}"' if value else f'"{key}":'
        query = query.where(cast(Resource.tags, Text).contains(needle))
    if f.q:
        query = query.where(
            or_(_contains(session, Resource.name, f.q), _contains(session, Resource.aws_id, f.q))
        )
    return query


def page(session: Session, f: ResourceFilter, offset: int, limit: int) -> ResourcePage:
    query = _filtered(session, f)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Resource.type, Resource.account_id, Resource.name, Resource.aws_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return ResourcePage(list(rows), total)


def page_of(
    sessions: sessionmaker[Session], f: ResourceFilter, offset: int, limit: int
) -> ResourcePage:
    """``page`` in its own read transaction (the rows come back detached, loaded)."""
    with read_transaction(sessions) as session:
        return page(session, f, offset, limit)
