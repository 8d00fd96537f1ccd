"""Tables for web sign-in: sessions, pending OIDC sign-ins, failed password attempts.

They share ``Base`` (and so the metadata Alembic compares) with ``grantflow.store.models``.
Every secret is stored as a SHA-256 digest, never as the value a browser holds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.store.models import Base, new_id
from grantflow.store.types import utcnow


class WebSession(Base):
    """One signed-in browser. The cookie holds a random secret; the row holds its hash."""

    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_method: Mapped[str] = mapped_column(String(16))  # password | oidc
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]


class OidcLogin(Base):
    """An OIDC sign-in between the redirect to the issuer and its callback (one use)."""

    __tablename__ = "oidc_logins"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    binding_hash: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    next_path: Mapped[str] = mapped_column(String(2048), default="/")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginAttempt(Base):
    """A password sign-in in flight or failed; counted per username and per client IP."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_user_time", "username_hash", "occurred_at"),
        Index("ix_login_attempts_ip_time", "client_ip", "occurred_at"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username_hash: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DeviceAuthorization(Base):
    """A CLI sign-in by the OAuth 2.0 device authorization grant (RFC 8628).

    The CLI holds the device code and polls with it; the person types the short user code
    into a fixed page. Both are stored as digests; the API token is minted at the poll that
    follows approval and handed out once."""

    __tablename__ = "device_authorizations"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # approved|denied|used
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    interval_seconds: Mapped[int] = mapped_column(Integer, default=5)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    decided_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    token_id: Mapped[str | None] = mapped_column(String(36))
