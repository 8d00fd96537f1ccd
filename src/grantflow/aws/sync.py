"""The discovery sync of one AWS Organization, run by the connector.

Usage::

    summary = sync_organization(factory, options, emit=send_account, progress=report)

``factory`` is the connector's own identity. The sync assumes the management role (with the
external id), walks the organization (:mod:`grantflow.aws.organization`), reads IAM Identity
Center (:mod:`grantflow.aws.identity_center_read`), then reads the accounts in scope in a
bounded thread pool, each through its member role assumed from the management role
(:mod:`grantflow.aws.discovery.account`). ``emit`` gets each account's
:class:`~grantflow.domain.inventory.AccountInventory` as soon as it is done — always on the
calling thread, once per account in scope — and the returned
:class:`~grantflow.domain.inventory.SyncSummary` closes the sync.

Failures of the management role (cannot be assumed, organization not in use, Identity Center
not readable) raise the translated :class:`~grantflow.aws.errors.AwsError`: nothing can be
trusted then. Failures in one account become that account's typed outcome instead.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from itertools import islice

from grantflow.aws import registry
from grantflow.aws.discovery.account import AccountPlan, member_readers, sync_account
from grantflow.aws.discovery.ec2_instances import SsmAvailability
from grantflow.aws.discovery.iam_roles import role_name_of
from grantflow.aws.errors import AwsError
from grantflow.aws.identity_center_read import GROUP_TYPE_KEY, read_identity_center
from grantflow.aws.organization import OrgAccountInfo, OrganizationWalk, walk_organization
from grantflow.aws.session import ClientFactory
from grantflow.domain.inventory import (
    AccountInventory,
    AccountOutcome,
    ResourceRecord,
    SyncSummary,
)

SESSION_NAME = "grantflow-sync"
WINDOW_PER_WORKER = 2  # accounts read or waiting to be emitted, per worker
ALL_TYPES: tuple[str, ...] = tuple(rt.key for rt in registry.REGISTRY)

Emit = Callable[[AccountInventory], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """What one sync reads. ``regions`` applies to regional types; ``page_size`` (optional)
    caps the page size of the Organizations and Identity Store listings."""

    management_role_arn: str
    external_id: str
    regions: Sequence[str]
    sso_region: str
    member_role_name: str = registry.MEMBER_ROLE_NAME
    resource_types: Sequence[str] = ALL_TYPES
    excluded_ou_ids: Sequence[str] = ()
    max_workers: int = 8
    page_size: int | None = None
    own_role_names: Sequence[str] = ()  # the connector's own role: never offered

    def __post_init__(self) -> None:
        for name in ("regions", "resource_types", "excluded_ou_ids"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        unknown = sorted(set(self.resource_types) - set(ALL_TYPES))
        if unknown:
            raise ValueError(f"unknown resource types {unknown}; known: {list(ALL_TYPES)}")
        if self.max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if not self.regions:
            raise ValueError("regions must name at least one region")

    @property
    def partition(self) -> str:
        parts = self.management_role_arn.split(":")
        return parts[1] if len(parts) > 1 and parts[1] else "aws"


def sync_organization(
    factory: ClientFactory, options: SyncOptions, emit: Emit, progress: Progress | None = None
) -> SyncSummary:
    """Assume the management role from ``factory`` and sync the organization (see module)."""
    own = _own_role_name(factory)
    if own:
        options = replace(options, own_role_names=(*options.own_role_names, own))
    management = factory.assume_role(options.management_role_arn, options.external_id, SESSION_NAME)
    management.caller_identity()  # fail here, clearly, when the management role is refused
    return sync_from_management(management, options, emit, progress)


def _own_role_name(factory: ClientFactory) -> str | None:
    """The connector's own role, so that it is never offered as a resource. Not knowing it
    only means relying on its documented name (``iam_roles.CONNECTOR_ROLE_NAME``); the sync
    fails clearly on the management role's own check just after."""
    try:
        return role_name_of(factory.caller_identity().arn)
    except AwsError:
        return None


def sync_from_management(
    management: ClientFactory, options: SyncOptions, emit: Emit, progress: Progress | None = None
) -> SyncSummary:
    """The sync, given a factory that already acts as the management role."""
    started = time.monotonic()
    calls_before = management.calls.counts()
    walk = walk_organization(management, options.excluded_ou_ids, options.page_size)
    identity = read_identity_center(
        management, options.sso_region, walk.management_account_id, options.page_size
    )
    tally = _Tally(emit, options.resource_types)
    _sync_accounts(management, walk.accounts, _plan(options), options.max_workers, tally, progress)
    management_scope = _management_inventory(walk, identity.group_records, options)
    tally.per_type.update(resource.type for resource in management_scope.resources)
    calls = _calls_since(management, calls_before)
    return SyncSummary(
        organization_id=walk.organization_id,
        management_account_id=walk.management_account_id,
        root_id=walk.root_id,
        accounts_total=len(walk.accounts),
        accounts_by_outcome={outcome: tally.outcomes[outcome] for outcome in AccountOutcome},
        excluded_ou_ids=list(options.excluded_ou_ids),
        excluded_accounts=walk.excluded_accounts,
        ou_ids=list(walk.ou_ids),
        resources_by_type=dict(tally.per_type),
        aws_calls=sum(calls.values()),
        aws_calls_by_operation=calls,
        duration_seconds=round(time.monotonic() - started, 3),
        directory=identity.directory,
        permission_sets=list(identity.permission_sets),
        management_resources=management_scope,
    )


class _Tally:
    """Counts outcomes and resources of each account, then passes it on to ``emit``."""

    def __init__(self, emit: Emit, types: Sequence[str]) -> None:
        self._emit = emit
        self.outcomes: Counter[AccountOutcome] = Counter()
        self.per_type: Counter[str] = Counter({key: 0 for key in types})

    def __call__(self, inventory: AccountInventory) -> None:
        self.outcomes[inventory.outcome] += 1
        self.per_type.update(resource.type for resource in inventory.resources)
        self._emit(inventory)


def _plan(options: SyncOptions) -> AccountPlan:
    return AccountPlan(
        management_role_arn=options.management_role_arn,
        member_role_name=options.member_role_name,
        regions=tuple(options.regions),
        types=tuple(options.resource_types),
        readers=member_readers(options.member_role_name, SsmAvailability(), options.own_role_names),
        partition=options.partition,
    )


def _sync_accounts(
    management: ClientFactory,
    accounts: Sequence[OrgAccountInfo],
    plan: AccountPlan,
    max_workers: int,
    emit: Emit,
    progress: Progress | None,
) -> None:
    """Read the accounts, at most ``max_workers`` at a time; emit each as it completes.

    At most ``WINDOW_PER_WORKER * max_workers`` accounts are read or waiting to be emitted at
    any time, and an emitted inventory is let go: memory does not grow with the organization,
    and a slow ``emit`` (the control plane ingesting) holds the reading back.
    """
    total = len(accounts)
    if progress is not None:
        progress(0, total)
    window = WINDOW_PER_WORKER * max_workers
    waiting = iter(accounts)
    pending: set[Future[AccountInventory]] = set()
    done_count = 0
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grantflow-sync")
    try:
        while True:
            for account in islice(waiting, window - len(pending)):
                pending.add(pool.submit(sync_account, management, account, plan))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                emit(future.result())  # a bug (not an AwsError) in one account fails the sync
                done_count += 1
                if progress is not None:
                    progress(done_count, total)
            del finished
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _management_inventory(
    walk: OrganizationWalk, group_records: Sequence[ResourceRecord], options: SyncOptions
) -> AccountInventory:
    """Management-scope resources (Identity Center groups), as one SYNCED inventory."""
    management = next((a for a in walk.accounts if a.management), None)
    selected = GROUP_TYPE_KEY in options.resource_types
    return AccountInventory.model_validate(
        {
            "account_id": walk.management_account_id,
            "name": management.name if management else "management",
            "email": management.email if management else None,
            "ou_path": list(management.ou_ids) if management else [walk.root_id],
            "ou_names": list(management.ou_names) if management else [],
            "outcome": AccountOutcome.SYNCED,
            "types_read": [GROUP_TYPE_KEY] if selected else [],
            "resources": list(group_records) if selected else [],
        }
    )


def _calls_since(factory: ClientFactory, before: dict[tuple[str, str], int]) -> dict[str, int]:
    now = factory.calls.counts()
    return {
        f"{service}:{operation}": count - before.get((service, operation), 0)
        for (service, operation), count in sorted(now.items())
        if count > before.get((service, operation), 0)
    }
