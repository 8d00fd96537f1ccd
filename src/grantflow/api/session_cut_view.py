"""How a grant's session cut reads in the API: when the user's existing AWS sessions were
cut, until when, and when the cut was lifted (services.session_cuts)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SessionCutPublic(BaseModel):
    state: str = Field(description="pending | active | released | unneeded")
    permission_set_arn: str
    account_id: str
    user_name: str
    not_before: datetime = Field(description="sessions issued before this are denied")
    cut_at: datetime | None = Field(description="when the deny was in AWS")
    release_after: datetime | None = Field(description="when those sessions have expired")
    released_at: datetime | None = Field(description="when the deny was lifted")
    error: str | None = Field(description="the last failure, retried")
