"""The discovered resources, filtered, counted and paged by the database.

Pages are ordered by type, account and name, which the index ``ix_resources_listing`` (type,
account_id, name, aws_id; migration 0015) holds in that order: a page is read from the index
instead of sorting every resource, and a name search is tested against the index's entries.
The search is case-insensitive on both backends: SQLite's ``LIKE`` already ignores ASCII case
(its ``lower()`` knows no more, and calling it per row cost 4x), PostgreSQL uses ``ILIKE``.

A search of three characters or more is served by trigram indexes (migration 0017) instead of
testing every resource: on PostgreSQL the ``ILIKE`` itself uses the ``pg_trgm`` GIN indexes;
on SQLite the FTS5 table ``resources_search`` names the candidates, which the same ``LIKE``
then tests (the tokenizer folds more case than ``LIKE``: its candidates are a superset, the
answer is the same). A search matching many resources (more than ``DENSE``) is paged in the
listing index's order instead: matches are dense there, so the page stops early, where
sorting thousands of candidates would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Text,
    and_,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
)
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


DENSE = 2_000  # a search matching more is paged in index order (see the module's text)
_FTS: WeakKeyDictionary[Engine, bool] = WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class ResourcePage:
    rows: list[Resource]
    total: int


def _contains(session: Session, column: Any, text: str) -> ColumnElement[bool]:
    pattern = f"%{text}%"
    if session.get_bind().dialect.name == "postgresql":
        return column.ilike(pattern)  # type: ignore[no-any-return]
    return column.like(pattern)  # type: ignore[no-any-return]


def _has_search_table(session: Session) -> bool:
    """SQLite: whether ``resources_search`` exists (migration 0017 found FTS5's trigram
    tokenizer), asked once per engine."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine not in _FTS:
        found = session.scalar(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'resources_search'")
        )
        _FTS[engine] = found is not None
    return _FTS[engine]


def _candidates(session: Session, q: str) -> ColumnElement[bool] | None:
    """SQLite: the resources the trigram table finds for ``q`` (a superset of the ``LIKE``
    matches), or None when it cannot answer: no table, fewer than three characters, or
    ``LIKE`` wildcards in ``q`` (``%``, ``_``: the ``LIKE`` treats them as patterns)."""
    if session.get_bind().dialect.name != "sqlite" or len(q) < 3 or "%" in q or "_" in q:
        return None
    if not _has_search_table(session):
        return None
    phrase = '"' + q.replace('"', '""') + '"'
    found = text("SELECT rowid FROM resources_search WHERE resources_search MATCH :phrase")
    return literal_column("resources.rowid").in_(found.bindparams(phrase=phrase))


def _filtered(
    session: Session, f: ResourceFilter, *, indexed_search: bool = True
) -> Select[Resource]:
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
        matches = or_(
            _contains(session, Resource.name, f.q), _contains(session, Resource.aws_id, f.q)
        )
        candidates = _candidates(session, f.q) if indexed_search else None
        query = query.where(matches if candidates is None else and_(candidates, matches))
    return query


def page(session: Session, f: ResourceFilter, offset: int, limit: int) -> ResourcePage:
    query = _filtered(session, f)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if f.q and total > DENSE:
        query = _filtered(session, f, indexed_search=False)
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
