"""Organization and Identity Center transforms, outcome rules, and management-role failures."""

from __future__ import annotations

import pytest

from grantflow.aws.discovery.account import Failure, decide_outcome
from grantflow.aws.errors import AccessDenied, AwsUnavailable, NotFound
from grantflow.aws.identity_center_read import (
    pick_instance,
    transform_permission_sets,
    transform_users,
)
from grantflow.aws.organization import (
    _Parent,
    transform_account,
    transform_account_record,
)
from grantflow.aws.sync import SyncOptions as _Options
from grantflow.aws.sync import sync_organization
from grantflow.demo.moto_server import MotoServer
from grantflow.domain.inventory import AccountOutcome
from tests.aws.sync.faults import assume_role_denied, inject
from tests.aws.sync.helpers import CONNECTOR_ID, MANAGEMENT_ROLE_ARN, connector_factory, run

PARENT = _Parent("ou-ab12-cdef3456", ("r-ab12", "ou-ab12-cdef3456"), ("Root", "Prod"))


def _account(status: str, state: str | None = None) -> dict[str, object]:
    raw: dict[str, object] = {
        "Id": "210987654321",
        "Arn": "arn:aws:organizations::123456789012:account/o-exampleorgid/210987654321",
        "Email": "prod@example.com",
        "Name": "prod",
        "Status": status,
        "JoinedMethod": "CREATED",
    }
    if state is not None:
        raw["State"] = state
    return raw


@pytest.mark.parametrize(
    ("status", "state", "suspended"),
    [
        ("ACTIVE", None, False),
        ("ACTIVE", "ACTIVE", False),
        ("SUSPENDED", None, True),
        ("PENDING_CLOSURE", None, True),
        ("SUSPENDED", "CLOSED", True),
    ],
)
def test_account_status(status: str, state: str | None, suspended: bool) -> None:
    account = transform_account(_account(status, state), PARENT, "123456789012")
    assert account.suspended is suspended
    assert (account.ou_ids, account.ou_path, account.management) == (
        PARENT.ou_ids,
        "Root/Prod",
        False,
    )


def test_account_record() -> None:
    account = transform_account(_account("ACTIVE"), PARENT, "123456789012")
    record = transform_account_record(account, [{"Key": "env", "Value": "prod"}])
    assert (record.type, record.aws_id, record.account_id, record.arn, record.tags) == (
        "aws-account",
        "210987654321",
        "210987654321",
        _account("ACTIVE")["Arn"],
        {"env": "prod"},
    )
    assert record.attributes["ou_path"] == "Root/Prod"
    assert record.attributes["parent_id"] == "ou-ab12-cdef3456"


def test_users_primary_email_and_attributes() -> None:
    user = {
        "IdentityStoreId": "d-1234567890",
        "UserId": "9067e9a8b0-1f2e-4c5d-8e7f-0a1b2c3d4e5f",
        "UserName": "alice",
        "Name": {"GivenName": "Alice", "FamilyName": "Nakamura"},
        "DisplayName": "Alice Nakamura",
        "Emails": [
            {"Value": "alice@home.example", "Type": "home", "Primary": False},
            {"Value": "alice@example.com", "Type": "work", "Primary": True},
        ],
        "Title": "Staff Engineer",
        "UserType": "Employee",
        "Extensions": {"aws:identitystore:enterprise": {"department": "Platform"}},
    }
    (found,) = transform_users([user])
    assert (found.username, found.email, found.display_name, found.active) == (
        "alice",
        "alice@example.com",
        "Alice Nakamura",
        True,
    )
    assert found.attributes == {
        "title": "Staff Engineer",
        "usertype": "Employee",
        "givenName": "Alice",
        "familyName": "Nakamura",
        "department": "Platform",
    }


def test_permission_sets_flag_grantflow_pool() -> None:
    found = transform_permission_sets(
        [
            {"Name": "AdministratorAccess", "PermissionSetArn": "arn:aws:sso:::permissionSet/a/1"},
            {
                "Name": "Grantflow-0123456789ab-RO",
                "PermissionSetArn": "arn:aws:sso:::permissionSet/a/2",
                "Description": "pooled",
            },
        ]
    )
    assert [(p.name, p.managed_by_grantflow) for p in found] == [
        ("AdministratorAccess", False),
        ("Grantflow-0123456789ab-RO", True),
    ]


def test_pick_instance() -> None:
    account_instance = {
        "InstanceArn": "arn:aws:sso:::instance/ssoins-1",
        "IdentityStoreId": "d-1",
        "OwnerAccountId": "210987654321",
    }
    org_instance = {
        "InstanceArn": "arn:aws:sso:::instance/ssoins-2",
        "IdentityStoreId": "d-2",
        "OwnerAccountId": "123456789012",
    }
    chosen = pick_instance([account_instance, org_instance], "123456789012", "us-east-1")
    assert chosen.identity_store_id == "d-2"
    with pytest.raises(NotFound, match="AWS SSO Region"):
        pick_instance([], "123456789012", "eu-west-1")


def _denied(action: str) -> AccessDenied:
    return AccessDenied(f"{action} failed", hint="grant it", action=action)


def test_outcomes() -> None:
    members = ("iam-role", "ec2-instance")
    ec2_denied = Failure("ec2-instance", "eu-west-1", _denied("ec2:DescribeInstances"))
    iam_denied = Failure("iam-role", None, _denied("iam:ListRoles"))
    outage = Failure("ec2-instance", "us-east-1", AwsUnavailable("ec2 down"))
    assert decide_outcome(members, members, []) == (AccountOutcome.SYNCED, None)
    outcome, detail = decide_outcome(members, ["iam-role"], [ec2_denied])
    assert outcome is AccountOutcome.INCOMPLETE
    assert detail is not None and "ec2-instance in eu-west-1" in detail
    assert decide_outcome(members, [], [ec2_denied, iam_denied])[0] is (
        AccountOutcome.ACCESS_DENIED
    )
    assert decide_outcome(members, [], [iam_denied, outage])[0] is AccountOutcome.INCOMPLETE


def test_unknown_resource_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown resource types"):
        _Options(
            management_role_arn=MANAGEMENT_ROLE_ARN,
            external_id=CONNECTOR_ID,
            regions=["us-east-1"],
            sso_region="us-east-1",
            resource_types=["aws-account", "lambda-function"],
        )


def _options() -> _Options:
    return _Options(
        management_role_arn=MANAGEMENT_ROLE_ARN,
        external_id=CONNECTOR_ID,
        regions=["us-east-1"],
        sso_region="us-east-1",
    )


def test_management_role_denied_fails_the_whole_sync(aws: MotoServer) -> None:
    """STS's AccessDenied for the management role, injected on the connector's STS client."""
    connector = connector_factory()
    inject(
        connector.client("sts"),
        "AssumeRole",
        assume_role_denied("arn:aws:sts::999988887777:assumed-role/c/x", MANAGEMENT_ROLE_ARN),
    )
    emitted: list[object] = []
    with pytest.raises(AccessDenied) as denied:
        sync_organization(connector, _options(), emitted.append)
    assert denied.value.action == "sts:AssumeRole"
    assert denied.value.role_arn == MANAGEMENT_ROLE_ARN
    assert "external id" in str(denied.value)
    assert emitted == []


def test_no_organization_fails_the_whole_sync(aws: MotoServer) -> None:
    """moto without create_organization answers AWSOrganizationsNotInUseException."""
    with pytest.raises(NotFound, match="not in an AWS Organization") as missing:
        run(connector_factory(), _options())
    assert missing.value.action == "organizations:DescribeOrganization"
    assert missing.value.role_arn == MANAGEMENT_ROLE_ARN
