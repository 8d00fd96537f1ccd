"""A plan job (reconciliation, dry runs) reads the account assignments of all its items
together: one ``ListAccountAssignments`` per account and permission set (or one per user),
not one per item. A reconciliation of hundreds of live grants read each alone, and those
reads took Identity Center's 20 calls/s from grants and revokes running at the same time
(a burst of 100 grants measured 100 of them next to the grants' own 23). On the old handler
the call count below is 4 (one per item), not 1. moto."""

from __future__ import annotations

from grantflow.connector.handlers import JobContext, plan
from grantflow.connector.shared import Shared
from grantflow.domain.connector_jobs import PlanItem, PlanPayload
from tests.aws.grants.conftest import ACCOUNT, Directory

ROLE = "arn:aws:iam::123456789012:role/grantflow-management"


def _spec(d: Directory, user: str) -> dict[str, object]:
    return {"kind": "account_assignment", "instance_arn": d.instance_arn,
            "identity_store_id": d.identity_store_id, "principal_id": user,
            "account_id": ACCOUNT, "permission_set_arn": d.permission_set_arn}  # fmt: skip


def test_a_plan_reads_its_items_assignments_together(directory: Directory) -> None:
    d = directory
    alice, bob, carol = d.users
    for user in (alice, carol):  # alice: access of her own; carol: a revoked grant left behind
        d.sso.create_account_assignment(
            InstanceArn=d.instance_arn, TargetId=ACCOUNT, TargetType="AWS_ACCOUNT",
            PermissionSetArn=d.permission_set_arn, PrincipalType="USER", PrincipalId=user,
        )  # fmt: skip
    handle = {"kind": "account_assignment", "instance_arn": d.instance_arn,
              "identity_store_id": d.identity_store_id, "principal_id": carol,
              "pre_existing": False,
              "assignment": [ACCOUNT, d.permission_set_arn, carol]}  # fmt: skip
    items = [
        PlanItem(grant_id="g-alice", action="grant", spec=_spec(d, alice), expect="present"),
        PlanItem(grant_id="g-bob", action="grant", spec=_spec(d, bob), expect="present"),
        PlanItem(grant_id="g-bob-2", action="grant", spec=_spec(d, bob), expect="present"),
        PlanItem(grant_id="g-carol", action="revoke", handle=handle, expect="absent"),
    ]
    ctx = JobContext(connector_id="gfc-test", aws=d.factory, shared=Shared(d.factory))
    before = d.factory.calls.counts()
    result = plan(ctx, PlanPayload(management_role_arn=ROLE, items=items))
    after = d.factory.calls.counts()
    by_id = {item.grant_id: item for item in result.items}
    assert by_id["g-alice"].in_sync and by_id["g-alice"].pre_existing
    assert not by_id["g-bob"].in_sync and not by_id["g-bob"].pre_existing  # missing: a create
    assert not by_id["g-carol"].in_sync  # still in AWS: a delete
    reads = {op: n - before.get(("sso-admin", op), 0) for (svc, op), n in after.items()
             if svc == "sso-admin" and op.startswith("ListAccountAssignments")}  # fmt: skip
    assert sum(reads.values()) == 1, reads
