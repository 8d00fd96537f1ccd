"""sync progress: what a running sync has read so far, for the API, the Connected tab and the CLI

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

``sync_runs.resources_seen`` counts the records the connector has sent so far (with
``accounts_done``; ``accounts_total`` is now reported as soon as the organization walk knows
it, not only at the end); ``updated_at`` is when the run last moved.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import grantflow.store.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = grantflow.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resources_seen", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("updated_at", _TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("resources_seen")
