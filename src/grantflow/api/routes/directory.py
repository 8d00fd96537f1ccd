"""Admin API for the directory: groups and SCIM tokens. (Users: ``routes/users.py``.)"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.paging import MAX_OFFSET
from grantflow.api.schemas.tokens import TokenCreate, TokenCreated, TokenPublic
from grantflow.domain.secrets import issue_token
from grantflow.services.audit import trail as audit
from grantflow.services.auth.tokens import SCIM_PREFIX
from grantflow.services.errors import NotFound
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import ApiToken, Group, GroupMembership
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


# --- SCIM tokens --------------------------------------------------------------------------


@router.post("/scim/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_scim_token(
    body: TokenCreate, ctx: Ctx, admin: AdminUser, request: Request
) -> TokenCreated:
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
        public = TokenPublic.model_validate(row, from_attributes=True)
    return TokenCreated(**public.model_dump(), token=issued.plaintext)


@router.get("/scim/tokens", response_model=list[TokenPublic])
def list_scim_tokens(ctx: Ctx, _admin: AdminUser) -> list[TokenPublic]:
    with read_transaction(ctx.sessions) as session:
        rows = session.scalars(
            select(ApiToken)
            .where(ApiToken.kind == "scim", ApiToken.revoked_at.is_(None))
            .where(or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()))
            .order_by(ApiToken.created_at)
        ).all()
        return [TokenPublic.model_validate(r, from_attributes=True) for r in rows]


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
