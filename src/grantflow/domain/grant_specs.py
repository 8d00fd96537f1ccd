"""The wire format of grants between the control plane and the connector (pure, no I/O).

* A :data:`GrantSpec` describes ONE item to provision: an account assignment of an existing
  permission set, a group membership, or an assignment of a Grantflow-owned *pooled*
  permission set generated for one (resource, permission).
* A :class:`GrantHandle` says what the connector did, so that the grant can be undone later:
  the concrete ``(account, permission set ARN, principal)`` tuple or the membership, whether it
  already existed before Grantflow touched it (then revocation never removes it), and the
  pooled permission set.
* A :class:`Plan` is the list of typed steps a grant or revocation will take; a dry run shows
  it, and the connector applies exactly the plan it computed.
* :func:`diff` is the desired-vs-actual comparison that reconciliation shares with planning.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
AccountId = Annotated[str, Field(pattern=ACCOUNT_ID_PATTERN)]
NonEmpty = Annotated[str, Field(min_length=1)]


class GrantKind(StrEnum):
    ACCOUNT_ASSIGNMENT = "account_assignment"
    GROUP_MEMBERSHIP = "group_membership"
    POOLED_PERMISSION_SET = "pooled_permission_set"


class PooledResourceType(StrEnum):
    """Resource types granted through a pooled permission set (registry keys)."""

    S3_BUCKET = "s3-bucket"
    EC2_INSTANCE = "ec2-instance"
    RDS_INSTANCE = "rds-instance"
    RDS_CLUSTER = "rds-cluster"
    IAM_ROLE = "iam-role"


class PooledPermission(StrEnum):
    READ_ONLY = "read-only"
    READ_WRITE = "read-write"
    SESSION = "session"
    CONNECT = "connect"
    ASSUME = "assume"


POOLED_PERMISSIONS: dict[PooledResourceType, frozenset[PooledPermission]] = {
    PooledResourceType.S3_BUCKET: frozenset(
        {PooledPermission.READ_ONLY, PooledPermission.READ_WRITE}
    ),
    PooledResourceType.EC2_INSTANCE: frozenset({PooledPermission.SESSION}),
    PooledResourceType.RDS_INSTANCE: frozenset({PooledPermission.CONNECT}),
    PooledResourceType.RDS_CLUSTER: frozenset({PooledPermission.CONNECT}),
    PooledResourceType.IAM_ROLE: frozenset({PooledPermission.ASSUME}),
}


class Assignment(NamedTuple):
    """One Identity Center account assignment of a permission set to a user."""

    account_id: str
    permission_set_arn: str
    principal_id: str


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _SpecBase(_Model):
    instance_arn: NonEmpty
    identity_store_id: NonEmpty
    principal_id: NonEmpty  # an Identity Store user id
    # The Identity Center home region; None: the connector factory's default region.
    identity_center_region: str | None = None
    # Set by the control plane on a retried job when an earlier attempt already observed
    # whether the assignment/membership existed before Grantflow: a retry must not mistake
    # what the first attempt created for something pre-existing. None: observe now.
    known_pre_existing: bool | None = None


class AccountAssignmentSpec(_SpecBase):
    kind: Literal[GrantKind.ACCOUNT_ASSIGNMENT] = GrantKind.ACCOUNT_ASSIGNMENT
    account_id: AccountId
    permission_set_arn: NonEmpty


class GroupMembershipSpec(_SpecBase):
    kind: Literal[GrantKind.GROUP_MEMBERSHIP] = GrantKind.GROUP_MEMBERSHIP
    group_id: NonEmpty


class PooledPermissionSetSpec(_SpecBase):
    """A pooled grant. ``resource_id``: the bucket name, instance id, role name, or for RDS
    the *resource id* (``DbiResourceId`` / ``DbClusterResourceId``) that rds-db:connect names."""

    kind: Literal[GrantKind.POOLED_PERMISSION_SET] = GrantKind.POOLED_PERMISSION_SET
    resource_type: PooledResourceType
    resource_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:")]
    resource_id: NonEmpty
    account_id: AccountId
    region: str | None = None  # None for global types (S3 bucket names, IAM roles)
    permission: PooledPermission

    @model_validator(mode="after")
    def _permission_fits_type(self) -> PooledPermissionSetSpec:
        if self.permission not in POOLED_PERMISSIONS[self.resource_type]:
            raise ValueError(f"{self.resource_type} has no permission {self.permission}")
        regional = self.resource_type in _REGIONAL
        if regional and not self.region:
            raise ValueError(f"{self.resource_type} needs a region")
        return self

    @property
    def partition(self) -> str:
        return self.resource_arn.split(":", 2)[1]


_REGIONAL = frozenset(
    {
        PooledResourceType.EC2_INSTANCE,
        PooledResourceType.RDS_INSTANCE,
        PooledResourceType.RDS_CLUSTER,
    }
)

GrantSpec = Annotated[
    AccountAssignmentSpec | GroupMembershipSpec | PooledPermissionSetSpec,
    Field(discriminator="kind"),
]
GRANT_SPEC_ADAPTER: TypeAdapter[GrantSpec] = TypeAdapter(GrantSpec)


def parse_grant_spec(data: object) -> GrantSpec:
    """A grant spec from its JSON-compatible form (raises pydantic's ``ValidationError``)."""
    return GRANT_SPEC_ADAPTER.validate_python(data)


class GrantHandle(_Model):
    """What a grant provisioned; everything a revocation needs, nothing it must look up."""

    kind: GrantKind
    instance_arn: NonEmpty
    identity_store_id: NonEmpty
    principal_id: NonEmpty
    identity_center_region: str | None = None
    pre_existing: bool  # it existed before this grant: revocation never removes it
    assignment: Assignment | None = None  # account assignments and pooled grants
    group_id: str | None = None
    membership_id: str | None = None
    permission_set_name: str | None = None  # pooled grants only
    permission_set_arn: str | None = None

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> GrantHandle:
        if self.kind is GrantKind.GROUP_MEMBERSHIP:
            if self.group_id is None:
                raise ValueError("a group membership handle needs group_id")
        elif self.assignment is None:
            raise ValueError(f"a {self.kind} handle needs the assignment")
        if self.kind is GrantKind.POOLED_PERMISSION_SET and self.permission_set_name is None:
            raise ValueError("a pooled handle needs permission_set_name")
        return self


# --- plan steps ---------------------------------------------------------------------------


class CreatePermissionSet(_Model):
    op: Literal["create-permission-set"] = "create-permission-set"
    name: str
    description: str

    def describe(self) -> str:
        return f"create permission set {self.name} (tagged as Grantflow-managed)"


class PutInlinePolicy(_Model):
    op: Literal["put-inline-policy"] = "put-inline-policy"
    permission_set_name: str
    policy: str  # the JSON document

    def describe(self) -> str:
        return f"put the inline policy of {self.permission_set_name}"


class ProvisionPermissionSet(_Model):
    op: Literal["provision-permission-set"] = "provision-permission-set"
    permission_set_name: str
    account_id: str

    def describe(self) -> str:
        return f"provision {self.permission_set_name} to account {self.account_id}"


class CreateAccountAssignment(_Model):
    op: Literal["create-account-assignment"] = "create-account-assignment"
    account_id: str
    permission_set: str  # the ARN, or the name of a permission set an earlier step creates
    principal_id: str

    def describe(self) -> str:
        return f"assign {self.permission_set} to user {self.principal_id} in {self.account_id}"


class DeleteAccountAssignment(_Model):
    op: Literal["delete-account-assignment"] = "delete-account-assignment"
    assignment: Assignment

    def describe(self) -> str:
        a = self.assignment
        return f"remove {a.permission_set_arn} from user {a.principal_id} in {a.account_id}"


class CreateGroupMembership(_Model):
    op: Literal["create-group-membership"] = "create-group-membership"
    group_id: str
    principal_id: str

    def describe(self) -> str:
        return f"add user {self.principal_id} to group {self.group_id}"


class DeleteGroupMembership(_Model):
    op: Literal["delete-group-membership"] = "delete-group-membership"
    group_id: str
    principal_id: str
    membership_id: str

    def describe(self) -> str:
        return f"remove user {self.principal_id} from group {self.group_id}"


class DeletePermissionSet(_Model):
    op: Literal["delete-permission-set"] = "delete-permission-set"
    permission_set_name: str
    permission_set_arn: str

    def describe(self) -> str:
        return f"delete the unused permission set {self.permission_set_name}"


class Noop(_Model):
    op: Literal["noop"] = "noop"
    reason: str

    def describe(self) -> str:
        return f"nothing to do: {self.reason}"


PlanStep = Annotated[
    CreatePermissionSet
    | PutInlinePolicy
    | ProvisionPermissionSet
    | CreateAccountAssignment
    | DeleteAccountAssignment
    | CreateGroupMembership
    | DeleteGroupMembership
    | DeletePermissionSet
    | Noop,
    Field(discriminator="op"),
]


class Plan(_Model):
    """What a grant or revocation will do, in order; ``pre_existing`` as observed."""

    steps: tuple[PlanStep, ...]
    pre_existing: bool = False

    @property
    def changes(self) -> tuple[PlanStep, ...]:
        return tuple(step for step in self.steps if not isinstance(step, Noop))

    @property
    def is_noop(self) -> bool:
        return not self.changes

    def render(self) -> list[str]:
        return [step.describe() for step in self.steps]


class RevokeStatus(StrEnum):
    REVOKED = "revoked"
    ALREADY_ABSENT = "already-absent"  # nothing to remove: someone else removed it
    KEPT_PRE_EXISTING = "kept-pre-existing"  # it was there before Grantflow
    KEPT_STILL_NEEDED = "kept-still-needed"  # another live grant needs the same item


class RevokeOutcome(_Model):
    status: RevokeStatus
    permission_set_deleted: bool = False
    plan: Plan


def diff(
    desired: Iterable[Assignment], actual: Iterable[Assignment]
) -> tuple[frozenset[Assignment], frozenset[Assignment]]:
    """``(missing, extra)``: desired but not in AWS, and in AWS but not desired."""
    want, have = frozenset(desired), frozenset(actual)
    return want - have, have - want
