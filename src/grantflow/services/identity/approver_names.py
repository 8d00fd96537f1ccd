"""Approvers by name, for the pages: ``user:<id>`` and ``group:<id>`` refs as people read them
("Ada Lovelace (ada)", "group platform"). Names are for display only; decisions bind by id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.flows import ApproverSet
from grantflow.store.models import Group, User


class ApproverNames:
    """Names refs, each looked up once per instance (one per API call)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[str, str] = {}

    def name(self, ref: str) -> str:
        if ref not in self._cache:
            self._cache[ref] = self._lookup(ref)
        return self._cache[ref]

    def names(self, refs: Iterable[str]) -> list[str]:
        return [self.name(ref) for ref in refs]

    def of_sets(self, sets: Iterable[ApproverSet]) -> list[str]:
        """Everyone named by ``sets``, in order, each once."""
        return list(dict.fromkeys(n for s in sets for n in self.names(s.principals)))

    def preload(self, refs: Iterable[str], user_ids: Iterable[str] = ()) -> dict[str, User]:
        """Name ``refs`` with two statements (users, groups) instead of one per ref; the
        users of ``refs`` and of ``user_ids`` are returned by id (list pages)."""
        refs = list(refs)
        wanted, group_ids = self.ids_named(refs, user_ids)
        users: dict[str, User] = {}
        if wanted:
            found = self._session.scalars(select(User).where(User.id.in_(wanted)))
            users = {u.id: u for u in found}
        groups = {}
        if group_ids:
            groups = {g.id: g for g in self._session.scalars(
                select(Group).where(Group.id.in_(group_ids)))}  # fmt: skip
        self.remember(refs, users, groups)
        return users

    @staticmethod
    def ids_named(refs: list[str], user_ids: Iterable[str] = ()) -> tuple[list[str], list[str]]:
        """The user ids (those of ``refs`` and ``user_ids``) and group ids to read for ``refs``."""
        users = {r.partition(":")[2] for r in refs if r.startswith("user:")} | set(user_ids)
        groups = {r.partition(":")[2] for r in refs if r.startswith("group:")}
        return sorted(users), sorted(groups)

    def remember(
        self, refs: list[str], users: Mapping[str, Any], groups: Mapping[str, Any]
    ) -> None:
        """Name every user and group ref of ``refs`` from the rows read, by id (a row may be an
        ORM object or a plain row with the same attributes)."""
        for ref in refs:
            kind, _, key = ref.partition(":")
            if ref in self._cache or kind not in ("user", "group"):
                continue
            self._cache[ref] = (self._user_name(users.get(key)) if kind == "user"
                                else self._group_name(groups.get(key)))  # fmt: skip

    @staticmethod
    def _user_name(user: User | None) -> str:
        if user is None:
            return "a user who no longer exists"
        shown = user.display_name or user.username
        return shown if shown == user.username else f"{shown} ({user.username})"

    @staticmethod
    def _group_name(group: Group | None) -> str:
        return f"group {group.name}" if group is not None else "a group that no longer exists"

    def _lookup(self, ref: str) -> str:
        kind, _, key = ref.partition(":")
        if kind == "user":
            return self._user_name(self._session.get(User, key))
        if kind == "group":
            return self._group_name(self._session.get(Group, key))
        return ref
