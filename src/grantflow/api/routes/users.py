"""The directory as admins see it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from grantflow.api.deps import AdminUser, Ctx
from grantflow.api.paging import MAX_OFFSET
from grantflow.store.db import read_transaction
from grantflow.store.models import DirectoryPrincipal, User

router = APIRouter(prefix="/api/v1", tags=["directory"])


class PrincipalRef(BaseModel):
    """The user's principal in one Identity Center identity store."""

    identity_store_id: str
    principal_id: str
    active: bool


class UserPublic(BaseModel):
    id: str
    username: str
    email: str | None
    display_name: str
    active: bool
    role: str
    source: str
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


@router.get("/users", response_model=UserPage)
def list_users(
    ctx: Ctx,
    _admin: AdminUser,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
    include_deleted: bool = Query(False, description="Also list users deleted over SCIM"),
) -> UserPage:
    stmt = select(User) if include_deleted else select(User).where(User.deleted_at.is_(None))
    with read_transaction(ctx.sessions) as session:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(
            stmt.order_by(User.username, User.id).offset(offset).limit(limit)
        ).all()
        found = session.scalars(
            select(DirectoryPrincipal)
            .where(DirectoryPrincipal.user_id.in_([r.id for r in rows]))
            .order_by(DirectoryPrincipal.identity_store_id)
        )
        refs: dict[str, list[PrincipalRef]] = {}
        for p in found:
            refs.setdefault(p.user_id or "", []).append(
                PrincipalRef(
                    identity_store_id=p.identity_store_id, principal_id=p.principal_id,
                    active=p.active,
                )
            )  # fmt: skip
        items = [
            UserPublic.model_validate(r, from_attributes=True).model_copy(
                update={"principals": refs.get(r.id, [])}
            )
            for r in rows
        ]
    return UserPage(items=items, total=total, offset=offset, limit=limit)
