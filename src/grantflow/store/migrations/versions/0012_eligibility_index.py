"""eligibility index: a resource's OUs, tags and inactive account in indexed tables

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

``resource_ous``, ``resource_tags`` and ``inactive_resources`` hold what access-flow scopes
test (``store.models_index``), so that "what can I request" is a few indexed set operations
instead of JSON text searches over every resource. They are filled here from the resources
already synced (the same rules as ``store.resource_index.index_rows``, copied so that this
migration does not change when the code does) and kept current by the application after.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX = 512
_INACTIVE = {"SUSPENDED", "PENDING_CLOSURE", "CLOSED"}
_BATCH = 2000


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["resource_id"],
        ["resources.id"],
        name=op.f(f"fk_{table}_resource_id_resources"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "resource_ous",
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("ou_id", sa.String(length=_MAX), nullable=False),
        _fk("resource_ous"),
        sa.PrimaryKeyConstraint("resource_id", "ou_id", name=op.f("pk_resource_ous")),
    )
    op.create_index("ix_resource_ous_ou", "resource_ous", ["ou_id", "resource_id"])
    op.create_table(
        "resource_tags",
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=_MAX), nullable=False),
        sa.Column("value", sa.String(length=_MAX), nullable=True),
        _fk("resource_tags"),
        sa.PrimaryKeyConstraint("resource_id", "key", name=op.f("pk_resource_tags")),
    )
    op.create_index("ix_resource_tags_key_value", "resource_tags", ["key", "value", "resource_id"])
    op.create_table(
        "inactive_resources",
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        _fk("inactive_resources"),
        sa.PrimaryKeyConstraint("resource_id", name=op.f("pk_inactive_resources")),
    )
    op.create_index("ix_resources_aws_id", "resources", ["aws_id"])
    _backfill()
    analyze(op.get_bind())


def analyze(conn: sa.Connection) -> None:
    """Table statistics, so that the planner drives each set from the smallest index
    (``store.resource_index.refresh_statistics`` does the same after each sync)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        conn.exec_driver_sql("ANALYZE")
    else:
        conn.exec_driver_sql("ANALYZE resources, resource_ous, resource_tags, inactive_resources")


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _batches(conn: sa.Connection) -> Iterator[list[Any]]:
    after = ""
    query = sa.text(
        "SELECT id, ou_path, tags, attributes FROM resources WHERE id > :after ORDER BY id LIMIT :n"
    )
    while True:
        rows = conn.execute(query, {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        yield list(rows)
        after = rows[-1][0]


def _backfill() -> None:
    conn = op.get_bind()
    ous_t = sa.table("resource_ous", sa.column("resource_id"), sa.column("ou_id"))
    tags_t = sa.table(
        "resource_tags", sa.column("resource_id"), sa.column("key"), sa.column("value")
    )
    inactive_t = sa.table("inactive_resources", sa.column("resource_id"))
    for batch in _batches(conn):
        ous: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        inactive: list[dict[str, Any]] = []
        for rid, ou_path, tag_map, attributes in batch:
            for ou in sorted({str(o) for o in (_json(ou_path) or ()) if len(str(o)) <= _MAX}):
                ous.append({"resource_id": rid, "ou_id": ou})
            for key, value in sorted((str(k), str(v)) for k, v in (_json(tag_map) or {}).items()):
                if len(key) <= _MAX:
                    tags.append(
                        {"resource_id": rid, "key": key,
                         "value": value if len(value) <= _MAX else None}
                    )  # fmt: skip
            if (_json(attributes) or {}).get("account_status") in _INACTIVE:
                inactive.append({"resource_id": rid})
        for table, rows in ((ous_t, ous), (tags_t, tags), (inactive_t, inactive)):
            if rows:
                conn.execute(sa.insert(table), rows)


def downgrade() -> None:
    op.drop_index("ix_resources_aws_id", table_name="resources")
    op.drop_table("inactive_resources")
    op.drop_index("ix_resource_tags_key_value", table_name="resource_tags")
    op.drop_table("resource_tags")
    op.drop_index("ix_resource_ous_ou", table_name="resource_ous")
    op.drop_table("resource_ous")
