"""The SCIM use cases of one resource type (``scim.USERS``, ``scim.GROUPS``) as the SCIM
routes call them, each owning its transaction: search, get, create, change (PUT or PATCH),
delete. Reads take no write lock."""

from __future__ import annotations

from typing import Any

from scim2_models import ListResponse
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.directory import scim
from grantflow.services.directory.scim import Kind, ListQuery, ResourceT, RowT
from grantflow.store.db import read_transaction, transaction


def search(
    sessions: sessionmaker[Session], kind: Kind[ResourceT, RowT], query: ListQuery, base: str
) -> ListResponse[Any]:
    with read_transaction(sessions) as session:
        return kind.search(session, query, base)


def get(
    sessions: sessionmaker[Session], kind: Kind[ResourceT, RowT], resource_id: str, base: str
) -> ResourceT:
    with read_transaction(sessions) as session:
        return kind.get(session, resource_id, base)


def create(
    sessions: sessionmaker[Session], kind: Kind[ResourceT, RowT], payload: Any, base: str,
    actor: audit.Actor,
) -> ResourceT:  # fmt: skip
    with transaction(sessions) as session:
        return scim.create(kind, session, payload, base, actor)


def change(
    sessions: sessionmaker[Session],
    kind: Kind[ResourceT, RowT],
    resource_id: str,
    payload: Any,
    base: str,
    actor: audit.Actor,
    if_match: str | None,
    *,
    patch: bool,
) -> ResourceT:
    with transaction(sessions) as session:
        return scim.change(kind, session, resource_id, payload, base, actor, if_match, patch=patch)


def delete(
    sessions: sessionmaker[Session], kind: Kind[ResourceT, RowT], resource_id: str, base: str,
    actor: audit.Actor, if_match: str | None,
) -> None:  # fmt: skip
    with transaction(sessions) as session:
        scim.delete(kind, session, resource_id, base, actor, if_match)
