"""audit append-only trigger, session audit events, audit cursors

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import grantflow.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_TIME = grantflow.store.types.UTCDateTime(timezone=True)

# PostgreSQL refuses UPDATE, DELETE and TRUNCATE of audit rows for every role; only a table
# owner who first disables the trigger (a privileged, visible act) can tamper, and the hash
# chain then shows where.
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION grantflow_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION grantflow_audit_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION grantflow_audit_append_only()",
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "session_audit_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("grant_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_time", _TIME, nullable=False),
        sa.Column("event_source", sa.String(length=128), nullable=False),
        sa.Column("event_name", sa.String(length=128), nullable=False),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("raw", _JSON, nullable=False),
        sa.Column("ingested_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["grants.id"],
            name=op.f("fk_session_audit_events_grant_id_grants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_audit_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_session_audit_events_event_id")),
    )
    with op.batch_alter_table("session_audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_audit_events_grant_time", ["grant_id", "event_time"], unique=False
        )
    op.create_table(
        "audit_cursors",
        sa.Column("integration_id", sa.String(length=36), nullable=False),
        sa.Column("cursor", _JSON, nullable=False),
        sa.Column("last_run_at", _TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("files_read", sa.Integer(), nullable=False),
        sa.Column("events_matched", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_audit_cursors_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_audit_cursors")),
    )
    if _postgresql():
        op.execute(_PG_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS grantflow_audit_append_only()")
    op.drop_table("audit_cursors")
    with op.batch_alter_table("session_audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_session_audit_events_grant_time")
    op.drop_table("session_audit_events")
