"""SCIM provisioning tokens (admins): issue, list the usable ones, revoke; each owns its
transaction and is audited. Grantflow keeps a token's hash and public prefix; the secret is
returned once, when it is issued."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.secrets import issue_token
from grantflow.services.audit import trail as audit
from grantflow.services.auth.tokens import SCIM_PREFIX
from grantflow.services.errors import NotFound
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import ApiToken
from grantflow.store.types import utcnow

View = dict[str, Any]
FIELDS = ("id", "name", "prefix", "kind", "created_at", "last_used_at", "expires_at")


def _view(row: ApiToken) -> View:
    return {f: getattr(row, f) for f in FIELDS}


def issue(
    sessions: sessionmaker[Session], name: str, expires_at: datetime | None, actor: audit.Actor
) -> tuple[View, str]:
    """The new token and its secret (the only time it is seen)."""
    issued = issue_token(SCIM_PREFIX)
    with transaction(sessions) as session:
        row = ApiToken(name=name, kind="scim", token_hash=issued.token_hash,
                       prefix=issued.prefix, user_id=None, expires_at=expires_at)  # fmt: skip
        session.add(row)
        session.flush()
        audit.record(session, actor, "scim_token.created", "api_token", row.id, {"name": name})
        return _view(row), issued.plaintext


def usable(sessions: sessionmaker[Session]) -> list[View]:
    """The tokens neither revoked nor expired, oldest first."""
    with read_transaction(sessions) as session:
        rows = session.scalars(
            select(ApiToken)
            .where(ApiToken.kind == "scim", ApiToken.revoked_at.is_(None))
            .where(or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > utcnow()))
            .order_by(ApiToken.created_at)
        ).all()
        return [_view(r) for r in rows]


def revoke(sessions: sessionmaker[Session], token_id: str, actor: audit.Actor) -> None:
    with transaction(sessions) as session:
        row = session.get(ApiToken, token_id)
        if row is None or row.kind != "scim" or row.revoked_at is not None:
            raise NotFound("no such SCIM token")
        row.revoked_at = utcnow()
        audit.record(session, actor, "scim_token.revoked", "api_token", row.id, {"name": row.name})
