"""Resource Owner lookup: who owns a resource, from the value of its owner tag.

An integration's *Resource Owner* setting names a tag key and the directory attribute its value
is matched against. This module answers, for one tag value, which users and groups own the
resource. Matching rules:

- ``group_name``: groups whose name equals the value, **case-insensitively**;
- ``user_email``: users whose email equals the value, **case-insensitively**;
- ``username``: users whose username equals the value, **case-insensitively**;
- ``user_attribute`` (e.g. ``department``): users whose attribute of that name (the name is
  matched case-insensitively) equals the value **exactly, after trimming** surrounding
  whitespace on both sides: attribute values are free text whose case may be meaningful.
  Only string attribute values take part; keys starting with ``_`` are reserved.

The tag value is trimmed first; an empty one owns nothing. Deactivated users are never owners.
No match is not an empty set but a :class:`NoOwner` carrying the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from grantflow.domain.integration_config import OwnerAttribute, ResourceOwner


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    username: str
    email: str | None = None
    active: bool = True
    attributes: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupView:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class DirectoryView:
    users: tuple[UserView, ...] = ()
    groups: tuple[GroupView, ...] = ()


@dataclass(frozen=True, slots=True)
class Owners:
    user_ids: frozenset[str] = frozenset()
    group_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NoOwner:
    reason: str


OwnerResult = Owners | NoOwner


def _fold(value: str | None) -> str:
    return (value or "").strip().casefold()


def _attribute(attributes: Mapping[str, object], name: str) -> str | None:
    wanted = name.strip().casefold()
    for key, value in attributes.items():
        if not key.startswith("_") and key.casefold() == wanted and isinstance(value, str):
            return value
    return None


def _describe(setting: ResourceOwner) -> str:
    if setting.attribute is OwnerAttribute.USER_ATTRIBUTE:
        return f"user attribute {setting.attribute_name!r}"
    return setting.attribute.value.replace("_", " ")


def _users_matching(users: Iterable[UserView], tag: str, setting: ResourceOwner) -> set[str]:
    if setting.attribute is OwnerAttribute.USER_EMAIL:
        return {u.id for u in users if u.active and _fold(u.email) == _fold(tag)}
    if setting.attribute is OwnerAttribute.USERNAME:
        return {u.id for u in users if u.active and _fold(u.username) == _fold(tag)}
    name = setting.attribute_name or ""
    return {
        u.id
        for u in users
        if u.active and (value := _attribute(u.attributes, name)) is not None
        if value.strip() == tag
    }


def resolve_owners(
    tag_value: str | None, setting: ResourceOwner, view: DirectoryView
) -> OwnerResult:
    """The owners named by ``tag_value`` (the resource's ``setting.tag_key`` tag) under the
    integration's Resource Owner ``setting``, or why there are none."""
    tag = (tag_value or "").strip()
    if not tag:
        return NoOwner("the owner tag is missing or empty")
    if setting.attribute is OwnerAttribute.GROUP_NAME:
        groups = frozenset(g.id for g in view.groups if _fold(g.name) == _fold(tag))
        if groups:
            return Owners(group_ids=groups)
        return NoOwner(f"no group is named {tag!r}")
    users = frozenset(_users_matching(view.users, tag, setting))
    if users:
        return Owners(user_ids=users)
    return NoOwner(f"no active user has {_describe(setting)} {tag!r}")
