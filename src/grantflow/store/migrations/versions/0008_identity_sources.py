"""identity sources: principals per identity store, groups per directory, external identities
bound by (issuer, subject), final deletes, admin deactivation, device-code CLI sign-in

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

``users.identity_store_user_id`` becomes ``directory_principals`` rows. Which identity store a
mapping belonged to was never recorded: when the database knows exactly one identity store
(one organization connected), the mappings move to it; otherwise the next sync of each
integration rebuilds them.
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import grantflow.store.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = grantflow.store.types.UTCDateTime(timezone=True)


def _known_store(bind: sa.Connection) -> str | None:
    stores = set()
    for (facts,) in bind.execute(sa.text("SELECT facts FROM integrations")):
        data: Any = json.loads(facts) if isinstance(facts, str) else facts
        store = (data or {}).get("identity_store_id")
        if store:
            stores.add(str(store))
    return stores.pop() if len(stores) == 1 else None


def upgrade() -> None:
    op.create_table(
        "directory_principals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("identity_store_id", sa.String(length=64), nullable=False),
        sa.Column("principal_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("matched_by", sa.String(length=16), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_directory_principals_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_principals")),
        sa.UniqueConstraint(
            "identity_store_id", "principal_id", name="uq_directory_principals_principal"
        ),
        sa.UniqueConstraint("identity_store_id", "user_id", name="uq_directory_principals_user"),
    )
    with op.batch_alter_table("directory_principals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_principals_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "user_identities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("linked_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_sign_in_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_identities_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_identities")),
        sa.UniqueConstraint("issuer", "subject", name="uq_user_identities_issuer_subject"),
        sa.UniqueConstraint("user_id", "issuer", name="uq_user_identities_user_issuer"),
    )
    with op.batch_alter_table("user_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_identities_user_id"), ["user_id"], unique=False)

    op.create_table(
        "device_authorizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("device_code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_code_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("last_polled_at", _TS, nullable=True),
        sa.Column("token_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_device_authorizations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_authorizations")),
        sa.UniqueConstraint(
            "device_code_hash", name=op.f("uq_device_authorizations_device_code_hash")
        ),
        sa.UniqueConstraint("user_code_hash", name=op.f("uq_device_authorizations_user_code_hash")),
    )
    with op.batch_alter_table("device_authorizations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_authorizations_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("directory", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("disabled_by_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("deleted_at", _TS, nullable=True))

    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("directory", sa.String(length=64), server_default="", nullable=False)
        )

    bind = op.get_bind()
    store = _known_store(bind)
    if store is not None:
        now = grantflow.store.types.utcnow()
        principals = sa.table(
            "directory_principals",
            *(
                sa.column(name)
                for name in (
                    "id", "identity_store_id", "principal_id", "user_id", "user_name", "email",
                    "display_name", "active", "matched_by", "created_at", "updated_at",
                )
            ),
        )  # fmt: skip
        rows = bind.execute(
            sa.text(
                "SELECT id, username, email, display_name, active, source, "
                "identity_store_user_id FROM users WHERE identity_store_user_id IS NOT NULL"
            )
        ).all()
        seen: set[str] = set()
        for row in rows:
            if row.identity_store_user_id in seen:
                continue
            seen.add(row.identity_store_user_id)
            bind.execute(
                principals.insert().values(
                    id=row.id, identity_store_id=store, principal_id=row.identity_store_user_id,
                    user_id=row.id, user_name=row.username, email=row.email,
                    display_name=row.display_name, active=bool(row.active),
                    matched_by="owner" if row.source == "identity_center" else "username",
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        bind.execute(
            sa.text("UPDATE users SET directory = :s WHERE source = 'identity_center'"),
            {"s": store},
        )
        bind.execute(
            sa.text("UPDATE groups SET directory = :s WHERE source = 'identity_center'"),
            {"s": store},
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_identity_store_user_id"))
        batch_op.drop_column("identity_store_user_id")
        batch_op.drop_constraint(batch_op.f("uq_users_username"), type_="unique")
        batch_op.create_index(
            "uq_users_username_live",
            ["username"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_groups_name"), type_="unique")
        batch_op.create_unique_constraint("uq_groups_directory_name", ["directory", "name"])


def downgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_constraint("uq_groups_directory_name", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_groups_name"), ["name"])
        batch_op.drop_column("directory")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("uq_users_username_live")
        batch_op.create_unique_constraint(batch_op.f("uq_users_username"), ["username"])
        batch_op.add_column(
            sa.Column("identity_store_user_id", sa.String(length=64), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_users_identity_store_user_id"), ["identity_store_user_id"], unique=False
        )
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("disabled_by_admin")
        batch_op.drop_column("directory")

    op.drop_table("device_authorizations")
    op.drop_table("user_identities")
    op.drop_table("directory_principals")
