"""Approve a CLI sign-in (see `grantflow.domain.cli_login`): the hash becomes a token."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.cli_login import TOKEN_LIFETIME, CliLoginLink
from grantflow.services import audit
from grantflow.services.errors import Conflict, Forbidden
from grantflow.store.models import ApiToken, User
from grantflow.store.types import utcnow


def approve(session: Session, user: User, link: CliLoginLink, actor: audit.Actor) -> ApiToken:
    """Store the link's hash as ``user``'s personal token, valid for `TOKEN_LIFETIME`.

    A link works once: its hash already stored (by anyone) is a conflict, never a second token.
    """
    if not user.active:
        raise Forbidden("this account is deactivated")
    if session.scalar(select(ApiToken.id).where(ApiToken.token_hash == link.token_hash)):
        raise Conflict("this sign-in link was already used; run `grantflow login --browser` "
                       "again for a new one")  # fmt: skip
    row = ApiToken(
        name=f"CLI: {link.label}",
        kind="personal",
        token_hash=link.token_hash,
        prefix=link.prefix,
        user_id=user.id,
        expires_at=utcnow() + TOKEN_LIFETIME,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "token.created", "api_token", row.id,
                 {"name": row.name, "via": "cli-login"})  # fmt: skip
    return row
