"""The signed-in user and their personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.api.deps import Ctx, CurrentUser, actor_of
from grantflow.api.schemas.tokens import TokenCreate, TokenCreated, TokenPublic
from grantflow.api.schemas.users import UserPublic, user_public
from grantflow.services.auth import tokens
from grantflow.services.errors import NotFound
from grantflow.services.identity import principals
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import ApiToken, User

router = APIRouter(prefix="/api/v1", tags=["me"])


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


@router.get("/me", response_model=UserPublic)
def me(ctx: Ctx, principal: CurrentUser) -> UserPublic:
    with read_transaction(ctx.sessions) as session:
        user = _user(session, principal.id)
        return user_public(user, principals.principals_of(session, user.id))


@router.get("/me/tokens", response_model=list[TokenPublic])
def list_tokens(ctx: Ctx, principal: CurrentUser) -> list[TokenPublic]:
    with read_transaction(ctx.sessions) as session:
        rows = session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == principal.id, ApiToken.revoked_at.is_(None))
            .where(ApiToken.kind.in_(tokens.BEARER_KINDS))
            .order_by(ApiToken.created_at)
        ).all()
        return [TokenPublic.model_validate(r, from_attributes=True) for r in rows]


@router.post("/me/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, ctx: Ctx, principal: CurrentUser, request: Request
) -> TokenCreated:
    with transaction(ctx.sessions) as session:
        user = _user(session, principal.id)
        new = tokens.create_personal_token(
            session, user, body.name, actor_of(principal, request), body.expires_at
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
    with transaction(ctx.sessions) as session:
        tokens.revoke_token(
            session, _user(session, principal.id), token_id, actor_of(principal, request)
        )
