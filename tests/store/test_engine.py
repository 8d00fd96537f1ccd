"""The engine's handling of connections that die in the pool."""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import event

from grantflow.store import db


def test_any_error_during_the_pre_ping_discards_the_connection() -> None:
    # psycopg can raise ProgrammingError ("can't change 'autocommit' now") when the socket
    # closes during SQLAlchemy's ping; it must count as a disconnect, not reach the caller.
    engine = db.build_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        assert event.contains(engine, "handle_error", db._failed_ping_is_a_disconnect)
        during_ping = SimpleNamespace(is_pre_ping=True, is_disconnect=False)
        db._failed_ping_is_a_disconnect(during_ping)  # type: ignore[arg-type]
        assert during_ping.is_disconnect is True
        in_a_query = SimpleNamespace(is_pre_ping=False, is_disconnect=False)
        db._failed_ping_is_a_disconnect(in_a_query)  # type: ignore[arg-type]
        assert in_a_query.is_disconnect is False  # other errors keep SQLAlchemy's verdict
    finally:
        engine.dispose()
