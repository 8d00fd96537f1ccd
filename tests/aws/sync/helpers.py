"""Building sync options from an OrgSummary, running a sync, and expected-vs-found tuples."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3

from grantflow.aws.session import ClientFactory, ClientSettings
from grantflow.aws.sync import SyncOptions, sync_from_management, sync_organization
from grantflow.demo.org_summary import OrgSummary
from grantflow.domain.inventory import AccountInventory, ResourceRecord, SyncSummary

MANAGEMENT_ROLE_ARN = "arn:aws:iam::123456789012:role/GrantflowManagementRole"
CONNECTOR_ID = "gfc-abcdefghij0123456789"
# moto answers DescribeInstanceInformation with HTTP 500; two attempts keep its retries short.
FAST = ClientSettings(max_attempts=2, connect_timeout=5.0, read_timeout=60.0)

Key = tuple[str, str, str | None, str]  # (type, account, region, arn)


def options_for(org: OrgSummary, **overrides: Any) -> SyncOptions:
    values: dict[str, Any] = {
        "management_role_arn": MANAGEMENT_ROLE_ARN,
        "external_id": CONNECTOR_ID,
        "regions": list(org.regions),
        "sso_region": org.sso_region,
        "excluded_ou_ids": list(org.excluded_ou_ids),
    }
    values.update(overrides)
    return SyncOptions(**values)


def connector_factory() -> ClientFactory:
    """The connector's own identity: moto's static test keys."""
    return ClientFactory(boto3.Session(region_name="us-east-1"), settings=FAST)


@dataclass
class SyncRun:
    summary: SyncSummary
    emitted: list[AccountInventory] = field(default_factory=list)
    progress: list[tuple[int, int]] = field(default_factory=list)

    def account(self, account_id: str) -> AccountInventory:
        return next(inv for inv in self.emitted if inv.account_id == account_id)

    def records(self) -> list[ResourceRecord]:
        return [record for inv in self.emitted for record in inv.resources]


def run(factory: ClientFactory, options: SyncOptions, *, assumed: bool = False) -> SyncRun:
    """Run a sync; ``assumed``: ``factory`` already is the management role."""
    emitted: list[AccountInventory] = []
    progress: list[tuple[int, int]] = []
    sync = sync_from_management if assumed else sync_organization
    summary = sync(factory, options, emitted.append, lambda d, t: progress.append((d, t)))
    return SyncRun(summary, emitted, progress)


def demo_type(kind: object) -> str:
    """The demo builder's type names (iam_role) as registry keys (iam-role)."""
    return str(getattr(kind, "value", kind)).replace("_", "-")


def expected_member_keys(
    org: OrgSummary,
    account_ids: Iterable[str] | None = None,
    types: Iterable[str] | None = None,
) -> set[Key]:
    wanted = org.synced_account_ids if account_ids is None else frozenset(account_ids)
    keys = {
        (demo_type(r.type), r.account_id, r.region, r.arn)
        for r in org.resources
        if r.account_id in wanted
    }
    return keys if types is None else {key for key in keys if key[0] in set(types)}


def found_member_keys(records: Iterable[ResourceRecord]) -> set[Key]:
    return {
        (r.type, str(r.account_id), r.region, str(r.arn))
        for r in records
        if r.type not in {"aws-account", "identity-center-group"}
    }
