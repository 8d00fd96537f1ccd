"""Alembic makes the schema, and the schema it makes is exactly the models' schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from grantflow.store.migrate import alembic_config, current_revision, upgrade
from grantflow.store.models import Base


def test_migrations_produce_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
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
