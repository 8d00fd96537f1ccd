"""Alembic environment: the engine is handed in by grantflow.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

# registers the sign-in tables and the notification outbox with the metadata
from grantflow.store import (  # noqa: F401
    models_auth,
    models_index,
    models_notify,
    models_session_cuts,
)
from grantflow.store.models import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    engine = context.config.attributes.get("engine")
    if not isinstance(engine, Engine):
        raise RuntimeError("run migrations through `grantflow db upgrade`")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
