"""eligibility generation: one row whose token changes with every write to the eligibility data

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04

``eligibility_generation`` (``store.models_index.EligibilityGeneration``) holds a random token
that ``store.resource_index`` replaces in the same transaction as every change to resources,
their tags, OUs or account status. "What can I request" keeps its answers in memory per token
(``services.access.eligibility_cache``) and reads the token first on each request, so a cache
built from older data is never served, on any replica.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "eligibility_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eligibility_generation")),
    )
    op.bulk_insert(table, [{"id": 1, "token": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("eligibility_generation")
