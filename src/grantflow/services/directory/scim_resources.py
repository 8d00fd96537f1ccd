"""SCIM resources (scim2-models) <-> directory rows, and the service's self-description.

A SCIM user's full representation is kept in ``User.attributes["_scim"]`` (everything but
``id``, ``meta``, the read-only ``groups`` and the write-only ``password``, which is discarded:
SCIM users sign in through their IdP), so whatever the IdP wrote reads back unchanged. The
columns Grantflow works with are derived from it on every write: ``userName`` → username,
``displayName`` (else ``name.formatted``) → display_name, the primary (else first) email →
email, ``externalId``, ``active`` (unassigned reads as active), and the flat directory
attributes used for Resource Owner lookup (``title``, ``userType`` and every enterprise
extension attribute; ``manager`` is the manager's id). Groups are their columns plus members.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime
from typing import Any

from scim2_models import (
    URI,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    GroupMember,
    GroupMembership,
    Meta,
    Pagination,
    Patch,
    Reference,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

from grantflow.store.models import Group as GroupRow
from grantflow.store.models import User as UserRow

ScimUser = User[EnterpriseUser]
ScimGroup = Group
SCIM_KEY = "_scim"
MAX_RESULTS = 200
FLAT_CORE = ("title", "userType")
FLAT_ENTERPRISE = ("employeeNumber", "costCenter", "organization", "division", "department")
DOC_EXCLUDED = ("id", "meta", "groups", "password")

# Unknown attributes are ignored (RFC 7644 §3.3 lets a provider drop what it does not
# support); a PATCH ``remove`` carrying a value removes the matching entries, as Entra sends.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
)


def service_provider_config(docs_url: str) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=Reference[URI](docs_url),
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        pagination=Pagination(cursor=False, index=True, default_page_size=100),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="A Grantflow SCIM token (POST /api/v1/scim/tokens)",
                primary=True,
            )
        ],
    )


@functools.lru_cache(maxsize=8)
def provider(docs_url: str) -> ScimProvider:
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(ScimUser), ResourceType.from_resource(Group)],
        config=service_provider_config(docs_url),
        policy=POLICY,
    )


def version_of(payload: dict[str, Any]) -> str:
    """A weak ETag over the representation (meta aside)."""
    body = {k: v for k, v in payload.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def _meta(kind: str, location: str, created: datetime, modified: datetime) -> Meta:
    return Meta(resource_type=kind, created=created, last_modified=modified, location=location)


def _stamp(resource: ScimUser | ScimGroup) -> None:
    assert resource.meta is not None
    resource.meta.version = version_of(
        resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    )


def user_resource(row: UserRow, groups: list[GroupRow], base: str) -> ScimUser:
    doc = dict(row.attributes.get(SCIM_KEY) or {})
    doc["userName"] = row.username
    doc["externalId"] = row.external_id
    if "active" in doc or not row.active:
        doc["active"] = row.active
    user = ScimUser.model_validate(doc, scim_policy=POLICY)
    user.id = row.id
    user.groups = [
        GroupMembership(value=g.id, ref=f"{base}/Groups/{g.id}", display=g.name, type="direct")
        for g in groups
    ] or None
    user.meta = _meta("User", f"{base}/Users/{row.id}", row.created_at, row.updated_at)
    _stamp(user)
    return user


def group_resource(row: GroupRow, member_ids: list[str], base: str) -> ScimGroup:
    group = ScimGroup(
        id=row.id,
        display_name=row.name,
        external_id=row.external_id,
        members=[
            GroupMember(value=uid, ref=f"{base}/Users/{uid}", type="User") for uid in member_ids
        ]
        or None,
    )
    group.meta = _meta("Group", f"{base}/Groups/{row.id}", row.created_at, row.updated_at)
    _stamp(group)
    return group


def _primary_email(user: ScimUser) -> str | None:
    emails = [e for e in user.emails or [] if e.value]
    chosen = next((e for e in emails if e.primary), emails[0] if emails else None)
    return str(chosen.value) if chosen else None


def _flat_attributes(user: ScimUser) -> dict[str, Any]:
    doc = user.model_dump(mode="json", scim_ctx=None, by_alias=True, exclude_none=True)
    flat = {k: doc[k] for k in FLAT_CORE if isinstance(doc.get(k), str)}
    enterprise = user[EnterpriseUser]
    if enterprise is not None:
        ext = enterprise.model_dump(mode="json", scim_ctx=None, by_alias=True, exclude_none=True)
        flat.update({k: ext[k] for k in FLAT_ENTERPRISE if isinstance(ext.get(k), str)})
        if enterprise.manager is not None and enterprise.manager.value:
            flat["manager"] = enterprise.manager.value
    return flat


def store_user(row: UserRow, user: ScimUser) -> None:
    """Write a validated SCIM user into its row (columns derived, document kept)."""
    doc = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    doc = {k: v for k, v in doc.items() if k not in DOC_EXCLUDED}
    row.username = str(user.user_name)
    row.external_id = user.external_id
    name = user.name.formatted if user.name else None
    row.display_name = user.display_name or name or ""
    row.email = _primary_email(user)
    row.active = user.active is not False
    row.attributes = {**_flat_attributes(user), SCIM_KEY: doc}
