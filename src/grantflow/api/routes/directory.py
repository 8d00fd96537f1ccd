"""Admin API for the directory: groups and SCIM tokens. (Users: ``routes/users.py``.)"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.paging import MAX_OFFSET
from grantflow.api.schemas.tokens import TokenCreate, TokenCreated, TokenPublic
from grantflow.services.directory import group_pages, scim_tokens

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


@router.get("/groups", response_model=GroupPage)
def list_groups(
    ctx: Ctx,
    _admin: AdminUser,
    search: str | None = Query(None, max_length=255, description="Part of the group name"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
) -> GroupPage:
    items, total = group_pages.page(ctx.sessions, search, offset, limit)
    return GroupPage(items=[GroupPublic.model_validate(g) for g in items], total=total,
                     offset=offset, limit=limit)  # fmt: skip


# --- SCIM tokens --------------------------------------------------------------------------


@router.post("/scim/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_scim_token(
    body: TokenCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> TokenCreated:
    found, secret = scim_tokens.issue(
        ctx.sessions, body.name, body.expires_at, actor_of(admin, request)
    )
    return TokenCreated(**TokenPublic.model_validate(found).model_dump(), token=secret)


@router.get("/scim/tokens", response_model=list[TokenPublic])
def list_scim_tokens(ctx: Ctx, _admin: AdminUser) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t) for t in scim_tokens.usable(ctx.sessions)]


@router.delete("/scim/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_scim_token(token_id: str, ctx: Ctx, admin: AdminUser, request: Request) -> None:
    scim_tokens.revoke(ctx.sessions, token_id, actor_of(admin, request))
