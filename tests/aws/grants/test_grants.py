"""Grant and revoke against the moto server, reading AWS state back through boto3.

moto 5.2.5 gaps worked around or covered elsewhere (see test_identity_center_stubbed.py):
every asynchronous status is SUCCEEDED at once; DescribePermissionSetProvisioningStatus and
sso-admin ListTagsForResource answer HTTP 500 (so the tag is checked on the request);
ListAccountsForProvisionedPermissionSet reports the caller's account rather than the target;
duplicate CreateAccountAssignment / CreateGroupMembership / CreatePermissionSet names are
accepted (AWS answers ConflictException); DeletePermissionSet succeeds while assigned.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from grantflow.aws import cloudformation, pooled_policies, registry
from grantflow.aws.grants import (
    GrantSettings,
    actual_assignments,
    apply_grant,
    apply_revoke,
    diff,
    plan_grant,
    plan_revoke,
)
from grantflow.aws.identity_center import PermissionSetQuotaExceeded, Waiter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    Assignment,
    CreateAccountAssignment,
    CreateGroupMembership,
    DeleteAccountAssignment,
    DeletePermissionSet,
    GroupMembershipSpec,
    Noop,
    PooledPermission,
    PooledPermissionSetSpec,
    PooledResourceType,
    RevokeStatus,
)
from tests.aws.grants.conftest import ACCOUNT, Directory

BUCKET_ARN = "arn:aws:s3:::payments-exports"


def _assignment_spec(d: Directory, user: str, **extra: Any) -> AccountAssignmentSpec:
    return AccountAssignmentSpec(
        instance_arn=d.instance_arn,
        identity_store_id=d.identity_store_id,
        principal_id=user,
        account_id=ACCOUNT,
        permission_set_arn=d.permission_set_arn,
        **extra,
    )


def _membership_spec(d: Directory, user: str) -> GroupMembershipSpec:
    return GroupMembershipSpec(
        instance_arn=d.instance_arn,
        identity_store_id=d.identity_store_id,
        principal_id=user,
        group_id=d.group_id,
    )


def _pooled_spec(d: Directory, user: str) -> PooledPermissionSetSpec:
    return PooledPermissionSetSpec(
        instance_arn=d.instance_arn,
        identity_store_id=d.identity_store_id,
        principal_id=user,
        resource_type=PooledResourceType.S3_BUCKET,
        resource_arn=BUCKET_ARN,
        resource_id="payments-exports",
        account_id=ACCOUNT,
        permission=PooledPermission.READ_ONLY,
    )


def test_account_assignment_lifecycle(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, alice = directory, directory.users[0]
    spec = _assignment_spec(d, alice)
    plan = plan_grant(d.factory, spec, settings=settings)
    assert plan.steps == (
        CreateAccountAssignment(
            account_id=ACCOUNT, permission_set=d.permission_set_arn, principal_id=alice
        ),
    )
    assert d.assignments(ACCOUNT, d.permission_set_arn) == []  # planning wrote nothing

    handle = apply_grant(d.factory, spec, limiter, settings=settings)
    expected = Assignment(ACCOUNT, d.permission_set_arn, alice)
    assert (handle.pre_existing, handle.assignment) == (False, expected)
    assert set(d.assignments(ACCOUNT, d.permission_set_arn)) == {expected}

    assert plan_revoke(d.factory, handle, False).steps == (
        DeleteAccountAssignment(assignment=expected),
    )
    outcome = apply_revoke(d.factory, handle, False, limiter, settings=settings)
    assert outcome.status is RevokeStatus.REVOKED
    assert d.assignments(ACCOUNT, d.permission_set_arn) == []
    again = apply_revoke(d.factory, handle, False, limiter, settings=settings)
    assert again.status is RevokeStatus.ALREADY_ABSENT


def test_pre_existing_assignment_survives_grant_and_revoke(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, bob = directory, directory.users[1]
    d.sso.create_account_assignment(
        InstanceArn=d.instance_arn,
        TargetId=ACCOUNT,
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=d.permission_set_arn,
        PrincipalType="USER",
        PrincipalId=bob,
    )
    spec = _assignment_spec(d, bob)
    plan = plan_grant(d.factory, spec)
    assert plan.pre_existing and plan.is_noop
    handle = apply_grant(d.factory, spec, limiter, settings=settings)
    assert handle.pre_existing is True

    outcome = apply_revoke(d.factory, handle, False, limiter, settings=settings)
    assert outcome.status is RevokeStatus.KEPT_PRE_EXISTING
    assert outcome.plan.is_noop
    assert set(d.assignments(ACCOUNT, d.permission_set_arn)) == {
        Assignment(ACCOUNT, d.permission_set_arn, bob)
    }


def test_apply_twice_gives_one_assignment(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, alice = directory, directory.users[0]
    first = apply_grant(d.factory, _assignment_spec(d, alice), limiter, settings=settings)
    # The retried job carries what the first attempt observed (not pre-existing).
    retry = _assignment_spec(d, alice, known_pre_existing=first.pre_existing)
    second = apply_grant(d.factory, retry, limiter, settings=settings)
    assert second == first
    # A list, not a set: moto would store a duplicate if the assignment were created twice.
    assert d.assignments(ACCOUNT, d.permission_set_arn) == [
        Assignment(ACCOUNT, d.permission_set_arn, alice)
    ]


def test_two_grants_of_one_tuple_revoke_only_when_no_longer_needed(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, carol = directory, directory.users[2]
    first = apply_grant(d.factory, _assignment_spec(d, carol), limiter, settings=settings)
    # The control plane knows its first grant made the assignment: not pre-existing.
    second = apply_grant(
        d.factory, _assignment_spec(d, carol, known_pre_existing=False), limiter, settings=settings
    )
    assert (first.pre_existing, second.pre_existing) == (False, False)
    expected = {Assignment(ACCOUNT, d.permission_set_arn, carol)}

    kept = apply_revoke(d.factory, first, True, limiter, settings=settings)
    assert kept.status is RevokeStatus.KEPT_STILL_NEEDED
    assert set(d.assignments(ACCOUNT, d.permission_set_arn)) == expected

    removed = apply_revoke(d.factory, second, False, limiter, settings=settings)
    assert removed.status is RevokeStatus.REVOKED
    assert d.assignments(ACCOUNT, d.permission_set_arn) == []


def test_group_membership_lifecycle_and_pre_existing_member(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, alice, bob = directory, directory.users[0], directory.users[1]
    d.store.create_group_membership(
        IdentityStoreId=d.identity_store_id, GroupId=d.group_id, MemberId={"UserId": bob}
    )
    spec = _membership_spec(d, alice)
    assert plan_grant(d.factory, spec).steps == (
        CreateGroupMembership(group_id=d.group_id, principal_id=alice),
    )
    handle = apply_grant(d.factory, spec, limiter, settings=settings)
    assert handle.membership_id and not handle.pre_existing
    again = apply_grant(d.factory, spec.model_copy(update={"known_pre_existing": False}), limiter)
    assert again.membership_id == handle.membership_id
    bob_handle = apply_grant(d.factory, _membership_spec(d, bob), limiter, settings=settings)
    assert bob_handle.pre_existing
    assert d.members() == {alice, bob}

    assert apply_revoke(d.factory, handle, False, limiter).status is RevokeStatus.REVOKED
    kept = apply_revoke(d.factory, bob_handle, False, limiter)
    assert kept.status is RevokeStatus.KEPT_PRE_EXISTING
    assert d.members() == {bob}
    assert apply_revoke(d.factory, handle, False, limiter).status is RevokeStatus.ALREADY_ABSENT


def _record_create_permission_set(d: Directory) -> list[dict[str, Any]]:
    """Capture CreatePermissionSet requests (moto cannot list sso-admin tags: HTTP 500)."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(dict(params))

    d.factory.client("sso-admin").meta.events.register(
        "provide-client-params.sso-admin.CreatePermissionSet", record
    )
    return seen


def test_pooled_permission_set_lifecycle(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, alice, bob = directory, directory.users[0], directory.users[1]
    created = _record_create_permission_set(d)
    spec = _pooled_spec(d, alice)
    name = pooled_policies.permission_set_name(BUCKET_ARN, PooledPermission.READ_ONLY)
    policy = pooled_policies.inline_policy(spec)

    plan = plan_grant(d.factory, spec, settings=settings)
    assert [s.op for s in plan.steps] == [
        "create-permission-set",
        "put-inline-policy",
        "provision-permission-set",
        "create-account-assignment",
    ]
    assert d.permission_sets() == {d.permission_set_arn}  # a dry run creates nothing

    handle = apply_grant(d.factory, spec, limiter, settings=settings)
    ps = handle.permission_set_arn
    assert ps is not None and handle.permission_set_name == name
    assert d.permission_sets() == {d.permission_set_arn, ps}
    assert [(c["Name"], c["Tags"]) for c in created] == [
        (name, [{"Key": registry.MANAGED_TAG_KEY, "Value": registry.MANAGED_TAG_VALUE}])
    ]
    stored = d.sso.get_inline_policy_for_permission_set(
        InstanceArn=d.instance_arn, PermissionSetArn=ps
    )["InlinePolicy"]
    assert json.loads(stored) == json.loads(policy)
    assert set(d.assignments(ACCOUNT, ps)) == {Assignment(ACCOUNT, ps, alice)}

    # A second user of the same (resource, permission) reuses the pooled set.
    bob_handle = apply_grant(d.factory, _pooled_spec(d, bob), limiter, settings=settings)
    assert bob_handle.permission_set_arn == ps and len(created) == 1
    assert set(d.assignments(ACCOUNT, ps)) == {
        Assignment(ACCOUNT, ps, alice),
        Assignment(ACCOUNT, ps, bob),
    }

    first = apply_revoke(d.factory, handle, False, limiter, settings=settings)
    assert (first.status, first.permission_set_deleted) == (RevokeStatus.REVOKED, False)
    assert isinstance(first.plan.steps[-1], Noop)
    assert ps in d.permission_sets()

    assert isinstance(plan_revoke(d.factory, bob_handle, False).steps[-1], DeletePermissionSet)
    last = apply_revoke(d.factory, bob_handle, False, limiter, settings=settings)
    assert (last.status, last.permission_set_deleted) == (RevokeStatus.REVOKED, True)
    assert d.permission_sets() == {d.permission_set_arn}
    assert apply_revoke(d.factory, bob_handle, False, limiter).status is (
        RevokeStatus.ALREADY_ABSENT
    )


def test_pooled_set_used_by_a_group_is_not_deleted(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, alice = directory, directory.users[0]
    handle = apply_grant(d.factory, _pooled_spec(d, alice), limiter, settings=settings)
    assert handle.permission_set_arn is not None
    d.sso.create_account_assignment(
        InstanceArn=d.instance_arn,
        TargetId=ACCOUNT,
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=handle.permission_set_arn,
        PrincipalType="GROUP",
        PrincipalId=d.group_id,
    )
    outcome = apply_revoke(d.factory, handle, False, limiter, settings=settings)
    assert (outcome.status, outcome.permission_set_deleted) == (RevokeStatus.REVOKED, False)
    assert handle.permission_set_arn in d.permission_sets()


def test_pooled_policy_drift_is_put_back(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, alice, bob = directory, directory.users[0], directory.users[1]
    handle = apply_grant(d.factory, _pooled_spec(d, alice), limiter, settings=settings)
    d.sso.put_inline_policy_to_permission_set(
        InstanceArn=d.instance_arn,
        PermissionSetArn=handle.permission_set_arn,
        InlinePolicy='{"Version":"2012-10-17","Statement":[]}',
    )
    plan = plan_grant(d.factory, _pooled_spec(d, bob), settings=settings)
    assert [s.op for s in plan.steps] == [
        "put-inline-policy",
        "provision-permission-set",
        "create-account-assignment",
    ]
    apply_grant(d.factory, _pooled_spec(d, bob), limiter, settings=settings)
    stored = d.sso.get_inline_policy_for_permission_set(
        InstanceArn=d.instance_arn, PermissionSetArn=handle.permission_set_arn
    )["InlinePolicy"]
    assert pooled_policies.same_policy(stored, pooled_policies.inline_policy(_pooled_spec(d, bob)))


def test_quota_refusal_creates_nothing(
    directory: Directory, limiter: IdentityCenterLimiter
) -> None:
    d = directory
    d.sso.create_permission_set(InstanceArn=d.instance_arn, Name="PowerUser")
    before = d.permission_sets()
    full = GrantSettings(waiter=Waiter(timeout=5.0, interval=0.05), max_permission_sets=2)
    with pytest.raises(PermissionSetQuotaExceeded, match="already has 2 permission sets"):
        apply_grant(d.factory, _pooled_spec(d, d.users[0]), limiter, settings=full)
    assert d.permission_sets() == before


def test_actual_assignments_and_diff(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    d, (alice, bob, carol) = directory, directory.users
    for user in (alice, bob):
        apply_grant(d.factory, _assignment_spec(d, user), limiter, settings=settings)
    actual = actual_assignments(d.factory, d.instance_arn, ACCOUNT, d.permission_set_arn)
    assert actual == {Assignment(ACCOUNT, d.permission_set_arn, u) for u in (alice, bob)}
    desired = {Assignment(ACCOUNT, d.permission_set_arn, u) for u in (bob, carol)}
    missing, extra = diff(desired, actual)
    assert missing == {Assignment(ACCOUNT, d.permission_set_arn, carol)}
    assert extra == {Assignment(ACCOUNT, d.permission_set_arn, alice)}


def _template_actions() -> set[str]:
    resources = cloudformation.template_dict()["Resources"]
    assert isinstance(resources, dict)
    found: set[str] = set()
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                found.update(statement["Action"])
    return found


def test_every_call_made_is_granted_by_the_template(
    directory: Directory, settings: GrantSettings
) -> None:
    d, (alice, bob, _) = directory, directory.users
    limiter = IdentityCenterLimiter()
    handles = [
        apply_grant(d.factory, spec, limiter, settings=settings)
        for spec in (_assignment_spec(d, alice), _membership_spec(d, alice), _pooled_spec(d, bob))
    ]
    for handle in handles:
        apply_revoke(d.factory, handle, False, limiter, settings=settings)
    actual_assignments(d.factory, d.instance_arn, ACCOUNT, d.permission_set_arn)

    operations = d.factory.calls.operations()
    actions = {registry.operation_to_action(service, op) for service, op in operations}
    assert actions - _template_actions() == set()
    assert actions <= registry.all_grant_actions()
    assert ("sso-admin", "CreatePermissionSet") in operations
    assert ("identitystore", "CreateGroupMembership") in operations


def test_a_deleted_pooled_set_is_gone_for_reconciliation(
    directory: Directory, limiter: IdentityCenterLimiter, settings: GrantSettings
) -> None:
    """Once the last revoke deleted the pooled set, re-planning that revoke (what
    reconciliation does) is a no-op: "gone" is decided by describing the set, not by an empty
    list of its assignments (issue 17)."""
    d, alice, bob = directory, directory.users[0], directory.users[1]
    handles = [apply_grant(d.factory, _pooled_spec(d, u), limiter, settings=settings)
               for u in (alice, bob)]  # fmt: skip
    for handle in handles:
        apply_revoke(d.factory, handle, False, limiter, settings=settings)
    assert d.permission_sets() == {d.permission_set_arn}
    for handle in handles:
        steps = plan_revoke(d.factory, handle, False, settings=settings).steps
        assert all(isinstance(step, Noop) for step in steps), steps
        assert "already deleted" in steps[-1].reason
