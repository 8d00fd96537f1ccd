"""Keeps the eligibility index (``store.models_index``) current with ``resources``.

Every ORM flush is watched (a listener on all sessions, installed when this module is
imported — ``store.db`` imports it): a resource inserted, or updated in its ``ou_path``,
``tags`` or ``attributes``, has its index rows rewritten in the same transaction; a deleted
resource loses them through ``ON DELETE CASCADE``. Writers that bypass the unit of work (bulk
inserts, raw SQL) call :func:`reindex` for the resources they wrote.

The same flush replaces the eligibility generation's token (:func:`bump`) whenever what
"what can I request" reads changes: a resource inserted or deleted (or its integration
deleted: the rows go by cascade), or updated in a column the answer depends on. The in-process
cache of ``services.access.eligibility_cache`` is labelled with that token, so it is rebuilt
after the change commits, on every replica; a rolled-back change leaves the old token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, delete, event, insert, inspect, select, update
from sqlalchemy.orm import Session

from grantflow.domain.flows import INACTIVE_ACCOUNT_STATES
from grantflow.store.models import Integration, Resource
from grantflow.store.models_index import (
    MAX_INDEXED,
    EligibilityGeneration,
    InactiveResource,
    ResourceOu,
    ResourceTag,
    new_token,
)

_WATCHED = ("ou_path", "tags", "attributes")
# What the requestable listing reads of a resource besides the index: its order (type, name),
# its search (name, AWS id), its filters (account, integration) and the id scopes (AWS id).
_LISTED = ("integration_id", "type", "name", "aws_id", "account_id", "ou_path", "tags")
_CHUNK = 500


def index_rows(
    resource_id: str, ou_path: Any, tags: Any, attributes: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """The index rows of one resource: its OUs, its tags, and whether it is inactive — read
    the way ``flow_views.resource_view`` reads them for ``domain.flows.in_scope``."""
    ous = sorted({str(ou) for ou in (ou_path or ()) if len(str(ou)) <= MAX_INDEXED})
    tag_rows = []
    for key, value in sorted((str(k), str(v)) for k, v in dict(tags or {}).items()):
        if len(key) <= MAX_INDEXED:
            kept = value if len(value) <= MAX_INDEXED else None
            tag_rows.append({"resource_id": resource_id, "key": key, "value": kept})
    status = dict(attributes or {}).get("account_status")
    return (
        [{"resource_id": resource_id, "ou_id": ou} for ou in ous],
        tag_rows,
        status in INACTIVE_ACCOUNT_STATES,
    )


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def write(conn: Connection, resources: Iterable[tuple[str, Any, Any, Any]], fresh: bool) -> None:
    """Write the index rows of ``(id, ou_path, tags, attributes)`` tuples; unless ``fresh``
    (resources just inserted), their old rows are removed first."""
    ous: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    inactive: list[dict[str, Any]] = []
    ids: list[str] = []
    for resource_id, ou_path, tag_map, attributes in resources:
        ids.append(resource_id)
        ou_rows, tag_rows, is_inactive = index_rows(resource_id, ou_path, tag_map, attributes)
        ous += ou_rows
        tags += tag_rows
        if is_inactive:
            inactive.append({"resource_id": resource_id})
    if not ids:
        return
    if not fresh:
        for chunk in _chunks(ids):
            for table in (ResourceOu, ResourceTag, InactiveResource):
                conn.execute(delete(table).where(table.resource_id.in_(chunk)))
    for table, rows in ((ResourceOu, ous), (ResourceTag, tags), (InactiveResource, inactive)):
        if rows:
            conn.execute(insert(table), rows)


def bump(conn: Connection) -> str:
    """Replace the eligibility generation's token (in the caller's transaction); returns it."""
    token = new_token()
    done = conn.execute(
        update(EligibilityGeneration).where(EligibilityGeneration.id == 1).values(token=token)
    )
    if done.rowcount == 0:  # a database whose row was removed by hand
        conn.execute(insert(EligibilityGeneration).values(id=1, token=token))
    return token


def generation(conn: Connection) -> str | None:
    """The current token (None if the row is missing: then nothing may be cached)."""
    return conn.scalar(select(EligibilityGeneration.token).where(EligibilityGeneration.id == 1))


def reindex(session: Session, resource_ids: Sequence[str] | None = None) -> int:
    """Rebuild the index of ``resource_ids`` (all resources when None) from ``resources``;
    returns how many were indexed. For writers that bypass the unit of work."""
    session.flush()
    conn = session.connection()
    bump(conn)
    query = select(Resource.id, Resource.ou_path, Resource.tags, Resource.attributes)
    if resource_ids is None:
        for table in (ResourceOu, ResourceTag, InactiveResource):
            conn.execute(delete(table))
        rows = conn.execute(query.order_by(Resource.id)).all()
        write(conn, ((r[0], r[1], r[2], r[3]) for r in rows), fresh=True)
        refresh_statistics(session)  # a whole rebuild changes what the planner should know
        return len(rows)
    done = 0
    for chunk in _chunks(list(resource_ids)):
        rows = conn.execute(query.where(Resource.id.in_(chunk))).all()
        write(conn, ((r[0], r[1], r[2], r[3]) for r in rows), fresh=False)
        done += len(rows)
    return done


def refresh_statistics(session: Session) -> None:
    """Refresh the planner's statistics of ``resources`` and the index (after a sync): the
    sets of ``services.requestable`` are driven from the smallest index only when the
    planner knows how many rows each holds. SQLite samples (``analysis_limit``: a few
    milliseconds); PostgreSQL's ANALYZE samples too (autovacuum would, later)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
    else:
        conn.exec_driver_sql("ANALYZE resources, resource_ous, resource_tags, inactive_resources")


def _changed(resource: Resource, names: Sequence[str] = _WATCHED) -> bool:
    state = inspect(resource)
    return any(state.attrs[name].history.has_changes() for name in names)


def _status_changed(resource: Resource) -> bool:
    history = inspect(resource).attrs["attributes"].history
    if not history.has_changes():
        return False
    before = [dict(v or {}).get("account_status") for v in history.deleted or [None]]
    after = [dict(v or {}).get("account_status") for v in history.added or [None]]
    return before != after


def _listing_changed(resource: Resource) -> bool:
    return _changed(resource, _LISTED) or _status_changed(resource)


def _after_flush(session: Session, _context: Any) -> None:
    new = [o for o in session.new if isinstance(o, Resource)]
    dirty = [
        o
        for o in session.dirty
        if isinstance(o, Resource) and o not in session.deleted and _changed(o)
    ]
    gone = any(isinstance(o, Resource | Integration) for o in session.deleted)
    listed = any(
        isinstance(o, Resource) and o not in session.deleted and _listing_changed(o)
        for o in session.dirty
    )
    if new or gone or listed:
        bump(session.connection())
    if not (new or dirty):
        return
    conn = session.connection()
    write(conn, ((r.id, r.ou_path, r.tags, r.attributes) for r in new), fresh=True)
    write(conn, ((r.id, r.ou_path, r.tags, r.attributes) for r in dirty), fresh=False)


if not event.contains(Session, "after_flush", _after_flush):
    event.listen(Session, "after_flush", _after_flush)
