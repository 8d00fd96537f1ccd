"""Tables of the session audit (CloudTrail events matched to grants, how far ingestion read)
and the audit chains' checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.store.models import Base, new_id
from grantflow.store.types import JsonType, utcnow


class SessionAuditEvent(Base):
    """One CloudTrail event made with a grant's access (append-only, unique by eventID)."""

    __tablename__ = "session_audit_events"
    __table_args__ = (Index("ix_session_audit_events_grant_time", "grant_id", "event_time"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_time: Mapped[datetime]
    event_source: Mapped[str] = mapped_column(String(128))
    event_name: Mapped[str] = mapped_column(String(128))
    error_code: Mapped[str | None] = mapped_column(String(128))
    account_id: Mapped[str] = mapped_column(String(12))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    raw: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    ingested_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The session audit's own hash chain (domain.audit_chain), in the order events were stored
    chain_seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), unique=True
    )
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16))  # None: before the audit key


class AuditCursor(Base):
    """Where CloudTrail ingestion stopped, per integration: the last key read per log prefix."""

    __tablename__ = "audit_cursors"
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    )
    cursor: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    files_read: Mapped[int] = mapped_column(Integer, default=0)
    events_matched: Mapped[int] = mapped_column(Integer, default=0)


class AuditCheckpoint(Base):
    """A signed checkpoint of both audit chains (domain.audit_checkpoint), as sent to the sinks.

    The sinks outside the database are what verification trusts; this row only tells the
    scheduler (in any replica) when the last one was taken and what the sinks answered."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    session_seq: Mapped[int] = mapped_column(BigInteger)
    session_head_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(64))
    sinks: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # name -> outcome
