"""Approvers by name, for the pages: ``user:<id>`` and ``group:<id>`` refs as people read them
("Ada Lovelace (ada)", "group platform"). Names are for display only; decisions bind by id."""

from __future__ import annotations

from collections.abc import Iterable

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

    def _lookup(self, ref: str) -> str:
        kind, _, key = ref.partition(":")
        if kind == "user":
            user = self._session.get(User, key)
            if user is None:
                return "a user who no longer exists"
            shown = user.display_name or user.username
            return shown if shown == user.username else f"{shown} ({user.username})"
        if kind == "group":
            group = self._session.get(Group, key)
            return f"group {group.name}" if group is not None else "a group that no longer exists"
        return ref
