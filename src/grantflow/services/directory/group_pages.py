"""The directory's groups as admins page through them: by name, optionally those whose name
contains a search text, each with its member count (one count query per page)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.store.db import read_transaction
from grantflow.store.models import Group, GroupMembership

FIELDS = ("id", "name", "description", "source", "directory", "identity_store_group_id")


def page(
    sessions: sessionmaker[Session], search: str | None, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """``limit`` groups from ``offset``, and how many match in all."""
    stmt = select(Group)
    if search:
        stmt = stmt.where(func.lower(Group.name).contains(search.lower(), autoescape=True))
    with read_transaction(sessions) as session:
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.scalars(stmt.order_by(Group.name).offset(offset).limit(limit)).all()
        counted = session.execute(
            select(GroupMembership.group_id, func.count())
            .where(GroupMembership.group_id.in_([r.id for r in rows]))
            .group_by(GroupMembership.group_id)
        )
        counts: dict[str, int] = {group_id: n for group_id, n in counted}
        items = [{**{f: getattr(r, f) for f in FIELDS}, "member_count": counts.get(r.id, 0)}
                 for r in rows]  # fmt: skip
    return items, total
