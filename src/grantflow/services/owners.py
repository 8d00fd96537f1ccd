"""Resolve each resource's owners from its Resource Owner tag, falling back to the
integration owners. The matching rules live in ``domain.owners``."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.domain.integration_config import AwsOrganizationConfig, OwnerKind
from grantflow.domain.owners import (
    DirectoryView,
    GroupView,
    OwnerAttribute,
    OwnerAttributeKind,
    Owners,
    UserView,
    resolve_owners,
)
from grantflow.store.models import Group, Integration, Resource, User

TAG_SOURCE = "resource_owner_tag"
FALLBACK_SOURCE = "integration_owner"


def directory_view(session: Session) -> DirectoryView:
    users = tuple(
        UserView(u.id, u.username, u.email, u.active, dict(u.attributes or {}))
        for u in session.scalars(select(User).where(User.deleted_at.is_(None)))
    )
    groups = tuple(GroupView(g.id, g.name) for g in session.scalars(select(Group)))
    return DirectoryView(users=users, groups=groups)


def integration_owner_refs(session: Session, config: AwsOrganizationConfig) -> list[str]:
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
        else:
            found = session.scalar(
                select(Group.id).where(func.lower(Group.name) == owner.value.lower())
            )
            if found:
                refs.append(f"group:{found}")
    return sorted(refs)


def _refs(owners: Owners) -> list[str]:
    return sorted([f"user:{u}" for u in owners.user_ids] + [f"group:{g}" for g in owners.group_ids])


def resolve_integration_owners(session: Session, row: Integration) -> None:
    config = AwsOrganizationConfig.model_validate(row.config)
    fallback = integration_owner_refs(session, config)
    setting = config.resource_owner
    attr = None
    if setting is not None:
        attr = OwnerAttribute(OwnerAttributeKind(setting.attribute.value), setting.attribute_name)
    view = directory_view(session) if attr else DirectoryView()
    for resource in session.scalars(select(Resource).where(Resource.integration_id == row.id)):
        attributes = dict(resource.attributes or {})
        refs: list[str] = []
        if attr is not None and setting is not None:
            result = resolve_owners((resource.tags or {}).get(setting.tag_key), attr, view)
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
