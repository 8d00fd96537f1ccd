"""botocore error shapes translated into grantflow.aws.errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from grantflow.aws import errors
from grantflow.aws.errors import (
    AccessDenied,
    AwsError,
    AwsUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    QuotaExceeded,
    Throttled,
    translate,
)

ROLE = "arn:aws:iam::123456789012:role/GrantflowManagementRole"


def _client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": status},
    }
    return ClientError(response, "SomeOperation")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, AccessDenied),
        ("AccessDeniedException", 400, AccessDenied),
        ("UnauthorizedOperation", 403, AccessDenied),
        ("ExpiredToken", 400, AccessDenied),
        ("Throttling", 400, Throttled),
        ("ThrottlingException", 400, Throttled),
        ("TooManyRequestsException", 429, Throttled),
        ("RequestLimitExceeded", 503, Throttled),
        ("ResourceNotFoundException", 400, NotFound),
        ("NoSuchEntity", 404, NotFound),
        ("NoSuchBucket", 404, NotFound),
        ("DBInstanceNotFound", 404, NotFound),
        ("InvalidInstanceID.NotFound", 400, NotFound),
        ("AWSOrganizationsNotInUseException", 400, NotFound),
        ("ConflictException", 409, Conflict),
        ("ConcurrentModificationException", 400, Conflict),
        ("EntityAlreadyExists", 409, Conflict),
        ("ServiceQuotaExceededException", 402, QuotaExceeded),
        ("InternalFailure", 500, AwsUnavailable),
        ("SomethingNew", 503, AwsUnavailable),
        ("ValidationException", 400, InvalidRequest),
    ],
)
def test_codes_map_to_classes(code: str, status: int, expected: type[AwsError]) -> None:
    translated = translate(_client_error(code, "msg", status), action="x:Y", role_arn=ROLE)
    assert type(translated) is expected
    assert isinstance(translated, AwsError)
    assert (translated.code, translated.action, translated.role_arn) == (code, "x:Y", ROLE)
    assert translated.request_id == "req-1"


def test_access_denied_names_the_action_from_the_message() -> None:
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/GrantflowManagementRole/s is not "
        "authorized to perform: sso:CreateAccountAssignment on resource: "
        "arn:aws:sso:::instance/ssoins-1234 because no identity-based policy allows the "
        "sso:CreateAccountAssignment action"
    )
    denied = translate(
        _client_error("AccessDeniedException", message), action="sso:Other", role_arn=ROLE
    )
    assert isinstance(denied, AccessDenied)
    assert denied.action == "sso:CreateAccountAssignment"
    assert "lacks the IAM permission sso:CreateAccountAssignment" in denied.hint
    assert "Grantflow CloudFormation template grants it" in denied.hint
    assert ROLE in denied.hint
    assert denied.hint in str(denied)


def test_access_denied_falls_back_to_the_attempted_action() -> None:
    denied = translate(
        _client_error("AccessDenied", "Access Denied", 403),
        action="s3:GetBucketTagging",
        role_arn=None,
    )
    assert isinstance(denied, AccessDenied)
    assert denied.action == "s3:GetBucketTagging"
    assert "the connector's credentials lacks" in denied.hint


def test_access_denied_for_an_action_the_template_does_not_grant() -> None:
    hint = errors.access_denied_hint("iam:CreateUser", ROLE)
    assert "does not grant" in hint


def test_access_denied_by_an_scp() -> None:
    message = (
        "User: x is not authorized to perform: ec2:DescribeInstances with an explicit deny "
        "in a service control policy"
    )
    denied = translate(_client_error("UnauthorizedOperation", message), action="ec2:X")
    assert isinstance(denied, AccessDenied)
    assert denied.action == "ec2:DescribeInstances"
    assert "service control policy" in denied.hint


def test_assume_role_denied_points_at_trust_policy_and_external_id() -> None:
    message = (
        "User: arn:aws:sts::111122223333:assumed-role/grantflow-connector/c is not "
        f"authorized to perform: sts:AssumeRole on resource: {ROLE}"
    )
    denied = translate(
        _client_error("AccessDenied", message, 403), action="sts:AssumeRole", role_arn=ROLE
    )
    assert isinstance(denied, AccessDenied)
    assert denied.action == "sts:AssumeRole"
    for words in ("trust policy", "external id", "ConnectorRoleArn", "ConnectorId", ROLE):
        assert words in denied.hint


def test_transport_and_credential_errors() -> None:
    down = translate(EndpointConnectionError(endpoint_url="https://x"), action="sts:AssumeRole")
    assert type(down) is AwsUnavailable
    missing = translate(NoCredentialsError(), action="sts:GetCallerIdentity")
    assert isinstance(missing, AccessDenied)
    assert "credentials" in missing.hint


def test_translate_is_raised_from_the_original() -> None:
    original = _client_error("ThrottlingException")
    with pytest.raises(Throttled) as caught:
        try:
            raise original
        except ClientError as e:
            raise translate(e, action="sso:ListInstances") from e
    assert caught.value.__cause__ is original
