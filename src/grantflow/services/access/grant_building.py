"""Turn a (user, resource, permission) into the connector's GrantSpec, its tuple key, and
the sign-in details the requester sees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    GroupMembershipSpec,
    PooledPermission,
    PooledPermissionSetSpec,
    PooledResourceType,
)
from grantflow.domain.integration_config import AwsOrganizationConfig
from grantflow.services.errors import Conflict, Invalid
from grantflow.services.identity import principals
from grantflow.store.models import Integration, Permission, Resource, User


@dataclass(frozen=True)
class BuiltGrant:
    spec: dict[str, Any]
    tuple_key: str


def _identity(row: Integration) -> tuple[str, str]:
    facts = row.facts or {}
    instance, store = facts.get("instance_arn"), facts.get("identity_store_id")
    if not instance or not store:
        raise Conflict(
            "the integration has not discovered its Identity Center instance yet; wait for "
            "its first successful sync"
        )
    return str(instance), str(store)


def build(
    session: Session, row: Integration, user: User, resource: Resource, permission: str
) -> BuiltGrant:
    instance, store = _identity(row)
    found = principals.grant_principal(session, user, row)
    if found is None:
        raise Invalid(
            f"{user.username} cannot receive AWS grants in {row.name}: no active user of its "
            "Identity Center matches their username or email", field="requester",
        )  # fmt: skip
    principal = found.principal_id
    config = AwsOrganizationConfig.model_validate(row.config)
    base: dict[str, Any] = {
        "instance_arn": instance,
        "identity_store_id": store,
        "principal_id": principal,
        "identity_center_region": config.sso_region,
    }
    if resource.type == "aws-account":
        ps_arn = session.scalar(
            select(Permission.aws_ref).where(
                Permission.integration_id == row.id,
                Permission.resource_type == "aws-account",
                Permission.name == permission,
            )
        )
        if not ps_arn:
            raise Invalid(f"no permission set named {permission!r}", field="permission")
        spec = AccountAssignmentSpec(**base, account_id=resource.aws_id, permission_set_arn=ps_arn)
        return BuiltGrant(
            spec.model_dump(mode="json"), f"aa|{resource.aws_id}|{ps_arn}|{principal}"
        )
    if resource.type == "identity-center-group":
        group = GroupMembershipSpec(**base, group_id=resource.aws_id)
        return BuiltGrant(group.model_dump(mode="json"), f"gm|{resource.aws_id}|{principal}")
    pooled = PooledPermissionSetSpec(
        **base,
        resource_type=PooledResourceType(resource.type),
        resource_arn=resource.arn or "",
        resource_id=str((resource.attributes or {}).get("resource_id") or resource.aws_id),
        account_id=resource.account_id or "",
        region=resource.region if resource.type != "s3-bucket" else None,
        permission=PooledPermission(permission),
    )
    key = f"ps|{resource.account_id}|{resource.arn}|{permission}|{principal}"
    return BuiltGrant(pooled.model_dump(mode="json"), key)


def access_details(
    row: Integration, handle: dict[str, Any], resource: Resource | None, permission: str
) -> dict[str, Any]:
    """Sign-in link, `aws configure sso` profile and the integration's custom details."""
    config = AwsOrganizationConfig.model_validate(row.config)
    account = resource.account_id if resource is not None else None
    role = handle.get("permission_set_name")
    if resource is not None and resource.type == "aws-account":
        account, role = resource.aws_id, permission
    details: dict[str, Any] = {"custom_access_details": config.custom_access_details}
    if account and role:
        details["sign_in_url"] = (
            f"{config.sso_portal}/#/console?account_id={account}&role_name={quote(role)}"
        )
        details["cli_profile"] = (
            f"[profile grantflow-{account}-{role}]\n"
            f"sso_start_url = {config.sso_portal}\n"
            f"sso_region = {config.sso_region}\n"
            f"sso_account_id = {account}\n"
            f"sso_role_name = {role}\n"
            f"region = {config.region}"
        )
    else:
        details["sign_in_url"] = config.sso_portal
    return details
