"""Engine and session factory. Built from settings by the app factory, never at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from grantflow.store import audit_guard, resource_index  # noqa: F401  (index listener)


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; the message says what to check."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY = "grantflow_read_only"  # execution option of ``read_transaction`` connections


def _sqlite_begin(conn: Any) -> None:
    """Take SQLite's write lock up front, so read-then-write units (claiming a job,
    appending to the audit chain) serialize instead of failing with "database is locked".
    A ``read_transaction`` begins deferred instead: in WAL mode it never waits for the
    writer and never holds it up."""
    read_only = conn.get_execution_options().get(READ_ONLY)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def build_engine(database_url: str, pool_size: int = 5) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, pool_pre_ping=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )
    event.listen(engine, "handle_error", _failed_ping_is_a_disconnect)
    return engine


def _failed_ping_is_a_disconnect(context: ExceptionContext) -> None:
    """A pooled connection whose socket dies during the pre-ping can make psycopg raise
    ProgrammingError ("can't change 'autocommit' now") instead of OperationalError; whatever
    the ping raised, the connection is unusable: discard it and let the pool open a new one
    (which answers, or fails with OperationalError and becomes a 503)."""
    if context.is_pre_ping:
        context.is_disconnect = True


def describe_target(engine: Engine) -> str:
    """The database, named without its password."""
    return engine.url.render_as_string(hide_password=True)


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})  # a ping never waits for the writer
            conn.execute(text("SELECT 1"))
    except OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        raise DatabaseUnavailable(
            f"cannot reach database {describe_target(engine)}: {reason}. "
            "Check GRANTFLOW_DATABASE_URL and that the server is running."
        ) from err


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that refuse to update or delete audit rows (see ``audit_guard``)."""
    return audit_guard.install(sessionmaker(bind=engine, expire_on_commit=False))


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of reading: no write lock on SQLite (a deferred BEGIN), READ ONLY on
    PostgreSQL (a write fails), and rolled back at the end, so nothing in it is kept."""
    with factory() as session:
        options: dict[str, Any] = {READ_ONLY: True}
        if session.get_bind().dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        session.connection(execution_options=options)
        yield session
