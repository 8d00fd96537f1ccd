"""A column matching a list of ids, as one statement whatever the list's length."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def any_of(session: Session, column: Any, ids: Iterable[str]) -> ColumnElement[bool]:
    """``column IN ids``; on PostgreSQL ``column = ANY(:ids)``, one array parameter: the same
    statement text whatever the page's length (compiled and prepared once; a 100-id ``IN``
    rendered and parsed 100 parameters per call, ~1.5 ms a statement)."""
    values = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(String)))  # type: ignore[no-any-return]
    # one expanding parameter, not a literal per value (coercing 100 ids cost ~0.2 ms)
    return column.in_(bindparam(None, values, expanding=True))  # type: ignore[no-any-return]
