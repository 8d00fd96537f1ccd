"""Query and export the activity log: filters, keyset pages, and streamed CSV / JSON Lines.

Exports read the log in keyset pages of ``CHUNK`` rows by ``seq``, each page in its own short
read transaction (no write lock, nothing written), up to the last ``seq`` that existed when
the export began. Memory stays bounded by one page whatever the table size, and a slow
download never holds a transaction open (on PostgreSQL a long one pins vacuum).
The log is append-only, so the pages together are exactly the rows up to that ``seq``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.csv_cells import safe_cell
from grantflow.store.db import read_transaction
from grantflow.store.models import AccessRequest, AuditEvent, Grant, User

CHUNK = 1000
CSV_COLUMNS = (
    "seq", "id", "occurred_at", "actor_type", "actor_id", "action", "target_type",
    "target_id", "source", "request_id", "data", "prev_hash", "hash", "key_id",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str | None = None  # actor id, or a username
    action: str | None = None  # exact, or a prefix ending in "*" (e.g. "request.*")
    integration: str | None = None  # the target, or data.integration_id
    resource: str | None = None  # the target, data.resource_id, or in data.resource_ids
    request: str | None = None  # the target, or data.request_id
    since: datetime | None = None
    until: datetime | None = None


def _data(key: str) -> ColumnElement[str]:
    value: ColumnElement[str] = AuditEvent.data[key].as_string()
    return value


def _mentions(value: str) -> ColumnElement[bool]:
    """The event's data names ``value`` as a JSON string anywhere (a key's value or in a list)."""
    return cast(AuditEvent.data, Text).contains(f'"{value}"', autoescape=True)


def _about_resource(resource_id: str) -> ColumnElement[bool]:
    grants = select(Grant.id).where(Grant.resource_id == resource_id)
    requests = select(Grant.request_id).where(Grant.resource_id == resource_id)
    return or_(AuditEvent.target_id == resource_id, _mentions(resource_id),
               AuditEvent.target_id.in_(grants), AuditEvent.target_id.in_(requests))  # fmt: skip


def _about_integration(integration_id: str) -> ColumnElement[bool]:
    requests = select(AccessRequest.id).where(AccessRequest.integration_id == integration_id)
    return or_(AuditEvent.target_id == integration_id, _mentions(integration_id),
               AuditEvent.target_id.in_(requests))  # fmt: skip


def conditions(session: Session, f: AuditFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.actor:
        # every user that had the name, deleted ones included: history keeps them
        user_ids = session.scalars(select(User.id).where(User.username == f.actor)).all()
        conds.append(AuditEvent.actor_id.in_({f.actor, *user_ids}))
    if f.action:
        if f.action.endswith("*"):
            conds.append(AuditEvent.action.startswith(f.action[:-1], autoescape=True))
        else:
            conds.append(AuditEvent.action == f.action)
    if f.integration:
        conds.append(_about_integration(f.integration))
    if f.resource:
        conds.append(_about_resource(f.resource))
    if f.request:
        grants = select(Grant.id).where(Grant.request_id == f.request)
        conds.append(or_(AuditEvent.target_id == f.request, _data("request_id") == f.request,
                         AuditEvent.target_id.in_(grants)))  # fmt: skip
    if f.since:
        conds.append(AuditEvent.occurred_at >= f.since)
    if f.until:
        conds.append(AuditEvent.occurred_at < f.until)
    return conds


def to_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq, "id": event.id, "occurred_at": event.occurred_at.isoformat(),
        "actor_type": event.actor_type, "actor_id": event.actor_id, "action": event.action,
        "target_type": event.target_type, "target_id": event.target_id, "source": event.source,
        "request_id": event.request_id, "data": event.data, "prev_hash": event.prev_hash,
        "hash": event.hash, "key_id": event.key_id,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_before: int | None  # pass as ``before`` for the next (older) page


def page(session: Session, f: AuditFilter, limit: int, before: int | None = None) -> Page:
    """Newest first; ``before`` is a ``seq`` (keyset paging, stable while events append)."""
    query = select(AuditEvent).where(*conditions(session, f))
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    rows = session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_dict(r) for r in rows], rows[-1].seq if more and rows else None)


def _chunk(sessions: sessionmaker[Session], f: AuditFilter, after: int, upto: int) -> list[Any]:
    with read_transaction(sessions) as session:
        query: Select[Any] = (
            select(*[getattr(AuditEvent, c) for c in CSV_COLUMNS])
            .where(AuditEvent.seq > after, AuditEvent.seq <= upto, *conditions(session, f))
            .order_by(AuditEvent.seq)
            .limit(CHUNK)
        )
        return list(session.execute(query).all())


def stream_rows(sessions: sessionmaker[Session], f: AuditFilter) -> Iterator[dict[str, Any]]:
    """Every matching event, oldest first, read ``CHUNK`` rows per read transaction."""
    with read_transaction(sessions) as session:
        upto = session.scalar(select(func.max(AuditEvent.seq))) or 0
    after = 0
    while True:
        rows = _chunk(sessions, f, after, upto)
        for row in rows:
            yield dict(zip(CSV_COLUMNS, row, strict=True))
        if len(rows) < CHUNK:
            return
        after = rows[-1][0]


def _iso(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps({k: _iso(v) for k, v in row.items()}, separators=(",", ":")) + "\n"


def csv_lines(rows: Iterator[dict[str, Any]], columns: tuple[str, ...]) -> Iterator[str]:
    """CSV text in pieces of a few hundred rows (``data``-like values as compact JSON)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for n, row in enumerate(rows, start=1):
        writer.writerow([_cell(row.get(c)) for c in columns])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_cell(value)  # never a formula in a spreadsheet (domain/csv_cells.py)
    return _iso(value)
