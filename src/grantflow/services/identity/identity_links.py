"""A user's external sign-in identities as admins manage them (list, link, unlink), each
owning its transaction; ``user_identities`` does the work and the auditing."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.errors import NotFound
from grantflow.services.identity import user_identities
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import User, UserIdentity

View = dict[str, Any]
FIELDS = ("id", "issuer", "subject", "email", "linked_by", "created_at", "last_sign_in_at")


def _view(row: UserIdentity) -> View:
    return {f: getattr(row, f) for f in FIELDS}


def of_user(sessions: sessionmaker[Session], user_id: str) -> list[View]:
    with read_transaction(sessions) as session:
        if session.get(User, user_id) is None:
            raise NotFound("no such user")
        return [_view(r) for r in user_identities.of_user(session, user_id)]


def link(
    sessions: sessionmaker[Session],
    user_id: str,
    issuer: str,
    subject: str,
    email: str | None,
    actor: audit.Actor,
) -> View:
    with transaction(sessions) as session:
        return _view(user_identities.admin_link(session, user_id, issuer, subject, email, actor))


def unlink(
    sessions: sessionmaker[Session], user_id: str, identity_id: str, actor: audit.Actor
) -> None:
    with transaction(sessions) as session:
        user_identities.unlink(session, user_id, identity_id, actor)
