"""PATCH bodies: an omitted field keeps its value, and ``null`` is refused where the stored
value cannot be empty (a name, a definition, a flag).

Declare such a field as ``X | SkipJsonSchema[None] = None`` (so the schema does not offer
null) and attach ``refuse_null`` to it with ``field_validator(..., mode="before")``.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def refuse_null(value: T | None) -> T:
    if value is None:
        raise ValueError("may not be null; omit the field to keep its value")
    return value
