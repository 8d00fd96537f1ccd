"""list indexes: the resources page's order and the request lists' newest-first order

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

``ix_resources_listing`` (type, account_id, name, aws_id) is the order of
``GET /api/v1/resources``: a page is read from the index instead of sorting every resource
(100,000 of them: ~125 ms of sorting per page on SQLite), and a name or id search tests the
index's entries rather than whole rows. ``ix_access_requests_created_at`` serves the request
lists, newest first.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.create_index(
            "ix_resources_listing", ["type", "account_id", "name", "aws_id"], unique=False
        )
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.create_index("ix_access_requests_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_access_requests_created_at")
    with op.batch_alter_table("resources", schema=None) as batch_op:
        batch_op.drop_index("ix_resources_listing")
