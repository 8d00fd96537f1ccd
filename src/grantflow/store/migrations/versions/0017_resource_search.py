"""resource search: trigram indexes for the resources page's name / AWS id search

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04

``GET /api/v1/resources?q=`` matches resources whose name or AWS id contains the text. Without
an index every resource is tested (100,000 of them: ~120 ms per statement on PostgreSQL, the
count and the page each paying it; ~25 ms on SQLite).

- PostgreSQL: GIN ``gin_trgm_ops`` indexes on ``name`` and ``aws_id`` (``ix_resources_search_
  name``, ``ix_resources_search_aws_id``), used by the search's ``ILIKE`` as it is. They need
  the ``pg_trgm`` extension: created here when the role may, and skipped otherwise (the search
  then scans, as before; ``services.access.resource_lists`` needs nothing from them).
- SQLite: ``resources_search``, an FTS5 table with the ``trigram`` tokenizer over the
  resources' ``name`` and ``aws_id`` (external content: ``resources`` keyed by its rowid),
  kept current by triggers on insert, delete and an update of either column. The search asks
  it for candidates and tests them with the same ``LIKE`` as before (same answers). A VACUUM
  may renumber the rowids of ``resources``: rebuild it after one
  (``INSERT INTO resources_search(resources_search) VALUES('rebuild')``).

Neither is in the models' metadata (a backend-specific, optional object); the schema
comparison in ``tests/store/test_migrations.py`` leaves them out by name (``SEARCH_OBJECTS``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_TRIGGERS = (
    """CREATE TRIGGER resources_search_insert AFTER INSERT ON resources BEGIN
        INSERT INTO resources_search(rowid, name, aws_id) VALUES (new.rowid, new.name, new.aws_id);
    END""",
    """CREATE TRIGGER resources_search_delete AFTER DELETE ON resources BEGIN
        INSERT INTO resources_search(resources_search, rowid, name, aws_id)
        VALUES ('delete', old.rowid, old.name, old.aws_id);
    END""",
    """CREATE TRIGGER resources_search_update AFTER UPDATE OF name, aws_id ON resources BEGIN
        INSERT INTO resources_search(resources_search, rowid, name, aws_id)
        VALUES ('delete', old.rowid, old.name, old.aws_id);
        INSERT INTO resources_search(rowid, name, aws_id) VALUES (new.rowid, new.name, new.aws_id);
    END""",
)


def _sqlite_has_trigram(bind: sa.Connection) -> bool:
    try:
        with bind.begin_nested():
            bind.exec_driver_sql(
                "CREATE VIRTUAL TABLE temp.gf_trigram_probe USING fts5(x, tokenize='trigram')"
            )
            bind.exec_driver_sql("DROP TABLE temp.gf_trigram_probe")
        return True
    except sa.exc.DBAPIError:
        return False


def _postgres_has_trigram(bind: sa.Connection) -> bool:
    try:
        with bind.begin_nested():  # a refused CREATE EXTENSION must not end the migration
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        return True
    except sa.exc.DBAPIError:
        return False


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        if _postgres_has_trigram(bind):
            for column in ("name", "aws_id"):
                op.execute(
                    f"CREATE INDEX IF NOT EXISTS ix_resources_search_{column} "
                    f"ON resources USING gin ({column} gin_trgm_ops)"
                )
        return
    if bind.dialect.name != "sqlite" or not _sqlite_has_trigram(bind):
        return
    op.execute(
        "CREATE VIRTUAL TABLE resources_search USING fts5(name, aws_id, content='resources', "
        "content_rowid='rowid', tokenize='trigram')"
    )
    for trigger in SQLITE_TRIGGERS:
        op.execute(trigger)
    op.execute("INSERT INTO resources_search(resources_search) VALUES ('rebuild')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_resources_search_aws_id")
        op.execute("DROP INDEX IF EXISTS ix_resources_search_name")
        return
    if bind.dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS resources_search_{name}")
        op.execute("DROP TABLE IF EXISTS resources_search")
