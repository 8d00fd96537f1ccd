"""Admin API for the directory: groups, one user (with its AWS mapping), local users, SCIM tokens.

(``GET /api/v1/users``, the list, lives in ``routes/users.py``.)
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.paging import MAX_OFFSET
from grantflow.domain.identity_matching import Matched
from grantflow.domain.secrets import issue_token
from grantflow.services.audit import trail as audit
from grantflow.services.auth.tokens import SCIM_PREFIX
from grantflow.services.directory import people as directory
from grantflow.services.errors import NotFound
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import ApiToken, Group, GroupMembership, User
from grantflow.store.types import utcnow

router = APIRouter(prefix="/api/v1", tags=["directory"])


class GroupPublic(BaseModel):
    id: str
    name: str
    description: str
    source: str
    directory: str = Field(
        "", description="The identity store of an Identity Center group; empty for local and SCIM"
    )
    identity_store_group_id: str | None
    member_count: int = 0


class GroupPage(BaseModel):
    items: list[GroupPublic]
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
    matched_by: str | None = Field(None, description="owner, username or email")
    active: bool = False
    reason: str | None = Field(None, description="Why the user has no principal there")
    detail: str | None = None


class AwsMapping(BaseModel):
    can_receive_aws_grants: bool = Field(
        description="True when the user has an active principal in at least one identity store"
    )
    principals: list[StorePrincipal] = Field(description="One entry per identity store")
    reason: str | None = Field(None, description="Why the user cannot receive AWS grants")
    detail: str | None = None


class UserDetail(BaseModel):
    id: str
    username: str
    email: str | None
    display_name: str
    active: bool
    role: str
    source: str
    external_id: str | None
    attributes: dict[str, str]
    groups: list[GroupRef]
    aws: AwsMapping


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=255)
    email: str | None = Field(None, max_length=320)
    display_name: str = Field("", max_length=255)
    password: str = Field(min_length=1, max_length=1024)
    role: str = "member"


class UserUpdate(BaseModel):
    role: str | None = None
    active: bool | None = None


class ScimTokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    expires_at: datetime | None = None


class ScimTokenPublic(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ScimTokenCreated(ScimTokenPublic):
    token: str = Field(description="The secret. Shown once; Grantflow keeps only its hash.")


@router.get("/groups", response_model=GroupPage)
def list_groups(
    ctx: Ctx,
    _admin: AdminUser,
    search: str | None = Query(None, max_length=255, description="Part of the group name"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
) -> GroupPage:
    stmt = select(Group)
    if search:
        stmt = stmt.where(func.lower(Group.name).contains(search.lower(), autoescape=True))
    with read_transaction(ctx.sessions) as session:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(stmt.order_by(Group.name).offset(offset).limit(limit)).all()
        counted = session.execute(
            select(GroupMembership.group_id, func.count())
            .where(GroupMembership.group_id.in_([r.id for r in rows]))
            .group_by(GroupMembership.group_id)
        )
        counts: dict[str, int] = {group_id: n for group_id, n in counted}
        items = [
            GroupPublic.model_validate(r, from_attributes=True).model_copy(
                update={"member_count": counts.get(r.id, 0)}
            )
            for r in rows
        ]
    return GroupPage(items=items, total=total, offset=offset, limit=limit)


def _aws(session: Session, user: User) -> AwsMapping:
    stores: list[StorePrincipal] = []
    for entry in directory.mapping_status(session, user):
        found = entry.found
        if isinstance(found, Matched):
            principal = found.identity_store_user_id
            stores.append(StorePrincipal(
                identity_store_id=entry.identity_store_id, principal_id=principal,
                matched_by=found.matched_by.value, active=entry.active,
            ))  # fmt: skip
        else:
            stores.append(StorePrincipal(
                identity_store_id=entry.identity_store_id, principal_id=None,
                reason=found.reason.value, detail=f"cannot receive AWS grants: {found.detail}",
            ))  # fmt: skip
    if any(s.principal_id and s.active for s in stores):
        return AwsMapping(can_receive_aws_grants=True, principals=stores)
    first = next((s for s in stores if s.reason), None)
    if first is not None:
        return AwsMapping(can_receive_aws_grants=False, principals=stores, reason=first.reason,
                          detail=first.detail)  # fmt: skip
    return AwsMapping(
        can_receive_aws_grants=False, principals=stores, reason="no_identity_store_user",
        detail="cannot receive AWS grants: no active Identity Center user is this user yet; "
        "connect an integration and sync it",
    )  # fmt: skip


def _detail(session: Session, user: User) -> UserDetail:
    aws = _aws(session, user)
    groups = [
        GroupRef(id=g.id, name=g.name, source=g.source, directory=g.directory)
        for g in directory.groups_of(session, user.id)
    ]
    return UserDetail(
        id=user.id,
        username=user.username,
        email=user.email,
        display_name=user.display_name,
        active=user.active,
        role=user.role,
        source=user.source,
        external_id=user.external_id,
        attributes={k: v for k, v in (user.attributes or {}).items() if isinstance(v, str)},
        groups=groups,
        aws=aws,
    )


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


@router.get("/users/{user_id}", response_model=UserDetail)
def get_user(user_id: str, ctx: Ctx, _admin: AdminUser) -> UserDetail:
    with read_transaction(ctx.sessions) as session:
        return _detail(session, _user(session, user_id))


@router.post("/users", response_model=UserDetail, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, ctx: Ctx, admin: AdminUser, request: Request) -> UserDetail:
    with transaction(ctx.sessions) as session:
        user = directory.create_local_user(
            session, body.username, body.email, body.display_name, body.password, body.role,
            actor_of(admin, request),
        )  # fmt: skip
        return _detail(session, user)


@router.patch("/users/{user_id}", response_model=UserDetail)
def update_user(
    user_id: str, body: UserUpdate, ctx: Ctx, admin: AdminUser, request: Request
) -> UserDetail:
    with transaction(ctx.sessions) as session:
        user = directory.update_user(
            session, user_id, body.role, body.active, actor_of(admin, request)
        )
        return _detail(session, user)


# --- SCIM tokens --------------------------------------------------------------------------


@router.post("/scim/tokens", response_model=ScimTokenCreated, status_code=status.HTTP_201_CREATED)
def create_scim_token(
    body: ScimTokenCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> ScimTokenCreated:
    issued = issue_token(SCIM_PREFIX)
    with transaction(ctx.sessions) as session:
        row = ApiToken(
            name=body.name,
            kind="scim",
            token_hash=issued.token_hash,
            prefix=issued.prefix,
            user_id=None,
            expires_at=body.expires_at,
        )
        session.add(row)
        session.flush()
        audit.record(
            session, actor_of(admin, request), "scim_token.created", "api_token", row.id,
            {"name": body.name},
        )  # fmt: skip
        public = ScimTokenPublic.model_validate(row, from_attributes=True)
    return ScimTokenCreated(**public.model_dump(), token=issued.plaintext)


@router.get("/scim/tokens", response_model=list[ScimTokenPublic])
def list_scim_tokens(ctx: Ctx, _admin: AdminUser) -> list[ScimTokenPublic]:
    with read_transaction(ctx.sessions) as session:
        rows = session.scalars(
            select(ApiToken)
            .where(ApiToken.kind == "scim", ApiToken.revoked_at.is_(None))
            .where(or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()))
            .order_by(ApiToken.created_at)
        ).all()
        return [ScimTokenPublic.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/scim/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_scim_token(token_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> None:
    with transaction(ctx.sessions) as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.kind != "scim" or row.revoked_at is not None:
            raise NotFound("no such SCIM token")
        row.revoked_at = utcnow()
        audit.record(
            session, actor_of(admin, request), "scim_token.revoked", "api_token", row.id,
            {"name": row.name},
        )  # fmt: skip
