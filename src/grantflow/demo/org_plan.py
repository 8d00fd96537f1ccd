"""Pure planning: from an :class:`OrgShape` and a seed to names, tree, people and resources.

Nothing here talks to AWS. The plan depends only on the shape and the seed (every random
choice comes from ``random.Random``), which is what makes the built organization reproducible.
Per-account resource plans use their own ``Random(f"{seed}:{account name}")`` so that accounts
can be built in parallel without changing what each of them holds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from grantflow.demo.org_shape import (
    ENGINEER_TITLES,
    ENVIRONMENTS,
    FAMILY_NAMES,
    GROUP_DESCRIPTIONS,
    JOB_TITLES,
    PEOPLE,
    ROOT_PATH,
    SANDBOX_OU,
    SECURITY_ACCOUNTS,
    SECURITY_OU,
    TEAM_GROUPS,
    WORKLOADS_OU,
    OrgShape,
    ResourceType,
)


@dataclass(frozen=True)
class PlannedAccount:
    name: str
    email: str
    ou_path: str
    env: str  # prod, staging, sandbox or security
    owner_group: str  # the group that owns most of this account's resources
    suspended: bool = False


@dataclass(frozen=True)
class PlannedUser:
    username: str
    given_name: str
    family_name: str
    title: str
    department: str
    groups: tuple[str, ...]

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class PlannedGroup:
    name: str
    description: str


@dataclass(frozen=True)
class PlannedResource:
    type: ResourceType
    region: str | None
    name: str
    tags: tuple[tuple[str, str], ...]
    variant: str  # instance type, engine, ... (what the AWS call needs besides the name)


@dataclass(frozen=True)
class OrgPlan:
    ou_paths: tuple[str, ...]  # parents before children, Root excluded
    excluded_ou_paths: tuple[str, ...]
    accounts: tuple[PlannedAccount, ...]
    users: tuple[PlannedUser, ...]
    groups: tuple[PlannedGroup, ...]


def plan_org(shape: OrgShape, seed: int) -> OrgPlan:
    rng = random.Random(seed)
    users = _plan_users(shape, rng)
    groups = tuple(
        PlannedGroup(name, GROUP_DESCRIPTIONS.get(name, f"Engineers of {name}"))
        for name in shape.groups
    )
    return OrgPlan(
        ou_paths=_ou_paths(shape),
        excluded_ou_paths=(f"{ROOT_PATH}/{SANDBOX_OU}",),
        accounts=_plan_accounts(shape, users, rng),
        users=users,
        groups=groups,
    )


def _ou_paths(shape: OrgShape) -> tuple[str, ...]:
    workloads = f"{ROOT_PATH}/{WORKLOADS_OU}"
    paths = [f"{ROOT_PATH}/{SECURITY_OU}", workloads]
    for env in ENVIRONMENTS:
        paths.append(f"{workloads}/{env}")
        paths.extend(f"{workloads}/{env}/{team}" for team in shape.teams)
    paths.append(f"{ROOT_PATH}/{SANDBOX_OU}")
    return tuple(paths)


def _account(name: str, ou_path: str, env: str, owner_group: str) -> PlannedAccount:
    return PlannedAccount(name, f"aws+{name}@example.com", ou_path, env, owner_group)


def _plan_accounts(
    shape: OrgShape, users: tuple[PlannedUser, ...], rng: random.Random
) -> tuple[PlannedAccount, ...]:
    accounts = [
        _account(name, f"{ROOT_PATH}/{SECURITY_OU}", "security", "security")
        for name in SECURITY_ACCOUNTS[: shape.security_accounts]
    ]
    leaves = [(env, team) for env in ENVIRONMENTS for team in shape.teams]
    per_leaf = {leaf: 0 for leaf in leaves}
    workloads: list[PlannedAccount] = []
    for index in range(shape.workload_accounts):
        env, team = leaves[index % len(leaves)]
        per_leaf[(env, team)] += 1
        name = f"{team}-{env.lower()}-{per_leaf[(env, team)]:02d}"
        path = f"{ROOT_PATH}/{WORKLOADS_OU}/{env}/{team}"
        workloads.append(_account(name, path, env.lower(), TEAM_GROUPS[team]))
    if shape.suspend_one_account:
        staging = [i for i, account in enumerate(workloads) if account.env == "staging"]
        chosen = rng.choice(staging or list(range(len(workloads))))
        workloads[chosen] = replace(workloads[chosen], suspended=True)
    accounts.extend(workloads)
    for index in range(shape.sandbox_accounts):
        owner = users[index].username if index < len(users) else f"{index:03d}"
        accounts.append(
            _account(f"sandbox-{owner}", f"{ROOT_PATH}/{SANDBOX_OU}", "sandbox", "developers")
        )
    return tuple(accounts)


def _plan_users(shape: OrgShape, rng: random.Random) -> tuple[PlannedUser, ...]:
    departments = (*shape.teams, "security", "finance")
    users: list[PlannedUser] = []
    for index in range(shape.users):
        if index < len(PEOPLE):
            username, given, family = PEOPLE[index]
        else:
            given = rng.choice(PEOPLE)[1]
            family = rng.choice(FAMILY_NAMES)
            username = f"{given}.{family}{index}".lower()
        department = departments[index % len(departments)]
        if department in TEAM_GROUPS:
            groups = {TEAM_GROUPS[department], "developers"}
            if rng.random() < 0.2:
                groups.add(TEAM_GROUPS[rng.choice(shape.teams)])
            title = rng.choice(ENGINEER_TITLES)
        else:
            groups = {department}
            title = rng.choice(JOB_TITLES[department])
        ordered = tuple(group for group in shape.groups if group in groups)
        users.append(PlannedUser(username, given, family, title, department, ordered))
    return tuple(users)


# -- resources ---------------------------------------------------------------------------------

_KINDS: tuple[ResourceType, ...] = (
    ResourceType.EC2_INSTANCE,
    ResourceType.S3_BUCKET,
    ResourceType.IAM_ROLE,
    ResourceType.RDS_INSTANCE,
    ResourceType.EC2_INSTANCE,
    ResourceType.RDS_CLUSTER,
)
_APPS = ("web", "api", "worker", "batch", "cache", "bastion")
_BUCKET_PURPOSES = ("logs", "assets", "backups", "data-lake", "artifacts", "exports")
_ROLE_PURPOSES = ("deployer", "ci-runner", "data-pipeline", "app-runtime", "auditor", "lambda-exec")
_DATABASES = ("orders", "users", "billing", "inventory", "analytics", "ledger")
_INSTANCE_TYPES = ("t3.micro", "t3.small", "m6i.large", "c6i.xlarge", "r6g.large")
_DB_ENGINES = ("postgres", "mysql")
_CLUSTER_ENGINES = ("aurora-postgresql", "aurora-mysql")


def slot_cycle(regions: tuple[str, ...]) -> tuple[tuple[ResourceType, str | None], ...]:
    """(type, region) slots that accounts deal their resources from, in turn."""
    slots: list[tuple[ResourceType, str | None]] = []
    for kind in _KINDS:
        if kind is ResourceType.IAM_ROLE:
            slots.append((kind, None))
        else:
            slots.extend((kind, region) for region in regions)
    return tuple(slots)


def plan_resources(
    shape: OrgShape, account: PlannedAccount, account_index: int, seed: int, groups: tuple[str, ...]
) -> tuple[PlannedResource, ...]:
    """The resources of one account; ``account_index`` counts the accounts that get resources."""
    rng = random.Random(f"{seed}:{account.name}")
    cycle = slot_cycle(shape.regions)
    planned: list[PlannedResource] = []
    for position in range(shape.resources_per_account):
        slot = account_index * shape.resources_per_account + position
        kind, region = cycle[slot % len(cycle)]
        tags = {"env": account.env}
        if slot % shape.untagged_every != shape.untagged_every - 1:
            owner_roll = rng.random()
            tags[shape.owner_tag_key] = (
                account.owner_group if owner_roll < 0.8 else rng.choice(groups)
            )
        name, variant = _name(kind, region, account.name, position + 1, rng)
        if kind is ResourceType.EC2_INSTANCE:
            tags["Name"] = name
        planned.append(PlannedResource(kind, region, name, tuple(sorted(tags.items())), variant))
    return tuple(planned)


def _name(
    kind: ResourceType, region: str | None, account_name: str, number: int, rng: random.Random
) -> tuple[str, str]:
    if kind is ResourceType.EC2_INSTANCE:
        return f"{rng.choice(_APPS)}-{number}", rng.choice(_INSTANCE_TYPES)
    if kind is ResourceType.S3_BUCKET:  # bucket names are global: the account name makes them so
        return f"gf-{account_name}-{rng.choice(_BUCKET_PURPOSES)}-{region}-{number}", ""
    if kind is ResourceType.IAM_ROLE:
        return f"{rng.choice(_ROLE_PURPOSES)}-{number}", ""
    if kind is ResourceType.RDS_INSTANCE:
        engine = rng.choice(_DB_ENGINES)
        return f"{rng.choice(_DATABASES)}-{engine}-{number}", engine
    engine = rng.choice(_CLUSTER_ENGINES)
    return f"{rng.choice(_DATABASES)}-aurora-{number}", engine
