"""Helpers for the audit tests: a chain of real events, and raw-SQL tampering on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.store.db import transaction

ACTOR = audit.Actor(type="user", id="u-1", source="api")


def record_events(sessions: sessionmaker[Session], n: int) -> None:
    with transaction(sessions) as session:
        for i in range(1, n + 1):
            audit.record(session, ACTOR, f"test.event{i}", "thing", f"t-{i}", {"i": i})


@contextmanager
def tampering(engine: Engine) -> Iterator[Connection]:
    """A raw connection that bypasses the ORM guard; on PostgreSQL the table owner (a
    privileged attacker) first disables the append-only trigger, then restores it."""
    with engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        if pg:
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        yield conn
        if pg:
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
