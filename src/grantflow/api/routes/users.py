"""The directory as admins see it."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from grantflow.api.deps import AdminUser, Ctx
from grantflow.api.paging import MAX_OFFSET
from grantflow.store.db import transaction
from grantflow.store.models import User

router = APIRouter(prefix="/api/v1", tags=["directory"])


class UserPublic(BaseModel):
    id: str
    username: str
    email: str | None
    display_name: str
    active: bool
    role: str
    source: str
    identity_store_user_id: str | None


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
) -> UserPage:
    with transaction(ctx.sessions) as session:
        total = session.scalar(select(func.count()).select_from(User)) or 0
        rows = session.scalars(
            select(User).order_by(User.username).offset(offset).limit(limit)
        ).all()
        items = [UserPublic.model_validate(r, from_attributes=True) for r in rows]
    return UserPage(items=items, total=total, offset=offset, limit=limit)
