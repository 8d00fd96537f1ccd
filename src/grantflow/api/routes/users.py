"""``/api/v1/users``: the directory's people as admins see them — the list, one user with its
AWS mapping, and the local users an admin creates and changes."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status

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
from grantflow.services.directory import user_pages
from grantflow.services.directory.people import StoreMapping

router = APIRouter(prefix="/api/v1", tags=["directory"])


@router.get("/users", response_model=UserPage)
def list_users(
    ctx: Ctx,
    _admin: AdminUser,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=500),
    include_deleted: bool = Query(False, description="Also list users deleted over SCIM"),
) -> UserPage:
    rows, total = user_pages.page(ctx.sessions, offset, limit, include_deleted)
    items = [user_public(r.user, r.principals) for r in rows]
    return UserPage(items=items, total=total, offset=offset, limit=limit)


def _aws(mapping: list[StoreMapping]) -> AwsMapping:
    stores: list[StorePrincipal] = []
    for entry in mapping:
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


def _detail(detail: user_pages.Detail) -> UserDetail:
    user = detail.user
    public = user_public(user, detail.principals)
    groups = [GroupRef(id=g.id, name=g.name, source=g.source, directory=g.directory)
              for g in detail.groups]  # fmt: skip
    return UserDetail(
        **public.model_dump(),
        external_id=user.external_id,
        attributes={k: v for k, v in (user.attributes or {}).items() if isinstance(v, str)},
        groups=groups,
        aws=_aws(detail.mapping),
    )


@router.get("/users/{user_id}", response_model=UserDetail)
def get_user(user_id: str, ctx: Ctx, _admin: AdminUser) -> UserDetail:
    return _detail(user_pages.show(ctx.sessions, user_id))


@router.post("/users", response_model=UserDetail, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, ctx: Ctx, admin: AdminUser, request: Request) -> UserDetail:
    detail = user_pages.create_local(
        ctx.sessions, body.username, body.email, body.display_name, body.password, body.role,
        actor_of(admin, request),
    )  # fmt: skip
    return _detail(detail)


@router.patch("/users/{user_id}", response_model=UserDetail)
def update_user(
    user_id: str, body: UserUpdate, ctx: Ctx, admin: AdminUser, request: Request
) -> UserDetail:
    detail = user_pages.update(ctx.sessions, user_id, body.role, body.active,
                               actor_of(admin, request))  # fmt: skip
    return _detail(detail)
