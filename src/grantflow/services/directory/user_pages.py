"""``/api/v1/users`` as use cases, each owning its transaction: the page of users (with their
identity-store principals, one query per page), one user with its groups and AWS mapping,
and the local users an admin creates and changes (answered as read in the same transaction).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit import trail as audit
from grantflow.services.directory import people
from grantflow.services.errors import NotFound
from grantflow.services.identity import principals
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import DirectoryPrincipal, Group, User


@dataclass(frozen=True)
class Listed:
    user: User
    principals: list[DirectoryPrincipal]


@dataclass(frozen=True)
class Detail(Listed):
    groups: list[Group]
    mapping: list[people.StoreMapping]  # whether the user can receive AWS grants, per store


def page(
    sessions: sessionmaker[Session], offset: int, limit: int, include_deleted: bool
) -> tuple[list[Listed], int]:
    """``limit`` users by username from ``offset``, and how many there are in all."""
    stmt = select(User) if include_deleted else select(User).where(User.deleted_at.is_(None))
    with read_transaction(sessions) as session:
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
        return [Listed(r, by_user.get(r.id, [])) for r in rows], total


def user(session: Session, user_id: str) -> User:
    row = session.get(User, user_id)
    if row is None:
        raise NotFound("user not found")
    return row


def _detail(session: Session, row: User) -> Detail:
    return Detail(
        row,
        principals.principals_of(session, row.id),
        people.groups_of(session, row.id),
        people.mapping_status(session, row),
    )


def show(sessions: sessionmaker[Session], user_id: str) -> Detail:
    with read_transaction(sessions) as session:
        return _detail(session, user(session, user_id))


def create_local(
    sessions: sessionmaker[Session],
    username: str,
    email: str | None,
    display_name: str,
    password: str,
    role: str,
    actor: audit.Actor,
) -> Detail:
    with transaction(sessions) as session:
        row = people.create_local_user(
            session, username, email, display_name, password, role, actor
        )
        return _detail(session, row)


def update(
    sessions: sessionmaker[Session],
    user_id: str,
    role: str | None,
    active: bool | None,
    actor: audit.Actor,
) -> Detail:
    with transaction(sessions) as session:
        return _detail(session, people.update_user(session, user_id, role, active, actor))
