"""Alembic makes the schema, and the schema it makes is exactly the models' schema.

These tests run the migrations on an empty database (the other tests get a clone of a
template that was migrated once per session, see tests/fixtures/db.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from grantflow.store.db import build_engine
from grantflow.store.migrate import alembic_config, current_revision, upgrade
from grantflow.store.models import Base


def not_search_object(name: str | None, type_: str, parent_names: object) -> bool:
    """Migration 0017's search objects are optional and backend-specific, not in the models:
    the FTS5 table ``resources_search`` (and its shadow tables) on SQLite, the ``pg_trgm``
    indexes ``ix_resources_search_*`` on PostgreSQL."""
    return not (name or "").startswith(("resources_search", "ix_resources_search_"))


OPTS = {"compare_type": True, "include_name": not_search_object}


@pytest.fixture
def engine(empty_db_url: str) -> Iterator[Engine]:
    """An empty database brought to the head revision by Alembic, here."""
    eng = build_engine(empty_db_url)
    assert current_revision(eng) is None
    upgrade(eng)
    yield eng
    eng.dispose()


def test_migrations_produce_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=OPTS), Base.metadata)
    assert diff == []


def test_every_model_table_exists_after_upgrade(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_database_is_at_head_and_upgrade_is_idempotent(engine: Engine) -> None:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert current_revision(engine) == head
    upgrade(engine)
    assert current_revision(engine) == head


def test_migrations_form_a_single_linear_history(engine: Engine) -> None:
    script = ScriptDirectory.from_config(alembic_config(engine))
    assert len(script.get_heads()) == 1


def test_the_database_a_test_gets_is_a_clone_at_the_head_revision(db_url: str) -> None:
    clone = build_engine(db_url)
    try:
        head = ScriptDirectory.from_config(alembic_config(clone)).get_current_head()
        assert current_revision(clone) == head
        with clone.connect() as conn:
            context = MigrationContext.configure(conn, opts=OPTS)
            assert compare_metadata(context, Base.metadata) == []
    finally:
        clone.dispose()
