"""Resolve each resource's owners from its Resource Owner tag, falling back to the
integration owners. The matching rules live in ``domain.owners``."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from grantflow.domain.integration_config import AwsOrganizationConfig, OwnerKind
from grantflow.domain.owners import (
    DirectoryView,
    GroupView,
    Owners,
    UserView,
    resolve_owners,
)
from grantflow.services.identity import principals
from grantflow.store.models import Group, Integration, Resource, User

TAG_SOURCE = "resource_owner_tag"
FALLBACK_SOURCE = "integration_owner"
IDENTITY_CENTER = "identity_center"
# The resource attributes owner resolution maintains (a sync keeps them: services.sync_ingest).
OWNER_KEYS = frozenset({"owner_source", "owner_note"})


def owner_groups(store: str | None) -> ColumnElement[bool]:
    """The groups an integration's owner settings may name: its own identity store's groups
    and the local and SCIM groups (directory ""), never another organization's."""
    local = and_(Group.directory == "", Group.source != IDENTITY_CENTER)
    return or_(local, Group.directory == store) if store else local


def group_named(session: Session, name: str, store: str | None) -> str | None:
    """The id of the group called ``name`` (case-insensitively) among ``owner_groups``; a
    name in both places is the integration's own group."""
    rows = session.execute(
        select(Group.id, Group.directory).where(
            owner_groups(store), func.lower(Group.name) == name.strip().lower()
        )
    ).all()
    return min(rows, key=lambda r: r.directory != store).id if rows else None


def directory_view(session: Session, store: str | None) -> DirectoryView:
    users = tuple(
        UserView(u.id, u.username, u.email, u.active, dict(u.attributes or {}))
        for u in session.scalars(select(User).where(User.deleted_at.is_(None)))
    )
    groups = tuple(
        GroupView(g.id, g.name) for g in session.scalars(select(Group).where(owner_groups(store)))
    )
    return DirectoryView(users=users, groups=groups)


def integration_owner_refs(session: Session, row: Integration) -> list[str]:
    """The integration owners' refs; group names resolve in the integration's directory."""
    config = AwsOrganizationConfig.model_validate(row.config)
    store = principals.store_of(row)
    refs: list[str] = []
    for owner in config.integration_owners:
        if owner.kind is OwnerKind.USER:
            found = session.scalar(
                select(User.id).where(
                    User.deleted_at.is_(None), func.lower(User.username) == owner.value.lower()
                )
            )
            if found:
                refs.append(f"user:{found}")
        elif (group_id := group_named(session, owner.value, store)) is not None:
            refs.append(f"group:{group_id}")
    return sorted(refs)


def _refs(owners: Owners) -> list[str]:
    return sorted([f"user:{u}" for u in owners.user_ids] + [f"group:{g}" for g in owners.group_ids])


def resolve_integration_owners(session: Session, row: Integration) -> None:
    config = AwsOrganizationConfig.model_validate(row.config)
    fallback = integration_owner_refs(session, row)
    setting = config.resource_owner
    view = directory_view(session, principals.store_of(row)) if setting else DirectoryView()
    for resource in _in_chunks(session, row.id):
        attributes = dict(resource.attributes or {})
        refs: list[str] = []
        if setting is not None:
            result = resolve_owners((resource.tags or {}).get(setting.tag_key), setting, view)
            if isinstance(result, Owners):
                refs = _refs(result)
                attributes["owner_source"] = TAG_SOURCE
            else:
                attributes["owner_note"] = result.reason
        if not refs:
            refs = fallback
            attributes["owner_source"] = FALLBACK_SOURCE if fallback else None
        if resource.owners != refs:
            resource.owners = refs
        if attributes != resource.attributes:
            resource.attributes = attributes


RESOLVE_CHUNK = 500  # resources held at once while resolving an integration's owners


def _in_chunks(session: Session, integration_id: str) -> Iterator[Resource]:
    """The integration's resources, ``RESOLVE_CHUNK`` at a time in id order: each chunk's
    changes are flushed and its rows let go of before the next is read, so resolving holds
    one chunk, not the whole organization (20,000 rows at 1,000 accounts)."""
    after = ""
    while True:
        chunk = list(
            session.scalars(
                select(Resource)
                .where(Resource.integration_id == integration_id, Resource.id > after)
                .order_by(Resource.id)
                .limit(RESOLVE_CHUNK)
            )
        )
        if not chunk:
            return
        yield from chunk
        session.flush()
        for resource in chunk:
            session.expunge(resource)
        after = chunk[-1].id
