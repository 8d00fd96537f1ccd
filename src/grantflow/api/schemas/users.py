"""Users: one family for every view of a person.

``UserPublic`` is what the user list, ``GET /api/v1/me`` and the signed-in session show;
``UserDetail`` extends it with what an admin's one-user view adds (groups, attributes, the
AWS mapping). ``UserCreate`` and ``UserUpdate`` are what an admin writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field

from grantflow.domain.authz import Role
from grantflow.domain.identity_matching import MatchedBy, UnmatchedReason
from grantflow.store.models import DirectoryPrincipal, User


class PrincipalRef(BaseModel):
    """The user's principal in one Identity Center identity store."""

    identity_store_id: str
    principal_id: str
    active: bool


class UserBase(BaseModel):
    """What every view of a user shows, and what an admin names when creating one."""

    username: str
    email: str | None
    display_name: str
    role: Role


class UserCreate(UserBase):
    username: str = Field(min_length=1, max_length=255)
    email: str | None = Field(None, max_length=320)
    display_name: str = Field("", max_length=255)
    password: str = Field(min_length=1, max_length=1024)
    role: Role = Role.MEMBER


class UserUpdate(BaseModel):
    role: Role | None = None
    active: bool | None = None


class UserPublic(UserBase):
    id: str
    active: bool
    source: str = Field(description="local, scim or identity_center")
    disabled_by_admin: bool = Field(
        False, description="Deactivated by an admin: SCIM and the sync cannot re-activate it"
    )
    deleted_at: datetime | None = Field(None, description="Deleted over SCIM (kept for history)")
    directory: str = Field(description="The identity store that created the user, if any")
    principals: list[PrincipalRef] = Field(
        default_factory=list, description="One per identity store the user is a principal of"
    )


class UserPage(BaseModel):
    items: list[UserPublic]
    total: int
    offset: int
    limit: int


class GroupRef(BaseModel):
    id: str
    name: str
    source: str
    directory: str = ""


class StorePrincipal(BaseModel):
    """The user's principal in one Identity Center identity store, or why there is none."""

    identity_store_id: str
    principal_id: str | None
    matched_by: MatchedBy | None = None
    active: bool = False
    reason: UnmatchedReason | None = Field(None, description="Why the user has no principal there")
    detail: str | None = None


class AwsMapping(BaseModel):
    can_receive_aws_grants: bool = Field(
        description="True when the user has an active principal in at least one identity store"
    )
    principals: list[StorePrincipal] = Field(description="One entry per identity store")
    reason: UnmatchedReason | None = Field(
        None, description="Why the user cannot receive AWS grants"
    )
    detail: str | None = None


class UserDetail(UserPublic):
    """``UserPublic`` and what an admin's one-user view adds."""

    external_id: str | None
    attributes: dict[str, str]
    groups: list[GroupRef]
    aws: AwsMapping


def principal_refs(rows: Iterable[DirectoryPrincipal]) -> list[PrincipalRef]:
    return [
        PrincipalRef(identity_store_id=p.identity_store_id, principal_id=p.principal_id,
                     active=p.active)
        for p in rows
    ]  # fmt: skip


def user_public(user: User, principals: Iterable[DirectoryPrincipal]) -> UserPublic:
    """The user as ``UserPublic``, with the principals the caller loaded for it."""
    public = UserPublic.model_validate(user, from_attributes=True)
    return public.model_copy(update={"principals": principal_refs(principals)})
