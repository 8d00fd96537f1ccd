"""Append-only evidence in code: sessions refuse to UPDATE or DELETE audit rows.

Installed on every session factory (``store.db.session_factory``). Two paths are closed:

* the unit of work — a flush with a modified or deleted ``AuditEvent`` (or matched CloudTrail
  event) raises :class:`AuditImmutable` before any SQL is sent;
* ORM-enabled ``update()`` / ``delete()`` statements executed through the session.

On PostgreSQL a trigger (migration 0005) refuses the same for anyone who bypasses the ORM.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from grantflow.store.models import AuditEvent
from grantflow.store.models_audit import SessionAuditEvent

PROTECTED: tuple[type[Any], ...] = (AuditEvent, SessionAuditEvent)
_PROTECTED_TABLES = frozenset(cls.__tablename__ for cls in PROTECTED)


class AuditImmutable(RuntimeError):
    """Something tried to change or remove an audit record; they are append-only."""


def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, PROTECTED):
            raise AuditImmutable(f"{type(obj).__name__} rows are append-only: no DELETE")
    for obj in session.dirty:
        if isinstance(obj, PROTECTED) and session.is_modified(obj):
            raise AuditImmutable(f"{type(obj).__name__} rows are append-only: no UPDATE")


def _refuse_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _PROTECTED_TABLES:
        verb = "UPDATE" if state.is_update else "DELETE"
        raise AuditImmutable(f"{table.name} is append-only: no {verb}")  # type: ignore[union-attr]


# The factories already guarded. Not ``event.contains``: SQLAlchemy's event registry is keyed
# by ``id(target)``, and a key of a factory that was garbage-collected can outlive it until its
# listener collection is collected too; a new factory given the same id then looked guarded
# and was not (seen once in a long test run: an ORM UPDATE of an audit row reached the
# database, where only PostgreSQL's trigger stopped it).
_guarded: weakref.WeakSet[sessionmaker[Session]] = weakref.WeakSet()


def install(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Guard every session ``factory`` makes (idempotent)."""
    if factory not in _guarded:
        event.listen(factory, "before_flush", _refuse_changes)
        event.listen(factory, "do_orm_execute", _refuse_bulk)
        _guarded.add(factory)
    return factory


def is_installed(factory: sessionmaker[Session]) -> bool:
    return factory in _guarded
