"""session cuts: the deny statements that end a revoked user's existing AWS sessions

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

One row per ended grant whose sessions are cut (``store.models_session_cuts``): the permission
set, account and Identity Center user name the deny names, the cut time, and the state of the
cut (pending → active → released, or unneeded). The connector's jobs are built from these rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import grantflow.store.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = grantflow.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "session_cuts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("integration_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("grant_id", sa.String(length=36), nullable=False),
        sa.Column("tuple_key", sa.String(length=1024), nullable=False),
        sa.Column("instance_arn", sa.String(length=1224), nullable=False),
        sa.Column("identity_center_region", sa.String(length=32), nullable=True),
        sa.Column("permission_set_arn", sa.String(length=1224), nullable=False),
        sa.Column("permission_set_name", sa.String(length=64), nullable=False),
        sa.Column("managed", sa.Boolean(), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("not_before", _TS, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cut_at", _TS, nullable=True),
        sa.Column("release_after", _TS, nullable=True),
        sa.Column("released_at", _TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["grants.id"],
            name=op.f("fk_session_cuts_grant_id_grants"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"], ["integrations.id"],
            name=op.f("fk_session_cuts_integration_id_integrations"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["access_requests.id"],
            name=op.f("fk_session_cuts_request_id_access_requests"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_cuts")),
        sa.UniqueConstraint("grant_id", name=op.f("uq_session_cuts_grant_id")),
    )  # fmt: skip
    with op.batch_alter_table("session_cuts", schema=None) as batch_op:
        batch_op.create_index("ix_session_cuts_due", ["state", "release_after"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_session_cuts_integration_id"), ["integration_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_cuts_permission_set_arn"), ["permission_set_arn"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_cuts_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_cuts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_cuts_request_id"))
        batch_op.drop_index(batch_op.f("ix_session_cuts_permission_set_arn"))
        batch_op.drop_index(batch_op.f("ix_session_cuts_integration_id"))
        batch_op.drop_index("ix_session_cuts_due")
    op.drop_table("session_cuts")
