"""Read IAM Identity Center with the management role: instance, permission sets, directory.

* ``sso-admin:ListInstances`` finds the organization's instance (the one the management
  account owns, in the SSO region);
* ``ListPermissionSets`` + ``DescribePermissionSet`` give the permission sets
  (:class:`~grantflow.domain.inventory.PermissionSetRecord`), Grantflow's own ones flagged;
* the Identity Store's ``ListUsers``, ``ListGroups`` and ``ListGroupMemberships`` give the
  :class:`~grantflow.domain.inventory.DirectorySnapshot`, and each group is also a resource of
  type ``identity-center-group``.

Everything is paginated. Errors are raised translated: a sync cannot go on without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grantflow.aws.discovery.scope import Raw, translated
from grantflow.aws.errors import NotFound
from grantflow.aws.pooled_policies import is_pooled_name
from grantflow.aws.session import ClientFactory
from grantflow.domain.inventory import (
    DirectoryGroup,
    DirectorySnapshot,
    DirectoryUser,
    PermissionSetRecord,
    ResourceRecord,
)

GROUP_TYPE_KEY = "identity-center-group"
# Pooled permission sets that Grantflow creates carry a name prefix (and the tag
# grantflow:managed=true, see registry.MANAGED_TAG_KEY). Discovery flags them by name: reading
# the tag would need sso:ListTagsForResource, which the template does not grant (and which
# moto 5.2.5 does not implement).
# Optional user fields copied into DirectoryUser.attributes when present (moto keeps these;
# it drops the enterprise extension, so "department" only appears against real AWS).
_USER_FIELDS = ("Title", "UserType", "PreferredLanguage", "Locale", "Timezone", "NickName")


@dataclass(frozen=True)
class Instance:
    arn: str
    identity_store_id: str
    owner_account_id: str | None


@dataclass(frozen=True)
class RawGroup:
    group: Raw
    member_user_ids: tuple[str, ...]


@dataclass(frozen=True)
class IdentityCenterRead:
    directory: DirectorySnapshot
    permission_sets: tuple[PermissionSetRecord, ...]
    group_records: tuple[ResourceRecord, ...]


def _pages(client: Any, operation: str, page_size: int | None, **params: object) -> Iterator[Raw]:
    config = {"PaginationConfig": {"PageSize": page_size}} if page_size else {}
    pages: Iterator[Raw] = client.get_paginator(operation).paginate(**params, **config)
    return pages


def get_instances(factory: ClientFactory, region: str) -> list[Raw]:
    sso: Any = factory.client("sso-admin", region=region)
    with translated("sso:ListInstances", factory.role_arn):
        return [
            i for page in sso.get_paginator("list_instances").paginate() for i in page["Instances"]
        ]


def pick_instance(instances: Sequence[Raw], management_account_id: str, region: str) -> Instance:
    """The organization instance: owned by the management account, else the only one."""
    if not instances:
        raise NotFound(
            f"sso:ListInstances found no IAM Identity Center instance in {region}: enable "
            "IAM Identity Center for the organization, or set the integration's AWS SSO Region "
            "to the region where it is enabled",
            action="sso:ListInstances",
        )
    owned = [i for i in instances if i.get("OwnerAccountId") == management_account_id]
    chosen = (owned or list(instances))[0]
    return Instance(
        arn=str(chosen["InstanceArn"]),
        identity_store_id=str(chosen["IdentityStoreId"]),
        owner_account_id=chosen.get("OwnerAccountId"),
    )


def get_permission_sets(
    factory: ClientFactory, region: str, instance_arn: str, page_size: int | None = None
) -> list[Raw]:
    sso: Any = factory.client("sso-admin", region=region)
    with translated("sso:ListPermissionSets", factory.role_arn):
        arns = [
            arn
            for page in _pages(sso, "list_permission_sets", page_size, InstanceArn=instance_arn)
            for arn in page["PermissionSets"]
        ]
    with translated("sso:DescribePermissionSet", factory.role_arn):
        return [
            sso.describe_permission_set(InstanceArn=instance_arn, PermissionSetArn=arn)[
                "PermissionSet"
            ]
            for arn in arns
        ]


def transform_permission_sets(raw: Iterable[Raw]) -> tuple[PermissionSetRecord, ...]:
    return tuple(
        PermissionSetRecord(
            arn=str(ps["PermissionSetArn"]),
            name=str(ps["Name"]),
            description=str(ps.get("Description", "")),
            managed_by_grantflow=is_pooled_name(str(ps["Name"])),
        )
        for ps in raw
    )


def _list_store(
    factory: ClientFactory, region: str, store_id: str, what: str, page_size: int | None
) -> list[Raw]:
    """Every item of ``List<what>`` (``Users``, ``Groups``) in the identity store."""
    store: Any = factory.client("identitystore", region=region)
    with translated(f"identitystore:List{what}", factory.role_arn):
        pages = _pages(store, f"list_{what.lower()}", page_size, IdentityStoreId=store_id)
        return [item for page in pages for item in page[what]]


def get_users(
    factory: ClientFactory, region: str, store_id: str, page_size: int | None = None
) -> list[Raw]:
    return _list_store(factory, region, store_id, "Users", page_size)


def get_groups(
    factory: ClientFactory, region: str, store_id: str, page_size: int | None = None
) -> list[RawGroup]:
    groups = _list_store(factory, region, store_id, "Groups", page_size)
    store: Any = factory.client("identitystore", region=region)
    found: list[RawGroup] = []
    with translated("identitystore:ListGroupMemberships", factory.role_arn):
        for group in groups:
            pages = _pages(
                store,
                "list_group_memberships",
                page_size,
                IdentityStoreId=store_id,
                GroupId=group["GroupId"],
            )
            members = tuple(
                str(m["MemberId"]["UserId"])
                for page in pages
                for m in page["GroupMemberships"]
                if "UserId" in m.get("MemberId", {})
            )
            found.append(RawGroup(group, members))
    return found


def _primary_email(emails: object) -> str | None:
    if not isinstance(emails, list) or not emails:
        return None
    primary = [e for e in emails if e.get("Primary")]
    value = (primary or emails)[0].get("Value")
    return str(value) if value else None


def _user_attributes(user: Raw) -> dict[str, str]:
    attributes = {field.lower(): str(user[field]) for field in _USER_FIELDS if user.get(field)}
    name: Mapping[str, Any] = user.get("Name") or {}
    for key in ("GivenName", "FamilyName"):
        if name.get(key):
            attributes[key[0].lower() + key[1:]] = str(name[key])
    enterprise = (user.get("Extensions") or {}).get("aws:identitystore:enterprise") or {}
    for key in ("department", "costCenter", "organization", "division"):
        if enterprise.get(key):
            attributes[key] = str(enterprise[key])
    return attributes


def transform_users(raw: Iterable[Raw]) -> list[DirectoryUser]:
    return [
        DirectoryUser(
            identity_store_user_id=str(user["UserId"]),
            username=str(user["UserName"]),
            email=_primary_email(user.get("Emails")),
            display_name=str(user.get("DisplayName") or user["UserName"]),
            active=user.get("UserStatus", "ENABLED") != "DISABLED",
            attributes=_user_attributes(user),
        )
        for user in raw
    ]


def transform_groups(raw: Iterable[RawGroup]) -> list[DirectoryGroup]:
    return [
        DirectoryGroup(
            identity_store_group_id=str(item.group["GroupId"]),
            name=str(item.group.get("DisplayName", "")),
            description=str(item.group.get("Description", "")),
            member_user_ids=list(item.member_user_ids),
        )
        for item in raw
    ]


def transform_group_records(
    groups: Iterable[DirectoryGroup], store_id: str, account_id: str, region: str
) -> tuple[ResourceRecord, ...]:
    return tuple(
        ResourceRecord(
            type=GROUP_TYPE_KEY,
            aws_id=group.identity_store_group_id,
            arn=f"arn:aws:identitystore:::group/{group.identity_store_group_id}",
            name=group.name,
            account_id=account_id,
            region=region,
            attributes={
                "description": group.description,
                "identity_store_id": store_id,
                "member_count": len(group.member_user_ids),
            },
        )
        for group in groups
    )


def read_identity_center(
    factory: ClientFactory, region: str, management_account_id: str, page_size: int | None = None
) -> IdentityCenterRead:
    instance = pick_instance(get_instances(factory, region), management_account_id, region)
    store_id = instance.identity_store_id
    groups = transform_groups(get_groups(factory, region, store_id, page_size))
    directory = DirectorySnapshot(
        identity_store_id=store_id,
        instance_arn=instance.arn,
        users=transform_users(get_users(factory, region, store_id, page_size)),
        groups=groups,
    )
    permission_sets = transform_permission_sets(
        get_permission_sets(factory, region, instance.arn, page_size)
    )
    records = transform_group_records(groups, store_id, management_account_id, region)
    return IdentityCenterRead(directory, permission_sets, records)
