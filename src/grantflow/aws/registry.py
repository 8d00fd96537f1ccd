"""Resource types as data: what Grantflow reads and grants in AWS, and the IAM actions it needs.

Every AWS call Grantflow makes is named here as a boto3 ``(service, operation)`` pair. The IAM
actions those calls need are derived with :func:`operation_to_action`, and the CloudFormation
template (:mod:`grantflow.aws.cloudformation`) is generated from them, so the template cannot
drift from the code: a test walks this registry and the generated template and compares the
two sets of actions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class AccountScope(StrEnum):
    """Which role reads a resource type: the management role or the member role."""

    MANAGEMENT = "management"
    MEMBER = "member"


class Regionality(StrEnum):
    GLOBAL = "global"
    REGIONAL = "regional"
    IDENTITY_CENTER = "identity-center"  # lives in the Identity Center home region only


class OperationKind(StrEnum):
    """How an operation touches AWS; the template scopes each kind differently."""

    READ = "read"
    CREATE = "create"  # creates a resource; scoped by the tags on the request
    WRITE = "write"  # changes an existing resource; scoped by the tags on the resource
    # gives or takes a principal's access (an account assignment, a group membership); scoped
    # to what the integration may grant: tagged permission sets, listed groups
    GRANT = "grant"


@dataclass(frozen=True)
class Operation:
    """One boto3 API operation, e.g. ``Operation("sso-admin", "CreateAccountAssignment")``."""

    service: str
    name: str
    kind: OperationKind = OperationKind.READ

    @property
    def action(self) -> str:
        return operation_to_action(self.service, self.name)


@dataclass(frozen=True)
class PermissionSpec:
    """Something that can be granted on a resource type."""

    key: str
    label: str
    description: str


@dataclass(frozen=True)
class GrantMechanism:
    """How a grant is provisioned in AWS, and every operation that takes."""

    key: str
    description: str
    operations: tuple[Operation, ...]

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(op.action for op in self.operations)


@dataclass(frozen=True)
class ResourceType:
    """One AWS resource type Grantflow syncs and grants access to."""

    key: str
    display_name: str
    service: str
    list_operation: str
    paginator: str  # the boto3 paginator name, i.e. the snake_case client method
    account_scope: AccountScope
    regionality: Regionality
    permissions: tuple[PermissionSpec, ...]
    read_operations: tuple[Operation, ...]
    grant: GrantMechanism
    permissions_from: str | None = None  # set when permissions are discovered, not fixed

    @property
    def list_action(self) -> str:
        """The IAM action of the call that lists this type (what its reader calls first)."""
        return operation_to_action(self.service, self.list_operation)

    @property
    def read_actions(self) -> frozenset[str]:
        return frozenset(op.action for op in self.read_operations)

    @property
    def grant_actions(self) -> frozenset[str]:
        return self.grant.actions


# IAM service prefixes that differ from boto3 service names.
_IAM_PREFIX = {"sso-admin": "sso"}

# Operations whose IAM action is not "<prefix>:<operation name>".
_ACTION_OVERRIDES = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}

# Operations AWS allows without any IAM permission; the template grants nothing for them.
UNAUTHORIZED_OPERATIONS = frozenset({("sts", "GetCallerIdentity")})


def operation_to_action(service: str, operation: str) -> str:
    """The IAM action a boto3 operation needs: ``("sso-admin", "ListInstances")`` → ``sso:…``."""
    override = _ACTION_OVERRIDES.get((service, operation))
    if override is not None:
        return override
    return f"{_IAM_PREFIX.get(service, service)}:{operation}"


def _ops(
    service: str, *names: str, kind: OperationKind = OperationKind.READ
) -> tuple[Operation, ...]:
    return tuple(Operation(service, name, kind) for name in names)


_READ, _CREATE, _WRITE, _GRANT = (
    OperationKind.READ,
    OperationKind.CREATE,
    OperationKind.WRITE,
    OperationKind.GRANT,
)

ACCOUNT_ASSIGNMENT = GrantMechanism(
    key="account-assignment",
    description="Identity Center account assignment of a permission set to a user (asynchronous)",
    operations=(
        *_ops("sso-admin", "CreateAccountAssignment", "DeleteAccountAssignment", kind=_GRANT),
        *_ops(
            "sso-admin",
            "DescribeAccountAssignmentCreationStatus",
            "DescribeAccountAssignmentDeletionStatus",
            "ListAccountAssignments",
            # batched reads: many grants' existence checks and status polls in one call each
            "ListAccountAssignmentsForPrincipal",
            "ListAccountAssignmentCreationStatus",
            "ListAccountAssignmentDeletionStatus",
        ),
    ),
)

GROUP_MEMBERSHIP = GrantMechanism(
    key="group-membership",
    description="Identity Store group membership",
    operations=(
        *_ops("identitystore", "CreateGroupMembership", "DeleteGroupMembership", kind=_GRANT),
        *_ops("identitystore", "GetGroupMembershipId"),
    ),
)

# Permission sets generated by Grantflow carry this tag; the template only lets the connector
# change permission sets that carry it, and create none without it (grantflow.aws.cloudformation).
MANAGED_TAG_KEY = "grantflow:managed"
MANAGED_TAG_VALUE = "true"
# A customer's own permission set that Grantflow may assign (AWS-account grants) carries this
# tag, put there by an admin: the connector may tag nothing (no sso:TagResource) and may create
# permission sets with the managed tag only, so it cannot make a permission set assignable.
ASSIGNABLE_TAG_KEY = "grantflow:assignable"
ASSIGNABLE_TAG_VALUE = "true"

POOLED_PERMISSION_SET = GrantMechanism(
    key="pooled-permission-set",
    description=(
        "A Grantflow-owned permission set per (resource, permission) with an inline policy, "
        "provisioned to the resource's account and assigned to the user; reused across users "
        "and deleted when no grant uses it"
    ),
    operations=(
        *_ops("sso-admin", "CreatePermissionSet", kind=_CREATE),
        *_ops(
            "sso-admin",
            "PutInlinePolicyToPermissionSet",
            "DeleteInlinePolicyFromPermissionSet",
            "ProvisionPermissionSet",
            "DeletePermissionSet",
            kind=_WRITE,
        ),
        *_ops(
            "sso-admin",
            "DescribePermissionSetProvisioningStatus",
            "ListPermissionSets",
            "DescribePermissionSet",
            "GetInlinePolicyForPermissionSet",
            "ListAccountsForProvisionedPermissionSet",
        ),
        *ACCOUNT_ASSIGNMENT.operations,
    ),
)

# Reading the Identity Center directory (users, groups, memberships) in the management account.
DIRECTORY_SYNC: tuple[Operation, ...] = (
    *_ops("sso-admin", "ListInstances"),
    *_ops("identitystore", "ListUsers", "ListGroups", "ListGroupMemberships"),
)

# Finding the regions to read regional resources in, with the member role.
MEMBER_REGION_DISCOVERY: tuple[Operation, ...] = _ops("ec2", "DescribeRegions")

# Session audit: reading the organization trail's log files, only in the bucket the admin
# names (template parameter AuditBucketName).
SESSION_AUDIT: tuple[Operation, ...] = _ops("s3", "ListObjectsV2", "GetObject")

# The management role assumes the member role (connector → management → member).
ROLE_CHAINING: tuple[Operation, ...] = _ops("sts", "AssumeRole")

MANAGEMENT_ROLE_NAME = "GrantflowManagementRole"
MEMBER_ROLE_NAME = "GrantflowMemberRole"

_ASSUME = PermissionSpec("assume", "Assume role", "Assume the IAM role from the AWS console")
_CONNECT = PermissionSpec("connect", "Connect", "IAM database authentication (rds-db:connect)")

REGISTRY: tuple[ResourceType, ...] = (
    ResourceType(
        key="aws-account",
        display_name="AWS account",
        service="organizations",
        list_operation="ListAccounts",
        paginator="list_accounts",
        account_scope=AccountScope.MANAGEMENT,
        regionality=Regionality.GLOBAL,
        permissions=(),
        permissions_from="Identity Center permission sets",
        read_operations=(
            *_ops(
                "organizations",
                "DescribeOrganization",
                "ListRoots",
                "ListOrganizationalUnitsForParent",
                "ListAccounts",
                "ListAccountsForParent",
                "ListParents",
                "ListTagsForResource",
            ),
            *_ops("sso-admin", "ListInstances", "ListPermissionSets", "DescribePermissionSet"),
        ),
        grant=ACCOUNT_ASSIGNMENT,
    ),
    ResourceType(
        key="identity-center-group",
        display_name="Identity Center group",
        service="identitystore",
        list_operation="ListGroups",
        paginator="list_groups",
        account_scope=AccountScope.MANAGEMENT,
        regionality=Regionality.IDENTITY_CENTER,
        permissions=(PermissionSpec("member", "Member", "Membership of the group"),),
        read_operations=DIRECTORY_SYNC,
        grant=GROUP_MEMBERSHIP,
    ),
    ResourceType(
        key="iam-role",
        display_name="IAM role",
        service="iam",
        list_operation="ListRoles",
        paginator="list_roles",
        account_scope=AccountScope.MEMBER,
        regionality=Regionality.GLOBAL,
        permissions=(_ASSUME,),
        read_operations=_ops("iam", "ListRoles", "ListRoleTags"),
        grant=POOLED_PERMISSION_SET,
    ),
    ResourceType(
        key="s3-bucket",
        display_name="S3 bucket",
        service="s3",
        list_operation="ListBuckets",
        paginator="list_buckets",
        account_scope=AccountScope.MEMBER,
        regionality=Regionality.GLOBAL,
        permissions=(
            PermissionSpec("read-only", "Read only", "List the bucket and read its objects"),
            PermissionSpec("read-write", "Read and write", "Read, write and delete objects"),
        ),
        read_operations=_ops("s3", "ListBuckets", "GetBucketTagging", "GetBucketLocation"),
        grant=POOLED_PERMISSION_SET,
    ),
    ResourceType(
        key="ec2-instance",
        display_name="EC2 instance",
        service="ec2",
        list_operation="DescribeInstances",
        paginator="describe_instances",
        account_scope=AccountScope.MEMBER,
        regionality=Regionality.REGIONAL,
        permissions=(
            PermissionSpec("session", "Session", "Shell session through SSM Session Manager"),
        ),
        read_operations=(
            *_ops("ec2", "DescribeInstances"),
            *MEMBER_REGION_DISCOVERY,
            *_ops("ssm", "DescribeInstanceInformation"),
        ),
        grant=POOLED_PERMISSION_SET,
    ),
    ResourceType(
        key="rds-instance",
        display_name="RDS instance",
        service="rds",
        list_operation="DescribeDBInstances",
        paginator="describe_db_instances",
        account_scope=AccountScope.MEMBER,
        regionality=Regionality.REGIONAL,
        permissions=(_CONNECT,),
        read_operations=(
            *_ops("rds", "DescribeDBInstances", "ListTagsForResource"),
            *MEMBER_REGION_DISCOVERY,
        ),
        grant=POOLED_PERMISSION_SET,
    ),
    ResourceType(
        key="rds-cluster",
        display_name="RDS cluster",
        service="rds",
        list_operation="DescribeDBClusters",
        paginator="describe_db_clusters",
        account_scope=AccountScope.MEMBER,
        regionality=Regionality.REGIONAL,
        permissions=(_CONNECT,),
        read_operations=(
            *_ops("rds", "DescribeDBClusters", "ListTagsForResource"),
            *MEMBER_REGION_DISCOVERY,
        ),
        grant=POOLED_PERMISSION_SET,
    ),
)

GRANT_MECHANISMS: tuple[GrantMechanism, ...] = (
    ACCOUNT_ASSIGNMENT,
    GROUP_MEMBERSHIP,
    POOLED_PERMISSION_SET,
)


def resource_type(key: str) -> ResourceType:
    """The descriptor for ``key``; ``KeyError`` when there is none."""
    for descriptor in REGISTRY:
        if descriptor.key == key:
            return descriptor
    raise KeyError(key)


def _actions(operations: Iterable[Operation]) -> frozenset[str]:
    return frozenset(
        op.action for op in operations if (op.service, op.name) not in UNAUTHORIZED_OPERATIONS
    )


def management_read_actions() -> frozenset[str]:
    """Discovery actions of the management role (not counting role chaining)."""
    ops = [
        op
        for rt in REGISTRY
        if rt.account_scope is AccountScope.MANAGEMENT
        for op in rt.read_operations
    ]
    return _actions([*ops, *DIRECTORY_SYNC])


def member_read_actions() -> frozenset[str]:
    """Discovery actions of the read-only member role in every member account."""
    ops = [
        op
        for rt in REGISTRY
        if rt.account_scope is AccountScope.MEMBER
        for op in rt.read_operations
    ]
    return _actions([*ops, *MEMBER_REGION_DISCOVERY])


def role_chaining_actions() -> frozenset[str]:
    return _actions(ROLE_CHAINING)


def session_audit_actions() -> frozenset[str]:
    return _actions(SESSION_AUDIT)


def all_read_actions() -> frozenset[str]:
    return (
        management_read_actions()
        | member_read_actions()
        | role_chaining_actions()
        | session_audit_actions()
    )


def all_grant_actions() -> frozenset[str]:
    return _actions(op for mechanism in GRANT_MECHANISMS for op in mechanism.operations)


def all_operations() -> frozenset[Operation]:
    """Every operation the registry names, reads and grants alike."""
    ops: set[Operation] = {
        *DIRECTORY_SYNC,
        *MEMBER_REGION_DISCOVERY,
        *ROLE_CHAINING,
        *SESSION_AUDIT,
    }
    for rt in REGISTRY:
        ops.update(rt.read_operations)
        ops.add(Operation(rt.service, rt.list_operation))
    for mechanism in GRANT_MECHANISMS:
        ops.update(mechanism.operations)
    return frozenset(ops)
