"""The signed-in user's own account as use cases, each owning its transaction: who they are
(with their identity-store principals) and their personal API tokens (list, create, revoke).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.auth import tokens
from grantflow.services.errors import NotFound
from grantflow.services.identity import principals
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import ApiToken, DirectoryPrincipal, User


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


def me(sessions: sessionmaker[Session], user_id: str) -> tuple[User, list[DirectoryPrincipal]]:
    """The user and the principals they are, one per identity store."""
    with read_transaction(sessions) as session:
        user = _user(session, user_id)
        return user, principals.principals_of(session, user.id)


def tokens_of(sessions: sessionmaker[Session], user_id: str) -> list[ApiToken]:
    """The user's live bearer tokens, oldest first."""
    with read_transaction(sessions) as session:
        return list(
            session.scalars(
                select(ApiToken)
                .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                .where(ApiToken.kind.in_(tokens.BEARER_KINDS))
                .order_by(ApiToken.created_at)
            ).all()
        )


def create_token(
    sessions: sessionmaker[Session],
    user_id: str,
    name: str,
    actor: audit.Actor,
    expires_at: datetime | None,
) -> tokens.NewToken:
    with transaction(sessions) as session:
        user = _user(session, user_id)
        return tokens.create_personal_token(session, user, name, actor, expires_at)


def revoke_token(
    sessions: sessionmaker[Session], user_id: str, token_id: str, actor: audit.Actor
) -> None:
    with transaction(sessions) as session:
        tokens.revoke_token(session, _user(session, user_id), token_id, actor)
