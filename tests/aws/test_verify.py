"""verify_management_access, and the ClientFactory underneath it, against the moto server.

moto (5.2.5) does not enforce trust policies or ``sts:ExternalId``: ``AssumeRole`` succeeds for
any role ARN, existing or not, with any external id (``moto/sts/models.py`` even says "the role
does not need to exist"). A wrong external id therefore cannot be tested against moto; the
AccessDenied path is tested with botocore's ``Stubber`` on the connector factory's own STS
client, answering with the error shape real STS returns.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from grantflow.aws import cloudformation, registry
from grantflow.aws.errors import AccessDenied, NotFound
from grantflow.aws.session import ClientFactory, ClientSettings
from grantflow.aws.verify import verify_management_access
from grantflow.demo.moto_server import MotoServer

CONNECTOR_ID = "gfc-" + "0123456789abcdefghij"
CONNECTOR_ROLE_ARN = "arn:aws:iam::111122223333:role/grantflow-connector"
MANAGEMENT_ROLE = f"arn:aws:iam::123456789012:role/{registry.MANAGEMENT_ROLE_NAME}"


def _factory() -> ClientFactory:
    return ClientFactory(
        boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
    )


def _deploy_template(factory: ClientFactory) -> str:
    factory.client("organizations").create_organization(FeatureSet="ALL")
    root = factory.client("organizations").list_roots()["Roots"][0]["Id"]
    values = {
        "ConnectorId": CONNECTOR_ID,
        "ConnectorRoleArn": CONNECTOR_ROLE_ARN,
        "OrganizationalUnitId": root,
    }
    cfn = factory.client("cloudformation")
    cfn.create_stack(
        StackName="grantflow",
        TemplateBody=cloudformation.render_template(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )
    outputs = cfn.describe_stacks(StackName="grantflow")["Stacks"][0]["Outputs"]
    return str(outputs[0]["OutputValue"])


def test_verify_succeeds_after_the_template_is_deployed(aws: MotoServer) -> None:
    factory = _factory()
    role_arn = _deploy_template(factory)
    organization = factory.client("organizations").describe_organization()["Organization"]

    result = verify_management_access(factory, role_arn, CONNECTOR_ID)

    assert result.organization_id == organization["Id"]
    assert result.management_account_id == "123456789012"
    assert result.management_account_email == organization["MasterAccountEmail"]
    assert result.identity.account == "123456789012"
    assert result.identity.arn == (
        "arn:aws:sts::123456789012:assumed-role/GrantflowManagementRole/grantflow-verify"
    )


def test_verify_without_an_organization_is_not_found(aws: MotoServer) -> None:
    with pytest.raises(NotFound, match="not in an AWS Organization") as caught:
        verify_management_access(_factory(), MANAGEMENT_ROLE, CONNECTOR_ID)
    assert caught.value.action == "organizations:DescribeOrganization"
    assert caught.value.role_arn == MANAGEMENT_ROLE


def test_verify_with_a_rejected_external_id_is_access_denied() -> None:
    """Stubbed: moto does not enforce trust policies or external ids (module docstring)."""
    factory = _factory()
    message = (
        "User: arn:aws:sts::111122223333:assumed-role/grantflow-connector/i-0abc is not "
        f"authorized to perform: sts:AssumeRole on resource: {MANAGEMENT_ROLE}"
    )
    with Stubber(factory.client("sts")) as stub:
        stub.add_client_error(
            "assume_role",
            service_error_code="AccessDenied",
            service_message=message,
            http_status_code=403,
            expected_params={
                "RoleArn": MANAGEMENT_ROLE,
                "RoleSessionName": "grantflow-verify",
                "DurationSeconds": 3600,
                "ExternalId": "gfc-wrongwrongwrongwrong",
            },
        )
        with pytest.raises(AccessDenied) as caught:
            verify_management_access(factory, MANAGEMENT_ROLE, "gfc-wrongwrongwrongwrong")
        stub.assert_no_pending_responses()
    denied = caught.value
    assert (denied.action, denied.role_arn, denied.code) == (
        "sts:AssumeRole",
        MANAGEMENT_ROLE,
        "AccessDenied",
    )
    assert "external id" in denied.hint
    assert "trust policy" in denied.hint


# --- ClientFactory -----------------------------------------------------------------------


def test_clients_follow_aws_endpoint_url(aws: MotoServer) -> None:
    """boto3 honours AWS_ENDPOINT_URL natively: no endpoint_url is passed anywhere."""
    client = ClientFactory.from_environment().client("sts")
    assert client.meta.endpoint_url == aws.endpoint
    assert client.get_caller_identity()["Account"] == "123456789012"


def test_clients_use_standard_retries_and_timeouts() -> None:
    factory = ClientFactory(
        boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1"),
        settings=ClientSettings(max_attempts=7, connect_timeout=2.0, read_timeout=9.0),
    )
    config = factory.client("organizations").meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 7}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 9.0)
    assert factory.client("organizations") is factory.client("organizations")
    assert factory.client("ec2", region="us-west-2").meta.region_name == "us-west-2"


def test_role_chain_and_call_counting(aws: MotoServer) -> None:
    root = _factory()
    management = root.assume_role(MANAGEMENT_ROLE, CONNECTOR_ID, "grantflow-sync")
    member = management.assume_role(
        f"arn:aws:iam::210987654321:role/{registry.MEMBER_ROLE_NAME}", session_name="member"
    )
    assert member.caller_identity().account == "210987654321"
    assert management.caller_identity().account == "123456789012"

    assert member.calls.counts() == {("sts", "GetCallerIdentity"): 1}
    assert management.calls.counts() == {
        ("sts", "AssumeRole"): 1,  # made by the management role, for the member role
        ("sts", "GetCallerIdentity"): 2,
    }
    assert root.calls.counts() == {("sts", "AssumeRole"): 2, ("sts", "GetCallerIdentity"): 2}
    assert root.calls.total == 4


def test_assumed_credentials_refresh_before_expiry(aws: MotoServer) -> None:
    """A 900 s session is inside botocore's 15-minute refresh window from the start."""
    root = _factory()
    short = root.assume_role(MANAGEMENT_ROLE, CONNECTOR_ID, duration_seconds=900)
    long = root.assume_role(MANAGEMENT_ROLE, CONNECTOR_ID)
    for _ in range(3):
        short.caller_identity()
        long.caller_identity()
    assert root.calls.counts()[("sts", "AssumeRole")] == 3 + 1


def test_verify_names_exclude_ou_ids_that_are_not_in_the_organization(aws: MotoServer) -> None:
    factory = _factory()
    role_arn = _deploy_template(factory)
    orgs = factory.client("organizations")
    root = orgs.list_roots()["Roots"][0]["Id"]
    parent = orgs.create_organizational_unit(ParentId=root, Name="Sandbox")
    nested = orgs.create_organizational_unit(
        ParentId=parent["OrganizationalUnit"]["Id"], Name="Deep"
    )["OrganizationalUnit"]["Id"]
    unknown = "ou-zzzz-zzzzzzzz"
    result = verify_management_access(factory, role_arn, CONNECTOR_ID, [nested, unknown])
    assert result.unknown_ou_ids == (unknown,)
    assert verify_management_access(factory, role_arn, CONNECTOR_ID).unknown_ou_ids == ()
