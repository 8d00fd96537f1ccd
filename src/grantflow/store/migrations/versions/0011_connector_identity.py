"""connector identity: the confirmed connector role, and one credential per managed replica

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-16

``connectors.confirmed_role_arn`` (with ``confirmed_by``, ``confirmed_at``) is the role the
CloudFormation template trusts; ``aws_identity_arn`` stays what the connector last reported.
No existing connector is confirmed by this migration: what a connector reported may have come
from a stolen token, so an admin confirms it once (the managed connector with
``GRANTFLOW_CONNECTOR_ROLE_ARN`` is confirmed from that setting at the next start).
``connector_credentials`` holds the hash of each server replica's managed-connector secret.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import grantflow.store.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = grantflow.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("connectors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed_role_arn", sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column("confirmed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("confirmed_at", _TS, nullable=True))
    op.create_table(
        "connector_credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("connector_id", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_used_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["connector_id"],
            ["connectors.id"],
            name=op.f("fk_connector_credentials_connector_id_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connector_credentials")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_connector_credentials_token_hash")),
    )
    with op.batch_alter_table("connector_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connector_credentials_connector_id"), ["connector_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("connector_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_credentials_connector_id"))
    op.drop_table("connector_credentials")
    with op.batch_alter_table("connectors", schema=None) as batch_op:
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("confirmed_by")
        batch_op.drop_column("confirmed_role_arn")
