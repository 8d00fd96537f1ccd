"""access request lifecycle

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Server defaults fill rows that exist already; the ORM always sets these columns.
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_reason", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column(
                "approval",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )

    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.drop_constraint("uq_resources_identity", type_="unique")
        batch_op.create_unique_constraint(
            "uq_resources_identity", ["integration_id", "type", "account_id", "region", "aws_id"]
        )

    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "facts",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tuple_key", sa.String(length=1024), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column(
                "spec",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.alter_column("pre_existing", existing_type=sa.BOOLEAN(), nullable=True)
        batch_op.create_index(batch_op.f("ix_grants_tuple_key"), ["tuple_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.drop_constraint("uq_resources_identity", type_="unique")
        batch_op.create_unique_constraint(
            "uq_resources_identity", ["integration_id", "type", "aws_id"]
        )

    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("facts")

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grants_tuple_key"))
        batch_op.alter_column("pre_existing", existing_type=sa.BOOLEAN(), nullable=False)
        batch_op.drop_column("spec")
        batch_op.drop_column("tuple_key")

    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_column("approval")
        batch_op.drop_column("end_reason")
