"""audit anchor: keyed chains, a chained session audit, checkpoints

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-16

``audit_events.key_id`` names the audit key an event's HMAC was made with (None: an event
from before the key, hashed with plain SHA-256 as before; those still verify by that rule).
``session_audit_events`` gets its own chain (``chain_seq``, ``prev_hash``, ``hash``,
``key_id``); rows stored before this revision are chained here by the unkeyed rule, in the
order they were ingested, so that every row is on the chain and one added outside it shows.
``audit_checkpoints`` records the signed checkpoints the scheduler sends to its sinks.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import grantflow.store.types
from grantflow.domain.audit_chain import GENESIS_HASH, event_hash, session_event_fields

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = grantflow.store.types.UTCDateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 500

_session_events = sa.table(
    "session_audit_events",
    sa.column("id", sa.String()),
    sa.column("grant_id", sa.String()),
    sa.column("event_id", sa.String()),
    sa.column("event_time", _TS),
    sa.column("event_source", sa.String()),
    sa.column("event_name", sa.String()),
    sa.column("error_code", sa.String()),
    sa.column("account_id", sa.String()),
    sa.column("source_ip", sa.String()),
    sa.column("raw", _JSON),
    sa.column("ingested_at", _TS),
    sa.column("chain_seq", _SEQ),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


def _chain_stored_session_events(bind: sa.Connection) -> None:
    """Chain the rows already stored, oldest ingestion first, reading ``_BATCH`` at a time."""
    t = _session_events
    order = (t.c.ingested_at, t.c.event_time, t.c.id)
    ids = list(bind.scalars(sa.select(t.c.id).order_by(*order)))
    update = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("row_id"))
        .values(chain_seq=sa.bindparam("seq"), prev_hash=sa.bindparam("prev"),
                hash=sa.bindparam("digest"))
    )  # fmt: skip
    prev, seq = GENESIS_HASH, 0
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start : start + _BATCH]
        found = {
            r.id: dict(r._mapping) for r in bind.execute(sa.select(t).where(t.c.id.in_(chunk)))
        }
        pending: list[dict[str, Any]] = []
        for row_id in chunk:
            seq += 1
            digest = event_hash(prev, session_event_fields(found[row_id]))
            pending.append({"row_id": row_id, "seq": seq, "prev": prev, "digest": digest})
            prev = digest
        bind.execute(update, pending)


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    with op.batch_alter_table("session_audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", _SEQ, nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    _chain_stored_session_events(op.get_bind())
    with op.batch_alter_table("session_audit_events", schema=None) as batch_op:
        batch_op.alter_column("chain_seq", existing_type=_SEQ, nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_session_audit_events_chain_seq"), ["chain_seq"]
        )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("session_seq", sa.BigInteger(), nullable=False),
        sa.Column("session_head_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("sinks", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_checkpoints_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_checkpoints_at"))
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("session_audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_session_audit_events_chain_seq"), type_="unique")
        batch_op.drop_column("key_id")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("chain_seq")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("key_id")
