"""Asynchronous Identity Center behaviour, with botocore's Stubber.

moto 5.2.5 answers every CreateAccountAssignment / DeleteAccountAssignment /
ProvisionPermissionSet with ``SUCCEEDED`` at once, never raises ``ConflictException`` for an
operation in progress, and does not implement DescribePermissionSetProvisioningStatus (HTTP 500)
at all. The IN_PROGRESS → SUCCEEDED / FAILED paths, conflicts and deadlines are therefore
tested here, with responses in the real API shapes (the Stubber validates every response
against the service model).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from grantflow.aws import identity_center as ic_api
from grantflow.aws.errors import AccessDenied
from grantflow.aws.identity_center import (
    IdentityCenter,
    OperationFailed,
    OperationTimedOut,
    PermissionSetQuotaExceeded,
    Waiter,
)
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.domain.grant_specs import Assignment
from tests.aws.grants.conftest import FakeClock

INSTANCE = "arn:aws:sso:::instance/ssoins-7223a3b4c5d6e7f8"
PS = "arn:aws:sso:::permissionSet/ssoins-7223a3b4c5d6e7f8/ps-0123456789abcdef"
ACCOUNT = "111122223333"
USER = "906715a4e2-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
REQUEST = "0f3b6c1e-8c3a-4f65-9a5d-2b7e4c9d1a00"
ASSIGNMENT = Assignment(ACCOUNT, PS, USER)
CREATED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
Stubbed = tuple[IdentityCenter, Stubber]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def factory() -> ClientFactory:
    """One factory (and so one sso-admin client) for the module: clients are slow to build."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return ClientFactory(session)


@pytest.fixture
def stubbed(factory: ClientFactory, clock: FakeClock) -> Iterator[tuple[IdentityCenter, Stubber]]:
    ic = IdentityCenter(
        factory=factory,
        instance_arn=INSTANCE,
        identity_store_id="d-9067abcdef",
        limiter=IdentityCenterLimiter(clock=clock, sleep=clock.sleep),
        waiter=Waiter(timeout=3.0, interval=1.0, clock=clock, sleep=clock.sleep),
    )
    with Stubber(factory.client("sso-admin")) as stubber:
        yield ic, stubber
        stubber.assert_no_pending_responses()


def _assignment_status(status: str, **extra: str) -> dict[str, object]:
    return {
        "Status": status,
        "RequestId": REQUEST,
        "TargetId": ACCOUNT,
        "TargetType": "AWS_ACCOUNT",
        "PermissionSetArn": PS,
        "PrincipalType": "USER",
        "PrincipalId": USER,
        "CreatedDate": CREATED,
        **extra,
    }


def _create(stubber: Stubber, status: str) -> None:
    stubber.add_response(
        "create_account_assignment",
        {"AccountAssignmentCreationStatus": _assignment_status(status)},
        {
            "InstanceArn": INSTANCE,
            "TargetId": ACCOUNT,
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": PS,
            "PrincipalType": "USER",
            "PrincipalId": USER,
        },
    )


def _describe_creation(stubber: Stubber, status: str, **extra: str) -> None:
    stubber.add_response(
        "describe_account_assignment_creation_status",
        {"AccountAssignmentCreationStatus": _assignment_status(status, **extra)},
        {"InstanceArn": INSTANCE, "AccountAssignmentCreationRequestId": REQUEST},
    )


def _list(stubber: Stubber, *principals: str) -> None:
    stubber.add_response(
        "list_account_assignments",
        {
            "AccountAssignments": [
                {
                    "AccountId": ACCOUNT,
                    "PermissionSetArn": PS,
                    "PrincipalType": "USER",
                    "PrincipalId": principal,
                }
                for principal in principals
            ]
        },
        {"InstanceArn": INSTANCE, "AccountId": ACCOUNT, "PermissionSetArn": PS},
    )


def _conflict(stubber: Stubber, method: str) -> None:
    stubber.add_client_error(
        method,
        service_error_code="ConflictException",
        service_message="Another operation is in progress for the same account assignment.",
        http_status_code=409,
    )


def test_create_polls_in_progress_until_succeeded(stubbed: Stubbed, clock: FakeClock) -> None:
    ic, stubber = stubbed
    _create(stubber, "IN_PROGRESS")
    _describe_creation(stubber, "IN_PROGRESS")
    _describe_creation(stubber, "SUCCEEDED")
    ic_api.create_assignment(ic, ASSIGNMENT)
    assert clock.sleeps == [1.0, 1.0]


def test_create_failed_is_a_typed_failure_with_the_reason(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _create(stubber, "IN_PROGRESS")
    reason = "Received a 404 status error: Principal does not exist."
    _describe_creation(stubber, "FAILED", FailureReason=reason)
    with pytest.raises(OperationFailed) as caught:
        ic_api.create_assignment(ic, ASSIGNMENT)
    assert caught.value.failure_reason == reason
    assert caught.value.action == "sso:DescribeAccountAssignmentCreationStatus"


def test_create_times_out_at_the_deadline(stubbed: Stubbed, clock: FakeClock) -> None:
    ic, stubber = stubbed
    _create(stubber, "IN_PROGRESS")
    for _ in range(3):
        _describe_creation(stubber, "IN_PROGRESS")
    with pytest.raises(OperationTimedOut, match="did not finish within 3s"):
        ic_api.create_assignment(ic, ASSIGNMENT)
    assert clock.now == pytest.approx(3.0)
    assert ic.limiter.in_flight(INSTANCE) == 0  # the slot is released on failure


def test_create_conflict_waits_and_finds_the_assignment(stubbed: Stubbed, clock: FakeClock) -> None:
    ic, stubber = stubbed
    _conflict(stubber, "create_account_assignment")
    _list(stubber, USER)  # the concurrent creation finished: nothing more to do
    ic_api.create_assignment(ic, ASSIGNMENT)
    assert clock.sleeps == [1.0]


def test_create_conflict_with_a_deletion_in_progress_tries_again(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _conflict(stubber, "create_account_assignment")
    _list(stubber)  # a concurrent deletion finished: the assignment is absent
    _create(stubber, "SUCCEEDED")
    ic_api.create_assignment(ic, ASSIGNMENT)


def test_create_conflict_until_the_deadline(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    for _ in range(3):
        _conflict(stubber, "create_account_assignment")
        _list(stubber)
    _conflict(stubber, "create_account_assignment")
    with pytest.raises(OperationTimedOut):
        ic_api.create_assignment(ic, ASSIGNMENT)


def _delete(stubber: Stubber, status: str) -> None:
    stubber.add_response(
        "delete_account_assignment",
        {"AccountAssignmentDeletionStatus": _assignment_status(status)},
    )


def _describe_deletion(stubber: Stubber, status: str, **extra: str) -> None:
    stubber.add_response(
        "describe_account_assignment_deletion_status",
        {"AccountAssignmentDeletionStatus": _assignment_status(status, **extra)},
        {"InstanceArn": INSTANCE, "AccountAssignmentDeletionRequestId": REQUEST},
    )


def test_delete_polls_until_succeeded(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _delete(stubber, "IN_PROGRESS")
    _describe_deletion(stubber, "SUCCEEDED")
    assert ic_api.delete_assignment(ic, ASSIGNMENT) is True


def test_delete_failed_is_not_success(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _delete(stubber, "IN_PROGRESS")
    _describe_deletion(stubber, "FAILED", FailureReason="Internal failure")
    with pytest.raises(OperationFailed, match="Internal failure"):
        ic_api.delete_assignment(ic, ASSIGNMENT)


def test_delete_conflict_then_gone_is_already_absent(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _conflict(stubber, "delete_account_assignment")
    _list(stubber)
    assert ic_api.delete_assignment(ic, ASSIGNMENT) is False


def test_delete_of_a_missing_assignment_is_already_absent(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    stubber.add_client_error(
        "delete_account_assignment", "ResourceNotFoundException", http_status_code=404
    )
    assert ic_api.delete_assignment(ic, ASSIGNMENT) is False


def test_access_denied_on_list_is_raised_not_read_as_absent(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    stubber.add_client_error(
        "list_account_assignments",
        "AccessDeniedException",
        "User is not authorized to perform: sso:ListAccountAssignments",
        http_status_code=403,
    )
    with pytest.raises(AccessDenied) as caught:
        ic_api.assignment_exists(ic, ASSIGNMENT)
    assert caught.value.action == "sso:ListAccountAssignments"


def _provisioning(status: str, **extra: str) -> dict[str, object]:
    return {
        "PermissionSetProvisioningStatus": {
            "Status": status,
            "RequestId": REQUEST,
            "AccountId": ACCOUNT,
            "PermissionSetArn": PS,
            "CreatedDate": CREATED,
            **extra,
        }
    }


def test_provisioning_polls_until_succeeded(stubbed: Stubbed, clock: FakeClock) -> None:
    ic, stubber = stubbed
    stubber.add_response(
        "provision_permission_set",
        _provisioning("IN_PROGRESS"),
        {
            "InstanceArn": INSTANCE,
            "PermissionSetArn": PS,
            "TargetType": "AWS_ACCOUNT",
            "TargetId": ACCOUNT,
        },
    )
    expected = {"InstanceArn": INSTANCE, "ProvisionPermissionSetRequestId": REQUEST}
    stubber.add_response(
        "describe_permission_set_provisioning_status", _provisioning("IN_PROGRESS"), expected
    )
    stubber.add_response(
        "describe_permission_set_provisioning_status", _provisioning("SUCCEEDED"), expected
    )
    ic_api.provision_permission_set(ic, PS, ACCOUNT)
    assert clock.sleeps == [1.0, 1.0]


def test_provisioning_failure_is_typed(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    stubber.add_response("provision_permission_set", _provisioning("IN_PROGRESS"))
    stubber.add_response(
        "describe_permission_set_provisioning_status",
        _provisioning("FAILED", FailureReason="Policy is invalid"),
    )
    with pytest.raises(OperationFailed, match="Policy is invalid"):
        ic_api.provision_permission_set(ic, PS, ACCOUNT)


def test_delete_permission_set_waits_out_deprovisioning(stubbed: Stubbed, clock: FakeClock) -> None:
    ic, stubber = stubbed
    stubber.add_client_error(
        "delete_permission_set",
        "ConflictException",
        "Could not delete because PermissionSet is provisioned to accounts.",
        http_status_code=409,
    )
    stubber.add_response("list_accounts_for_provisioned_permission_set", {"AccountIds": []})
    _list(stubber)
    stubber.add_response("delete_permission_set", {})
    assert ic_api.delete_permission_set(ic, "Grantflow-x", PS, [ACCOUNT]) is True
    assert clock.sleeps == [1.0]


def test_delete_permission_set_gives_up_when_assigned_again(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    stubber.add_client_error("delete_permission_set", "ConflictException", http_status_code=409)
    stubber.add_response("list_accounts_for_provisioned_permission_set", {"AccountIds": [ACCOUNT]})
    _list(stubber, USER)
    assert ic_api.delete_permission_set(ic, "Grantflow-x", PS, [ACCOUNT]) is False


def test_quota_counts_existing_permission_sets_and_refuses(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    limited = IdentityCenter(
        factory=ic.factory, instance_arn=INSTANCE, max_permission_sets=2, limiter=ic.limiter
    )
    arns = [f"{PS[:-4]}{n:04d}" for n in range(2)]
    stubber.add_response("list_permission_sets", {"PermissionSets": arns})
    for n, arn in enumerate(arns):
        stubber.add_response(
            "describe_permission_set",
            {"PermissionSet": {"Name": f"Customer{n}", "PermissionSetArn": arn}},
        )
    with pytest.raises(PermissionSetQuotaExceeded, match="already has 2") as caught:
        ic_api.create_permission_set(limited, "Grantflow-abc-RO", "d")
    assert (caught.value.count, caught.value.maximum) == (2, 2)


def test_name_taken_meanwhile_returns_the_existing_set(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    stubber.add_response("list_permission_sets", {"PermissionSets": []})
    stubber.add_client_error(
        "create_permission_set",
        "ConflictException",
        "PermissionSet with name Grantflow-abc-RO already exists.",
        http_status_code=409,
    )
    stubber.add_response("list_permission_sets", {"PermissionSets": [PS]})
    stubber.add_response(
        "describe_permission_set",
        {"PermissionSet": {"Name": "Grantflow-abc-RO", "PermissionSetArn": PS}},
    )
    assert ic_api.create_permission_set(ic, "Grantflow-abc-RO", "d") == PS
