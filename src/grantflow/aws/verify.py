"""Connector job: check that the management role can be assumed and can read the organization."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from grantflow.aws.errors import translate
from grantflow.aws.organization import get_child_ous, get_roots
from grantflow.aws.session import CallerIdentity, ClientFactory

VERIFY_SESSION_NAME = "grantflow-verify"


@dataclass(frozen=True)
class VerifyResult:
    organization_id: str
    management_account_id: str
    management_account_email: str
    identity: CallerIdentity  # who the assumed management session is
    unknown_ou_ids: tuple[str, ...] = ()  # of the OU ids asked about, those not in the org


def unknown_ou_ids(management: ClientFactory, wanted: Sequence[str]) -> tuple[str, ...]:
    """The ids in ``wanted`` that name no OU of the organization: walks the OU tree (ids
    only, the calls a sync makes anyway) and stops as soon as every id is found."""
    missing = set(wanted)
    stack = [str(root["Id"]) for root in get_roots(management)] if missing else []
    while stack and missing:
        for ou in get_child_ous(management, stack.pop()):
            missing.discard(str(ou["Id"]))
            stack.append(str(ou["Id"]))
    return tuple(ou for ou in wanted if ou in missing)


def verify_management_access(
    factory: ClientFactory, role_arn: str, external_id: str, ou_ids: Sequence[str] = ()
) -> VerifyResult:
    """Assume ``role_arn`` with ``external_id`` and describe the organization; name the
    ``ou_ids`` (the Exclude OU setting) that are not in it.

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
        unknown_ou_ids=unknown_ou_ids(management, ou_ids),
    )
