"""API tokens: a person's personal tokens and the SCIM provisioning tokens, one family."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    expires_at: datetime | None = None


class TokenPublic(BaseModel):
    id: str
    name: str
    prefix: str
    kind: str = Field(description="bootstrap, personal or scim")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret. Shown once; Grantflow keeps only its hash.")
