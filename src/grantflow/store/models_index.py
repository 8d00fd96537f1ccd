"""The eligibility index: what access-flow scopes test about a resource, in indexed rows.

Derived from ``resources`` (never edited by hand): ``store.resource_index`` rewrites a
resource's rows whenever a flush writes its ``ou_path``, ``tags`` or ``attributes``, and the
foreign keys remove them with the resource. ``services.requestable`` compiles each flow's
scope into set operations over these tables instead of reading JSON text row by row.

``eligibility_generation`` is one row naming the current state of all this: a new random token
is written in the same transaction as every change to resources or the index, so an in-process
cache labelled with a token (``services.access.eligibility_cache``) is never served once the
data it was built from has changed.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, ForeignKey, Index, Integer, String, Table, event, insert
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.store.models import Base

# Longer OU ids, tag keys or values are not indexed: no scope can name them (a flow's tag key
# is at most 128 characters, its value 256); a longer tag value still counts for "any value".
MAX_INDEXED = 512


class ResourceOu(Base):
    """Each OU a resource is under (every entry of its ``ou_path``, the root included)."""

    __tablename__ = "resource_ous"
    __table_args__ = (Index("ix_resource_ous_ou", "ou_id", "resource_id"),)
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    ou_id: Mapped[str] = mapped_column(String(MAX_INDEXED), primary_key=True)


class ResourceTag(Base):
    """One tag of a resource; ``value`` is None when it is too long to be named by a flow."""

    __tablename__ = "resource_tags"
    __table_args__ = (Index("ix_resource_tags_key_value", "key", "value", "resource_id"),)
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(MAX_INDEXED), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(MAX_INDEXED))


class InactiveResource(Base):
    """A resource in a suspended or closed account (``attributes.account_status``): nothing
    in it is requestable."""

    __tablename__ = "inactive_resources"
    resource_id: Mapped[str] = mapped_column(
        ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True
    )


class EligibilityGeneration(Base):
    """The one row (``id`` 1) whose ``token`` changes with every write to resources or the
    index (``store.resource_index.bump``). A random token, not a counter: a counter's value
    comes back after a rolled-back change, and a cache built inside that transaction would
    then be taken for the state that follows."""

    __tablename__ = "eligibility_generation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32))


def new_token() -> str:
    return uuid.uuid4().hex


def _first_row(table: Table, connection: Connection, **_kw: Any) -> None:
    connection.execute(insert(table).values(id=1, token=new_token()))


event.listen(EligibilityGeneration.__table__, "after_create", _first_row)
