"""job priority: connectors lease revocations first, then grants, upkeep, and dry runs last

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-16

``jobs.priority`` holds ``domain.jobs.JobPriority`` (0 revoke, 1 grant, 2 sync/reconcile and
other upkeep, 3 a user's dry run); the claim index becomes (connector_id, state, priority,
available_at), the order the lease query reads in. Existing jobs get their type's class
(reconcile's plan jobs, keyed ``reconcile:…``, are upkeep).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default=sa.text("2"), nullable=False)
        )
    op.execute(
        "UPDATE jobs SET priority = CASE"
        " WHEN type = 'revoke' THEN 0"
        " WHEN type = 'grant' THEN 1"
        " WHEN type = 'plan' AND (idempotency_key IS NULL"
        "  OR idempotency_key NOT LIKE 'reconcile:%') THEN 3"
        " ELSE 2 END"
    )
    op.drop_index("ix_jobs_claim", table_name="jobs")
    op.create_index(
        "ix_jobs_lease", "jobs", ["connector_id", "state", "priority", "available_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_lease", table_name="jobs")
    op.create_index(
        "ix_jobs_claim", "jobs", ["connector_id", "state", "available_at"], unique=False
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("priority")
