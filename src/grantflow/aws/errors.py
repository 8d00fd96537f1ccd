"""Errors from AWS, translated into a small tree the rest of Grantflow can act on.

Exception tree::

    AwsError                  -- anything that went wrong talking to AWS
    ├── AccessDenied          -- IAM, an SCP, a trust policy or the credentials said no
    ├── Throttled             -- rate limited after botocore's own retries
    ├── NotFound              -- the resource (or the organization) does not exist
    ├── Conflict              -- already exists, or a concurrent change is in progress
    ├── QuotaExceeded         -- a service quota (e.g. permission sets per instance) is full
    ├── InvalidRequest        -- AWS rejected the request as malformed (a bug on our side)
    └── AwsUnavailable        -- AWS answered 5xx or could not be reached

Use :func:`translate` at the boto3 boundary::

    try:
        client.describe_organization()
    except (ClientError, BotoCoreError) as e:
        raise translate(e, action="organizations:DescribeOrganization", role_arn=arn) from e
"""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from grantflow.aws import registry

TEMPLATE_NAME = "Grantflow CloudFormation template"


class AwsError(Exception):
    """Base of every translated AWS error."""

    def __init__(
        self,
        message: str,
        *,
        action: str | None = None,
        role_arn: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.action = action
        self.role_arn = role_arn
        self.code = code
        self.request_id = request_id


class AccessDenied(AwsError):
    """Denied: ``action`` is the IAM action that was refused, ``hint`` says what to fix."""

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        action: str | None = None,
        role_arn: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message, action=action, role_arn=role_arn, code=code, request_id=request_id
        )
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}. {self.hint}"


class Throttled(AwsError):
    """AWS throttled the call and botocore's retries ran out; try again later."""


class NotFound(AwsError):
    """The resource (or the organization, or the Identity Center instance) does not exist."""


class Conflict(AwsError):
    """Another operation on the same thing is in progress, or it already exists."""


class QuotaExceeded(AwsError):
    """An AWS service quota would be exceeded."""


class InvalidRequest(AwsError):
    """AWS rejected the request's parameters."""


class AwsUnavailable(AwsError):
    """AWS (or the network to it) failed; retryable."""


_ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "UnauthorizedException",
    }
)
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    }
)
_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
_CONFLICT = frozenset(
    {
        "ConflictException",
        "ConcurrentModificationException",
        "EntityAlreadyExists",
        "AlreadyExistsException",
        "ResourceInUseException",
        "DuplicateAccountException",
        "OperationAborted",
        "BucketAlreadyOwnedByYou",
    }
)
_QUOTA = frozenset({"ServiceQuotaExceededException", "LimitExceededException", "LimitExceeded"})
_UNAVAILABLE = frozenset(
    {
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
    }
)
_NOT_IN_ORGANIZATION = "AWSOrganizationsNotInUseException"

_DENIED_ACTION = re.compile(r"perform:\s*([A-Za-z0-9-]+:[A-Za-z0-9*]+)")


def _is_not_found(code: str) -> bool:
    return code.startswith("NoSuch") or code.endswith(("NotFound", "NotFoundException"))


def denied_action(message: str, fallback: str | None) -> str | None:
    """The IAM action AWS names in an access-denied message, else ``fallback``."""
    found = _DENIED_ACTION.search(message)
    return found.group(1) if found else fallback


def access_denied_hint(action: str | None, role_arn: str | None, message: str = "") -> str:
    """A human hint: which permission is missing and what grants it."""
    role = role_arn or "the connector's credentials"
    if action == "sts:AssumeRole":
        return (
            f"Could not assume {role}. Check that the role exists, that its trust policy "
            "allows the connector role (the ConnectorRoleArn stack parameter) and that the "
            "external id equals the connector ID (the ConnectorId stack parameter); the "
            f"{TEMPLATE_NAME} sets up exactly that trust policy."
        )
    if "service control policy" in message or "permissions boundary" in message:
        return (
            f"{action or 'The action'} is denied for {role} by a service control policy or "
            "permissions boundary; allow it there (the template cannot override an SCP)."
        )
    if action is not None and action in registry.all_read_actions() | registry.all_grant_actions():
        return (
            f"{role} lacks the IAM permission {action}. The {TEMPLATE_NAME} grants it: update "
            "the Grantflow stack (and its member-role StackSet) to the latest template."
        )
    return (
        f"{role} lacks the IAM permission {action or '(unknown action)'}, which the "
        f"{TEMPLATE_NAME} does not grant; grant it to the role yourself."
    )


def _credentials_hint(role_arn: str | None) -> str:
    who = f"the session for {role_arn}" if role_arn else "the connector"
    return (
        f"AWS rejected the credentials of {who}: check the connector's AWS credentials "
        "(AWS_* environment, instance profile or IRSA) and that they have not expired."
    )


def _client_error_class(code: str, status: int) -> type[AwsError]:
    if code in _THROTTLED:
        return Throttled
    if code in _CONFLICT:
        return Conflict
    if code in _QUOTA:
        return QuotaExceeded
    if code == _NOT_IN_ORGANIZATION or _is_not_found(code):
        return NotFound
    if code in _UNAVAILABLE or status >= 500:
        return AwsUnavailable
    if 400 <= status < 500:
        return InvalidRequest
    return AwsError


def _translate_client_error(err: ClientError, action: str, role_arn: str | None) -> AwsError:
    error = err.response.get("Error", {})
    meta = err.response.get("ResponseMetadata", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", "")) or str(err)
    status = int(meta.get("HTTPStatusCode", 0) or 0)
    request_id = meta.get("RequestId")
    fields: dict[str, str | None] = {"role_arn": role_arn, "code": code, "request_id": request_id}
    text = f"{action} failed: {code}: {message}"
    if code in _ACCESS_DENIED:
        denied = denied_action(message, action)
        hint = access_denied_hint(denied, role_arn, message)
        return AccessDenied(text, hint=hint, action=denied, **fields)
    if code in _BAD_CREDENTIALS:
        return AccessDenied(text, hint=_credentials_hint(role_arn), action=action, **fields)
    if code == _NOT_IN_ORGANIZATION:
        text += " (the account is not in an AWS Organization, or is not its management account)"
    return _client_error_class(code, status)(text, action=action, **fields)


def translate(
    err: ClientError | BotoCoreError, *, action: str, role_arn: str | None = None
) -> AwsError:
    """Map a botocore error to the tree above; raise the result ``from err``."""
    if isinstance(err, ClientError):
        return _translate_client_error(err, action, role_arn)
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return AccessDenied(
            f"{action} failed: {err}",
            hint=_credentials_hint(role_arn),
            action=action,
            role_arn=role_arn,
        )
    return AwsUnavailable(f"{action} failed: {err}", action=action, role_arn=role_arn)
