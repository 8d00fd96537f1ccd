"""Connector job: check that the management role can be assumed and can read the organization."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from grantflow.aws.errors import translate
from grantflow.aws.session import CallerIdentity, ClientFactory

VERIFY_SESSION_NAME = "grantflow-verify"


@dataclass(frozen=True)
class VerifyResult:
    organization_id: str
    management_account_id: str
    management_account_email: str
    identity: CallerIdentity  # who the assumed management session is


def verify_management_access(
    factory: ClientFactory, role_arn: str, external_id: str
) -> VerifyResult:
    """Assume ``role_arn`` with ``external_id`` and describe the organization.

    Raises the translated :class:`~grantflow.aws.errors.AwsError`; an ``AccessDenied`` for
    ``sts:AssumeRole`` names the role, its trust policy and the external id to check.
    """
    management = factory.assume_role(role_arn, external_id, VERIFY_SESSION_NAME)
    identity = management.caller_identity()
    try:
        found = management.client("organizations").describe_organization()["Organization"]
    except (ClientError, BotoCoreError) as e:
        raise translate(e, action="organizations:DescribeOrganization", role_arn=role_arn) from e
    return VerifyResult(
        organization_id=found["Id"],
        management_account_id=found["MasterAccountId"],
        management_account_email=found["MasterAccountEmail"],
        identity=identity,
    )
