"""The signed-in user and their personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from grantflow.api.deps import Ctx, CurrentUser, actor_of
from grantflow.api.schemas.tokens import TokenCreate, TokenCreated, TokenPublic
from grantflow.api.schemas.users import UserPublic, user_public
from grantflow.services.auth import my_account

router = APIRouter(prefix="/api/v1", tags=["me"])


@router.get("/me", response_model=UserPublic)
def me(ctx: Ctx, principal: CurrentUser) -> UserPublic:
    user, principals = my_account.me(ctx.sessions, principal.id)
    return user_public(user, principals)


@router.get("/me/tokens", response_model=list[TokenPublic])
def list_tokens(ctx: Ctx, principal: CurrentUser) -> list[TokenPublic]:
    rows = my_account.tokens_of(ctx.sessions, principal.id)
    return [TokenPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/me/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, ctx: Ctx, principal: CurrentUser, request: Request
) -> TokenCreated:
    new = my_account.create_token(
        ctx.sessions, principal.id, body.name, actor_of(principal, request), body.expires_at
    )
    return TokenCreated(
        id=new.id,
        name=new.name,
        prefix=new.prefix,
        kind="personal",
        created_at=new.created_at,
        last_used_at=None,
        expires_at=body.expires_at,
        token=new.plaintext,
    )


@router.delete("/me/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: str, ctx: Ctx, principal: CurrentUser, request: Request) -> None:
    my_account.revoke_token(ctx.sessions, principal.id, token_id, actor_of(principal, request))
