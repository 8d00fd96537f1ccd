"""``/api/v1/users``: the directory's people as admins see them — the list, one user with its
AWS mapping, and the local users an admin creates and changes."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.api.deps import AdminUser, Ctx, actor_of
from grantflow.api.paging import MAX_OFFSET
from grantflow.api.schemas.users import (
    AwsMapping,
    GroupRef,
    StorePrincipal,
    UserCreate,
    UserDetail,
    UserPage,
    UserUpdate,
    user_public,
)
from grantflow.domain.identity_matching import Matched, UnmatchedReason
from grantflow.services.directory import people as directory
from grantflow.services.errors import NotFound
from grantflow.services.identity import principals
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import DirectoryPrincipal, User

router = APIRouter(prefix="/api/v1", tags=["directory"])


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
        by_user: dict[str, list[DirectoryPrincipal]] = {}
        for p in found:
            by_user.setdefault(p.user_id or "", []).append(p)
        items = [user_public(r, by_user.get(r.id, [])) for r in rows]
    return UserPage(items=items, total=total, offset=offset, limit=limit)


def _aws(session: Session, user: User) -> AwsMapping:
    stores: list[StorePrincipal] = []
    for entry in directory.mapping_status(session, user):
        found = entry.found
        if isinstance(found, Matched):
            principal = found.identity_store_user_id
            stores.append(StorePrincipal(
                identity_store_id=entry.identity_store_id, principal_id=principal,
                matched_by=found.matched_by, active=entry.active,
            ))  # fmt: skip
        else:
            stores.append(StorePrincipal(
                identity_store_id=entry.identity_store_id, principal_id=None,
                reason=found.reason, detail=f"cannot receive AWS grants: {found.detail}",
            ))  # fmt: skip
    if any(s.principal_id and s.active for s in stores):
        return AwsMapping(can_receive_aws_grants=True, principals=stores)
    first = next((s for s in stores if s.reason), None)
    if first is not None:
        return AwsMapping(can_receive_aws_grants=False, principals=stores, reason=first.reason,
                          detail=first.detail)  # fmt: skip
    return AwsMapping(
        can_receive_aws_grants=False, principals=stores,
        reason=UnmatchedReason.NO_IDENTITY_STORE_USER,
        detail="cannot receive AWS grants: no active Identity Center user is this user yet; "
        "connect an integration and sync it",
    )  # fmt: skip


def _detail(session: Session, user: User) -> UserDetail:
    public = user_public(user, principals.principals_of(session, user.id))
    groups = [
        GroupRef(id=g.id, name=g.name, source=g.source, directory=g.directory)
        for g in directory.groups_of(session, user.id)
    ]
    return UserDetail(
        **public.model_dump(),
        external_id=user.external_id,
        attributes={k: v for k, v in (user.attributes or {}).items() if isinstance(v, str)},
        groups=groups,
        aws=_aws(session, user),
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
