"""IAM roles in a member account (resource type ``iam-role``; global)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from grantflow.aws.discovery.scope import (
    Raw,
    ReadScope,
    Tags,
    list_pages,
    tag_dict,
    translated,
)
from grantflow.aws.registry import MANAGEMENT_ROLE_NAME, MEMBER_ROLE_NAME
from grantflow.domain.inventory import ResourceRecord

TYPE_KEY = "iam-role"

# Roles nobody should be granted "assume" on, so they are not offered as resources:
# - service-linked roles (path /aws-service-role/) trust only their AWS service and cannot be
#   assumed by a person at all;
# - AWSReservedSSO_* roles (path /aws-reserved/sso.amazonaws.com/) are Identity Center's own
#   roles for permission sets; access to them is granted as account assignments (the
#   "AWS account" resource type), and their trust only allows Identity Center's SAML provider;
# - Grantflow's own roles: granting them would hand a requester the connector's discovery and
#   grant permissions.
SERVICE_LINKED_PATH = "/aws-service-role/"
RESERVED_SSO_PREFIX = "AWSReservedSSO_"
# The connector's role as the docs and `grantflow demo` name it; a connector running under
# another role adds its own name at each sync (``role_name_of`` its caller identity).
CONNECTOR_ROLE_NAME = "grantflow-connector"
GRANTFLOW_ROLE_NAMES = frozenset({MANAGEMENT_ROLE_NAME, MEMBER_ROLE_NAME, CONNECTOR_ROLE_NAME})


def role_name_of(arn: str) -> str | None:
    """The role name in a role ARN or an STS assumed-role ARN; None for anything else."""
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        return rest.split("/", 1)[0] or None
    if kind == "role":
        return rest.rsplit("/", 1)[-1] or None
    return None


@dataclass(frozen=True)
class RawRole:
    role: Raw
    tags: Sequence[Raw]


def is_grantable(role: Raw, own_role_names: Iterable[str] = GRANTFLOW_ROLE_NAMES) -> bool:
    name = str(role["RoleName"])
    path = str(role.get("Path", "/"))
    if path.startswith(SERVICE_LINKED_PATH) or path.startswith("/aws-reserved/"):
        return False
    return not name.startswith(RESERVED_SSO_PREFIX) and name not in set(own_role_names)


def get_roles(scope: ReadScope, own_role_names: Iterable[str]) -> list[RawRole]:
    """ListRoles, then ListRoleTags for each role kept (ListRoles does not return tags)."""
    iam: Any = scope.factory.client("iam")
    role_arn = scope.factory.role_arn
    owned = frozenset(own_role_names)
    roles = [
        role
        for page in list_pages(scope, TYPE_KEY)
        for role in page["Roles"]
        if is_grantable(role, owned)
    ]
    found: list[RawRole] = []
    with translated("iam:ListRoleTags", role_arn):
        for role in roles:
            pages = iam.get_paginator("list_role_tags").paginate(RoleName=role["RoleName"])
            found.append(RawRole(role, [tag for page in pages for tag in page["Tags"]]))
    return found


def transform_roles(raw: Iterable[RawRole], account_id: str) -> list[ResourceRecord]:
    return [_record(item.role, tag_dict(list(item.tags)), account_id) for item in raw]


def _record(role: Raw, tags: Tags, account_id: str) -> ResourceRecord:
    return ResourceRecord(
        type=TYPE_KEY,
        aws_id=str(role["RoleId"]),
        arn=str(role["Arn"]),
        name=str(role["RoleName"]),
        account_id=account_id,
        region=None,
        tags=tags,
        attributes={
            "path": str(role.get("Path", "/")),
            "description": str(role.get("Description", "")),
            "max_session_duration": int(role.get("MaxSessionDuration", 3600)),
        },
    )


def read_roles(
    scope: ReadScope, own_role_names: Iterable[str] = GRANTFLOW_ROLE_NAMES
) -> list[ResourceRecord]:
    return transform_roles(get_roles(scope, own_role_names), scope.account_id)
