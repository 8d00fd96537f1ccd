"""The eligibility index: what access-flow scopes test about a resource, in indexed rows.

Derived from ``resources`` (never edited by hand): ``store.resource_index`` rewrites a
resource's rows whenever a flush writes its ``ou_path``, ``tags`` or ``attributes``, and the
foreign keys remove them with the resource. ``services.requestable`` compiles each flow's
scope into set operations over these tables instead of reading JSON text row by row.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
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
