"""The parameters of an emulated AWS Organization, and the names it is built from.

An :class:`OrgShape` says *how much* to build; :func:`grantflow.demo.org.build_org` turns it
into AWS calls. Everything random is drawn from ``random.Random(seed)``, so one shape and one
seed always give the same names and the same structure.

The OU tree every shape builds::

    Root
    ├── Security                      core accounts (log-archive, audit, ...)
    ├── Workloads
    │   ├── Prod
    │   │   └── <team>                one OU per team, e.g. Root/Workloads/Prod/payments
    │   └── Staging
    │       └── <team>
    └── Sandbox                       meant to be excluded (``OrgSummary.excluded_ou_ids``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

ROOT_PATH = "Root"
SECURITY_OU = "Security"
WORKLOADS_OU = "Workloads"
SANDBOX_OU = "Sandbox"
ENVIRONMENTS: tuple[str, ...] = ("Prod", "Staging")


class ResourceType(StrEnum):
    """The resource types the demo organization holds in its member accounts."""

    IAM_ROLE = "iam_role"
    S3_BUCKET = "s3_bucket"
    EC2_INSTANCE = "ec2_instance"
    RDS_INSTANCE = "rds_instance"
    RDS_CLUSTER = "rds_cluster"


GLOBAL_RESOURCE_TYPES = frozenset({ResourceType.IAM_ROLE})

# Team OUs and the Identity Center group that owns each team's resources.
TEAM_GROUPS: dict[str, str] = {
    "platform": "platform-team",
    "data": "data-team",
    "payments": "payments-team",
    "identity": "identity-team",
    "search": "search-team",
    "mobile": "mobile-team",
    "growth": "growth-team",
    "ml": "ml-team",
}
# Groups that exist in every shape besides the team groups.
COMMON_GROUPS: tuple[str, ...] = ("security", "finance", "developers")
GROUP_DESCRIPTIONS: dict[str, str] = {
    "security": "Security engineering and incident response",
    "finance": "Finance and cloud cost management",
    "developers": "Every software engineer",
}

SECURITY_ACCOUNTS: tuple[str, ...] = ("log-archive", "audit", "security-tooling", "network")

# (username, given name, family name); emails are <username>@example.com.
PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("alice", "Alice", "Nakamura"),
    ("bob", "Bob", "Okafor"),
    ("carol", "Carol", "Lindqvist"),
    ("dave", "Dave", "Moreau"),
    ("erin", "Erin", "Walsh"),
    ("frank", "Frank", "Castillo"),
    ("grace", "Grace", "Hopper"),
    ("heidi", "Heidi", "Schmidt"),
    ("ivan", "Ivan", "Petrov"),
    ("judy", "Judy", "Chen"),
    ("mallory", "Mallory", "Reyes"),
    ("niaj", "Niaj", "Sharma"),
    ("olivia", "Olivia", "Bennett"),
    ("peggy", "Peggy", "Adeyemi"),
    ("rupert", "Rupert", "Fischer"),
    ("sybil", "Sybil", "Kowalski"),
    ("trent", "Trent", "Oduya"),
    ("victor", "Victor", "Almeida"),
    ("wendy", "Wendy", "Larsen"),
    ("yusuf", "Yusuf", "Demir"),
)
FAMILY_NAMES: tuple[str, ...] = tuple(person[2] for person in PEOPLE)

JOB_TITLES: dict[str, tuple[str, ...]] = {
    "security": ("Security Engineer", "Incident Responder"),
    "finance": ("FinOps Analyst", "Controller"),
}
ENGINEER_TITLES: tuple[str, ...] = ("Software Engineer", "Senior Engineer", "Staff Engineer", "SRE")

# Permission set name -> AWS managed policy attached to it.
PERMISSION_SETS: dict[str, str] = {
    "AdministratorAccess": "arn:aws:iam::aws:policy/AdministratorAccess",
    "ReadOnlyAccess": "arn:aws:iam::aws:policy/ReadOnlyAccess",
    "PowerUserAccess": "arn:aws:iam::aws:policy/PowerUserAccess",
    "Billing": "arn:aws:iam::aws:policy/job-function/Billing",
}


@dataclass(frozen=True)
class OrgShape:
    """How big the emulated organization is. Use the named shapes, or ``dataclasses.replace``.

    ``member_accounts`` counts every account except the management account: the security
    accounts, the sandbox accounts and the workload accounts (the rest, spread round-robin over
    the ``Workloads/<env>/<team>`` OUs). One workload account is suspended when
    ``suspend_one_account`` is set. Every active member account (sandbox accounts included) gets
    ``resources_per_account`` resources, dealt from a fixed cycle of (type, region) slots so that
    all types and regions appear as soon as the organization holds a dozen resources.
    Every ``untagged_every``-th resource gets no owner tag.
    """

    name: str
    member_accounts: int
    teams: tuple[str, ...]
    security_accounts: int
    sandbox_accounts: int
    users: int
    regions: tuple[str, ...] = ("us-east-1", "eu-west-1")
    sso_region: str = "us-east-1"
    resources_per_account: int = 6
    untagged_every: int = 5
    owner_tag_key: str = "owner"
    suspend_one_account: bool = True
    workers: int = 16

    def __post_init__(self) -> None:
        unknown = sorted(set(self.teams) - set(TEAM_GROUPS))
        if unknown:
            raise ValueError(f"unknown teams {unknown}; choose from {sorted(TEAM_GROUPS)}")
        if not self.teams or not self.regions:
            raise ValueError("a shape needs at least one team and one region")
        if self.security_accounts > len(SECURITY_ACCOUNTS):
            raise ValueError(f"at most {len(SECURITY_ACCOUNTS)} security accounts")
        if self.workload_accounts < len(self.teams) * len(ENVIRONMENTS):
            raise ValueError("too few member accounts to give every team OU an account")
        if self.users < len(self.groups):
            raise ValueError("need at least as many users as groups")
        if self.untagged_every < 2 or self.resources_per_account < 0 or self.workers < 1:
            raise ValueError("untagged_every >= 2, resources_per_account >= 0, workers >= 1")

    @property
    def workload_accounts(self) -> int:
        return self.member_accounts - self.security_accounts - self.sandbox_accounts

    @property
    def groups(self) -> tuple[str, ...]:
        """Identity Center group names: one per team, then the common groups."""
        return tuple(TEAM_GROUPS[team] for team in self.teams) + COMMON_GROUPS

    @classmethod
    def small(cls) -> OrgShape:
        """Fast, for tests: 7 member accounts, 3 OU levels, 6 users, 2 regions."""
        return cls(
            name="small",
            member_accounts=7,
            teams=("platform", "data"),
            security_accounts=1,
            sandbox_accounts=2,
            users=6,
            resources_per_account=6,
            untagged_every=4,
        )

    @classmethod
    def demo(cls) -> OrgShape:
        """What ``grantflow demo`` shows: 30 member accounts, 14 users, 6 groups."""
        return cls(
            name="demo",
            member_accounts=30,
            teams=("platform", "data", "payments"),
            security_accounts=2,
            sandbox_accounts=4,
            users=14,
            resources_per_account=8,
        )

    @classmethod
    def large(cls, accounts: int = 1000, resources_per_account: int = 20) -> OrgShape:
        """A benchmark organization: ``accounts`` member accounts over up to 8 team OUs."""
        security = len(SECURITY_ACCOUNTS)
        sandbox = max(2, math.ceil(accounts * 0.05))
        workload = accounts - security - sandbox
        team_count = max(1, min(len(TEAM_GROUPS), workload // len(ENVIRONMENTS)))
        return cls(
            name="large",
            member_accounts=accounts,
            teams=tuple(TEAM_GROUPS)[:team_count],
            security_accounts=security,
            sandbox_accounts=sandbox,
            users=max(20, accounts // 5),
            resources_per_account=resources_per_account,
            workers=32,
        )
