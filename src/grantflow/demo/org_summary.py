"""What :func:`grantflow.demo.org.build_org` built: typed, frozen, and enough to predict syncs.

Tests assert exact sync counts against these values, so the summary lists *everything* the
emulated AWS holds that a sync could read — including the ``OrganizationAccountAccessRole``
that moto's Organizations creates in every member account (``OrgResource.builtin``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from grantflow.demo.org_shape import ResourceType

_LABELS: dict[ResourceType, str] = {
    ResourceType.IAM_ROLE: "IAM roles",
    ResourceType.S3_BUCKET: "S3 buckets",
    ResourceType.EC2_INSTANCE: "EC2 instances",
    ResourceType.RDS_INSTANCE: "RDS instances",
    ResourceType.RDS_CLUSTER: "RDS clusters",
}


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class PrincipalType(StrEnum):
    USER = "USER"
    GROUP = "GROUP"


@dataclass(frozen=True)
class OrgUnit:
    id: str
    name: str
    path: str  # "Root/Workloads/Prod/platform"
    parent_id: str


@dataclass(frozen=True)
class OrgAccount:
    id: str
    name: str
    email: str
    ou_path: str
    parent_id: str
    status: AccountStatus
    management: bool = False


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str
    username: str
    email: str
    display_name: str
    given_name: str
    family_name: str
    title: str
    department: str  # sent as the enterprise extension; moto does not store extensions


@dataclass(frozen=True)
class DirectoryGroup:
    group_id: str
    name: str
    description: str
    members: tuple[str, ...]  # usernames, sorted


@dataclass(frozen=True)
class PermissionSetInfo:
    name: str
    arn: str
    managed_policy_arn: str  # as attached; moto only accepts job-function policies without path


@dataclass(frozen=True)
class AccountAssignment:
    account_id: str
    permission_set_name: str
    principal_type: PrincipalType
    principal_name: str  # group name or username
    principal_id: str


@dataclass(frozen=True)
class OrgResource:
    account_id: str
    region: str | None  # None for global types (IAM)
    type: ResourceType
    id: str
    arn: str
    name: str
    tags: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    builtin: bool = False  # created by AWS Organizations, not by the demo builder

    def tag(self, key: str) -> str | None:
        return dict(self.tags).get(key)


@dataclass(frozen=True)
class OrgSummary:
    shape_name: str
    seed: int
    organization_id: str
    management_account_id: str
    root_id: str
    ous: tuple[OrgUnit, ...]
    accounts: tuple[OrgAccount, ...]  # management account first
    excluded_ou_ids: tuple[str, ...]
    suspended_account_ids: tuple[str, ...]
    sso_region: str
    instance_arn: str
    identity_store_id: str
    users: tuple[DirectoryUser, ...]
    groups: tuple[DirectoryGroup, ...]
    permission_sets: tuple[PermissionSetInfo, ...]
    assignments: tuple[AccountAssignment, ...]
    regions: tuple[str, ...]
    owner_tag_key: str
    resources: tuple[OrgResource, ...]

    @property
    def ou_ids_by_path(self) -> Mapping[str, str]:
        return {ou.path: ou.id for ou in self.ous}

    @property
    def permission_set_arns(self) -> Mapping[str, str]:
        return {ps.name: ps.arn for ps in self.permission_sets}

    @property
    def member_accounts(self) -> tuple[OrgAccount, ...]:
        return tuple(account for account in self.accounts if not account.management)

    @property
    def excluded_account_ids(self) -> frozenset[str]:
        """Accounts anywhere below an excluded OU."""
        paths = {ou.path for ou in self.ous if ou.id in self.excluded_ou_ids}
        return frozenset(
            account.id
            for account in self.accounts
            if any(account.ou_path == p or account.ou_path.startswith(p + "/") for p in paths)
        )

    @property
    def synced_account_ids(self) -> frozenset[str]:
        """Accounts a sync honouring the exclusions reads: active and not excluded."""
        return frozenset(
            account.id
            for account in self.accounts
            if account.status is AccountStatus.ACTIVE
            and account.id not in self.excluded_account_ids
        )

    def account(self, name: str) -> OrgAccount:
        return next(account for account in self.accounts if account.name == name)

    def user(self, username: str) -> DirectoryUser:
        return next(user for user in self.users if user.username == username)

    def group(self, name: str) -> DirectoryGroup:
        return next(group for group in self.groups if group.name == name)

    def resources_in(
        self,
        account_ids: Iterable[str] | None = None,
        types: Iterable[ResourceType] | None = None,
        include_builtin: bool = True,
    ) -> tuple[OrgResource, ...]:
        wanted_accounts = None if account_ids is None else frozenset(account_ids)
        wanted_types = None if types is None else frozenset(types)
        return tuple(
            resource
            for resource in self.resources
            if (wanted_accounts is None or resource.account_id in wanted_accounts)
            and (wanted_types is None or resource.type in wanted_types)
            and (include_builtin or not resource.builtin)
        )

    def resource_counts(
        self, account_ids: Iterable[str] | None = None
    ) -> Mapping[ResourceType, int]:
        counts = Counter(resource.type for resource in self.resources_in(account_ids))
        return {resource_type: counts[resource_type] for resource_type in ResourceType}

    def render(self) -> str:
        """A few lines for ``grantflow demo`` to print."""
        members = self.member_accounts
        excluded = [ou.path for ou in self.ous if ou.id in self.excluded_ou_ids]
        counts = self.resource_counts()
        untagged = sum(
            1 for r in self.resources if not r.builtin and r.tag(self.owner_tag_key) is None
        )
        per_type = ", ".join(f"{count} {_LABELS[kind]}" for kind, count in counts.items())
        return "\n".join(
            [
                f"AWS Organization {self.organization_id} "
                f"(management account {self.management_account_id}, root {self.root_id})",
                f"  {len(members)} member accounts in {len(self.ous)} OUs, "
                f"{len(self.suspended_account_ids)} suspended; excluded: "
                f"{', '.join(excluded) or 'none'} ({len(self.excluded_account_ids)} accounts)",
                f"  Identity Center {self.identity_store_id} ({self.sso_region}): "
                f"{len(self.users)} users, {len(self.groups)} groups, "
                f"{len(self.permission_sets)} permission sets, "
                f"{len(self.assignments)} account assignments",
                f"  Resources in {', '.join(self.regions)}: {per_type} "
                f"({untagged} without an '{self.owner_tag_key}' tag)",
            ]
        )
