"""Session cuts: one row per ended grant whose existing AWS sessions are being ended.

``pending`` (the deny is to be written) → ``active`` (the deny is in the permission set's
inline policy and provisioned) → ``released`` (the deny is lifted: the sessions it targeted
have expired, or the user holds the same access again). ``unneeded``: nothing was left to cut
(the permission set was deleted with its last assignment, and its role with it). The
connector's job for a permission set is built from these rows, so a killed process loses no
cut and no release (services.session_cuts).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.store.models import Base, Timestamps, new_id


class SessionCut(Timestamps, Base):
    __tablename__ = "session_cuts"
    __table_args__ = (Index("ix_session_cuts_due", "state", "release_after"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), index=True
    )
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), unique=True)
    tuple_key: Mapped[str] = mapped_column(String(1024))
    instance_arn: Mapped[str] = mapped_column(String(1224))
    identity_center_region: Mapped[str | None] = mapped_column(String(32))
    permission_set_arn: Mapped[str] = mapped_column(String(1224), index=True)
    permission_set_name: Mapped[str] = mapped_column(String(64), default="")
    managed: Mapped[bool] = mapped_column(Boolean)  # a Grantflow pooled permission set
    account_id: Mapped[str] = mapped_column(String(12))
    principal_id: Mapped[str] = mapped_column(String(64))
    user_name: Mapped[str] = mapped_column(String(255))
    not_before: Mapped[datetime]  # sessions issued before this are denied
    state: Mapped[str] = mapped_column(String(16), default="pending")
    cut_at: Mapped[datetime | None]
    release_after: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
