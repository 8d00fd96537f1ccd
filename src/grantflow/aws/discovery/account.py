"""Read one account of the organization into an :class:`AccountInventory` with a typed outcome.

* the ``aws-account`` record (and the account's tags) come from the management role, so that
  type is read even when the member role is missing;
* the member role is assumed from the management role (role chaining); when that is denied
  the outcome is ``ACCESS_DENIED`` and ``detail`` says which role and what to check;
* each selected member type is read in each region (global types once); a type that failed
  anywhere is left out of ``types_read`` and named in ``detail`` (``INCOMPLETE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from grantflow.aws import registry
from grantflow.aws.discovery.ec2_instances import SsmAvailability, read_instances
from grantflow.aws.discovery.iam_roles import GRANTFLOW_ROLE_NAMES, read_roles
from grantflow.aws.discovery.rds import read_db_clusters, read_db_instances
from grantflow.aws.discovery.s3_buckets import read_buckets
from grantflow.aws.discovery.scope import Reader, ReadScope
from grantflow.aws.errors import AccessDenied, AwsError
from grantflow.aws.organization import (
    ACCOUNT_TYPE_KEY,
    OrgAccountInfo,
    get_account_tags,
    transform_account_record,
)
from grantflow.aws.session import ClientFactory
from grantflow.domain.inventory import AccountInventory, AccountOutcome, ResourceRecord

MEMBER_SESSION_NAME = "grantflow-sync"
MEMBER_TYPE_KEYS = ("iam-role", "s3-bucket", "ec2-instance", "rds-instance", "rds-cluster")


def member_readers(
    member_role_name: str, ssm: SsmAvailability, own_role_names: Iterable[str] = ()
) -> dict[str, Reader]:
    """The reader of each member-account type; one set per sync (``ssm`` is per sync).
    Grantflow's own roles (``own_role_names`` adds the connector's) are never listed."""
    own_roles = GRANTFLOW_ROLE_NAMES | {member_role_name, *own_role_names}
    return {
        "iam-role": partial(read_roles, own_role_names=own_roles),
        "s3-bucket": read_buckets,
        "ec2-instance": partial(read_instances, availability=ssm),
        "rds-instance": read_db_instances,
        "rds-cluster": read_db_clusters,
    }


@dataclass(frozen=True)
class AccountPlan:
    """What to read in every account; the same for all accounts of one sync."""

    management_role_arn: str
    member_role_name: str
    regions: tuple[str, ...]
    types: tuple[str, ...]  # selected type keys (management and member)
    readers: Mapping[str, Reader]
    partition: str = "aws"

    def member_role_arn(self, account_id: str) -> str:
        return f"arn:{self.partition}:iam::{account_id}:role/{self.member_role_name}"

    @property
    def member_types(self) -> tuple[str, ...]:
        return tuple(key for key in self.types if key in self.readers)


@dataclass(frozen=True)
class Failure:
    type_key: str
    region: str | None
    error: AwsError

    def describe(self) -> str:
        where = f" in {self.region}" if self.region else ""
        return f"{self.type_key}{where}: {self.error}"


@dataclass
class _Collected:
    records: list[ResourceRecord] = field(default_factory=list)
    types_read: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def _scopes(type_key: str, regions: Sequence[str]) -> Sequence[str | None]:
    regional = registry.resource_type(type_key).regionality is registry.Regionality.REGIONAL
    return list(regions) if regional else [None]


def read_member_types(
    member: ClientFactory, account_id: str, plan: AccountPlan
) -> tuple[list[ResourceRecord], list[str], list[Failure]]:
    """Read every selected member type; records of a partly failed type are kept too."""
    collected = _Collected()
    for type_key in plan.member_types:
        failed = False
        for region in _scopes(type_key, plan.regions):
            scope = ReadScope(member, account_id, region, plan.partition)
            try:
                collected.records.extend(plan.readers[type_key](scope))
            except AwsError as err:
                collected.failures.append(Failure(type_key, region, err))
                failed = True
        if not failed:
            collected.types_read.append(type_key)
    return collected.records, collected.types_read, collected.failures


def _assume_failed_detail(plan: AccountPlan, account: OrgAccountInfo, err: AwsError) -> str:
    role = plan.member_role_arn(account.id)
    if not isinstance(err, AccessDenied):
        return f"Could not assume the member role {role} in account {account.id}: {err}"
    where = (
        "StackSets never deploy into the management account: create the role there yourself "
        "if this account should be read"
        if account.management
        else "the Grantflow StackSet (service-managed, targeting the OrganizationalUnitId "
        "stack parameter) must have deployed it in this account"
    )
    return (
        f"Could not assume the member role {role} in account {account.name} ({account.id}): "
        f"{where}; its trust policy must allow the management role {plan.management_role_arn}. "
        f"AWS said: {err.message}"
    )


def decide_outcome(
    member_types: Sequence[str], types_read: Sequence[str], failures: Sequence[Failure]
) -> tuple[AccountOutcome, str | None]:
    if not failures:
        return AccountOutcome.SYNCED, None
    detail = "Could not read " + "; ".join(f.describe() for f in failures)
    nothing_read = bool(member_types) and not set(member_types) & set(types_read)
    if nothing_read and all(isinstance(f.error, AccessDenied) for f in failures):
        return AccountOutcome.ACCESS_DENIED, detail
    return AccountOutcome.INCOMPLETE, detail


def _account_record(
    management: ClientFactory, account: OrgAccountInfo, plan: AccountPlan
) -> tuple[list[ResourceRecord], list[Failure]]:
    if ACCOUNT_TYPE_KEY not in plan.types:
        return [], []
    try:
        tags = get_account_tags(management, account.id)
    except AwsError as err:
        return [], [Failure(ACCOUNT_TYPE_KEY, None, err)]
    return [transform_account_record(account, tags)], []


def _inventory(account: OrgAccountInfo, **fields: object) -> AccountInventory:
    return AccountInventory.model_validate(
        {
            "account_id": account.id,
            "name": account.name,
            "email": account.email or None,
            "status": account.status,
            "ou_path": list(account.ou_ids),
            "ou_names": list(account.ou_names),
            **fields,
        }
    )


def sync_account(
    management: ClientFactory, account: OrgAccountInfo, plan: AccountPlan
) -> AccountInventory:
    """Read ``account``; never raises an :class:`AwsError` (it becomes the outcome)."""
    records, failures = _account_record(management, account, plan)
    types_read = [ACCOUNT_TYPE_KEY] if records else []
    if account.suspended:
        return _inventory(
            account,
            outcome=AccountOutcome.SUSPENDED,
            detail=f"Account is {account.status}: its resources are not read",
            types_read=types_read,
            resources=records,
        )
    if not plan.member_types:  # nothing to read with the member role: do not assume it
        outcome, detail = decide_outcome((), (), failures)
        return _inventory(
            account, outcome=outcome, detail=detail, types_read=types_read, resources=records
        )
    return _read_through_member_role(management, account, plan, records, failures)


def _read_through_member_role(
    management: ClientFactory,
    account: OrgAccountInfo,
    plan: AccountPlan,
    records: list[ResourceRecord],
    failures: list[Failure],
) -> AccountInventory:
    types_read = [ACCOUNT_TYPE_KEY] if records else []
    member = management.assume_role(plan.member_role_arn(account.id), None, MEMBER_SESSION_NAME)
    try:
        member.assume_now()  # assume the role now: a denial is this account's outcome
    except AwsError as err:
        denied = isinstance(err, AccessDenied)
        return _inventory(
            account,
            outcome=AccountOutcome.ACCESS_DENIED if denied else AccountOutcome.INCOMPLETE,
            detail=_assume_failed_detail(plan, account, err),
            types_read=types_read,
            resources=records,
            aws_calls=member.calls.total,
        )
    found, member_read, member_failures = read_member_types(member, account.id, plan)
    outcome, detail = decide_outcome(plan.member_types, member_read, [*failures, *member_failures])
    return _inventory(
        account,
        outcome=outcome,
        detail=detail,
        types_read=[*types_read, *member_read],
        resources=[*records, *found],
        aws_calls=member.calls.total,
    )
