"""A sync's memory does not grow with the organization (issue 19 item 4).

* every assumed role's session shares the process's botocore loader (service models are parsed
  once, not once per account), while each still signs as its own role;
* a member role is assumed without a ``GetCallerIdentity`` per account;
* accounts are read in a bounded window: an inventory waiting to be emitted holds the reading
  back, instead of every account of the organization being read ahead into memory.
"""

from __future__ import annotations

import threading

import pytest

from grantflow.aws import sync as sync_module
from grantflow.aws.discovery.account import AccountPlan
from grantflow.aws.organization import OrgAccountInfo
from grantflow.demo.org_summary import OrgSummary
from grantflow.domain.inventory import AccountInventory, AccountOutcome
from tests.aws.sync.helpers import MANAGEMENT_ROLE_ARN, connector_factory, options_for, run


def test_assumed_roles_share_the_loader_and_sign_as_themselves(
    shared_small_org: OrgSummary,
) -> None:
    management = connector_factory().assume_role(MANAGEMENT_ROLE_ARN, "gfc-x", "test")
    members = [
        management.assume_role(f"arn:aws:iam::{account.id}:role/GrantflowMemberRole")
        for account in shared_small_org.member_accounts[:3]
    ]
    ec2 = [member.client("ec2") for member in members]
    loaders = {id(client._loader) for client in ec2}
    assert len(loaders) == 1
    models = {id(client.meta.service_model._service_description) for client in ec2}
    assert len(models) == 1, "each session parsed EC2's service model again"
    arns = [member.caller_identity().arn for member in members]
    for account, arn in zip(shared_small_org.member_accounts[:3], arns, strict=True):
        assert f":{account.id}:assumed-role/GrantflowMemberRole/" in arn


def test_member_roles_are_assumed_without_an_extra_call(shared_small_org: OrgSummary) -> None:
    found = run(connector_factory(), options_for(shared_small_org, resource_types=["iam-role"]))
    calls = found.summary.aws_calls_by_operation
    read = [inv for inv in found.emitted if inv.outcome is AccountOutcome.SYNCED]
    assert read
    assert "sts:GetCallerIdentity" not in calls
    assert calls["sts:AssumeRole"] == len(read)


def _account(n: int) -> OrgAccountInfo:
    account_id = f"{n:012d}"
    return OrgAccountInfo(
        id=account_id, arn=f"arn:aws:organizations::1:account/o-x/{account_id}", name=f"a{n}",
        email=f"a{n}@example.com", status="ACTIVE", ou_ids=("r-x",), ou_names=("Root",),
    )  # fmt: skip


def test_accounts_are_read_in_a_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    workers, accounts = 2, [_account(n) for n in range(40)]
    window = 2 * workers  # sync.WINDOW_PER_WORKER
    lock = threading.Lock()
    started = [0]
    read_ahead = threading.Event()

    def read(_management: object, account: OrgAccountInfo, _plan: object) -> AccountInventory:
        with lock:
            started[0] += 1
            if started[0] > window + 1:
                read_ahead.set()
        return AccountInventory(account_id=account.id, name=account.name,
                                outcome=AccountOutcome.SYNCED)  # fmt: skip

    emitted: list[str] = []
    most_ahead = [0]

    def emit(inventory: AccountInventory) -> None:
        if not emitted:  # a slow control plane: give the readers every chance to run ahead
            read_ahead.wait(3.0)
        emitted.append(inventory.account_id)
        with lock:
            most_ahead[0] = max(most_ahead[0], started[0] - len(emitted))

    monkeypatch.setattr(sync_module, "sync_account", read)
    plan = AccountPlan(MANAGEMENT_ROLE_ARN, "GrantflowMemberRole", ("us-east-1",), (), {})
    sync_module._sync_accounts(None, accounts, plan, workers, emit, None)  # type: ignore[arg-type]
    assert sorted(emitted) == sorted(a.id for a in accounts)
    assert most_ahead[0] <= window
