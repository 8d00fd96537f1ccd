"""Real AWS error responses, injected per client with botocore ``before-call`` hooks.

moto does not enforce IAM or trust policies: every role can be assumed and every read is
allowed. To produce "the member role cannot be assumed" or "EC2 is denied in one region", a
``before-call`` handler on the one client concerned returns the response AWS would send
(HTTP 403 with AWS's error code and message shape); botocore then raises the ``ClientError``
exactly as for a real response, without sending the request. Nothing else is patched: every
other call goes to the moto server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient

from grantflow.aws.session import CHAINED_SESSION_SECONDS, ClientFactory

Body = Mapping[str, Any]


def error_response(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    http = AWSResponse("https://aws.example/", status, {}, None)
    parsed = {
        "Error": {"Code": code, "Message": message, "Type": "Sender"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "injected-by-test"},
    }
    return http, parsed


def inject(
    client: BaseClient,
    operation: str,
    response: tuple[AWSResponse, dict[str, Any]],
    when: Callable[[Body], bool] = lambda body: True,
) -> None:
    """Answer ``operation`` on ``client`` with ``response`` when ``when(request body)``."""
    service = client.meta.service_model.service_id.hyphenize()

    def before_call(params: Mapping[str, Any], **_: Any) -> object:
        body = params.get("body")
        return response if when(body if isinstance(body, Mapping) else {}) else None

    client.meta.events.register(f"before-call.{service}.{operation}", before_call)


def record_assumed_roles(client: BaseClient, seen: list[str]) -> None:
    """Remember the RoleArn of every AssumeRole ``client`` makes (the call still goes out)."""

    def before_call(params: Mapping[str, Any], **_: Any) -> None:
        seen.append(str(params["body"]["RoleArn"]))

    client.meta.events.register("before-call.sts.AssumeRole", before_call)


def assume_role_denied(caller_arn: str, role_arn: str) -> tuple[AWSResponse, dict[str, Any]]:
    """STS's answer when the trust policy does not allow the caller (or the role is missing)."""
    return error_response(
        403,
        "AccessDenied",
        f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
    )


def ec2_unauthorized(caller_arn: str, action: str) -> tuple[AWSResponse, dict[str, Any]]:
    """EC2's answer to a call the caller's policies (or an SCP) do not allow."""
    return error_response(
        403,
        "UnauthorizedOperation",
        f"You are not authorized to perform this operation. User: {caller_arn} is not "
        f"authorized to perform: {action} with an explicit deny in a service control policy",
    )


@dataclass(frozen=True)
class MemberFault:
    """In account ``account_id``, answer ``operation`` of ``service`` in ``region``."""

    account_id: str
    service: str
    region: str
    operation: str
    response: tuple[AWSResponse, dict[str, Any]]


class FaultInjectingFactory(ClientFactory):
    """Acts as the management role (moto's default account) and injects member faults.

    With moto, the static test keys already are the management account, so this factory
    stands in for "the assumed management role". Member factories it assumes get the
    :class:`MemberFault` hooks of their account before anyone uses them.
    """

    def __init__(self, member_faults: Sequence[MemberFault] = (), **kwargs: Any) -> None:
        super().__init__(boto3.Session(region_name="us-east-1"), **kwargs)
        self.member_faults = tuple(member_faults)

    def assume_role(
        self,
        role_arn: str,
        external_id: str | None = None,
        session_name: str = "grantflow",
        *,
        duration_seconds: int = CHAINED_SESSION_SECONDS,
    ) -> ClientFactory:
        member = super().assume_role(
            role_arn, external_id, session_name, duration_seconds=duration_seconds
        )
        account_id = role_arn.split(":")[4]
        for fault in self.member_faults:
            if fault.account_id == account_id:
                client = member.client(fault.service, region=fault.region)
                inject(client, fault.operation, fault.response)
        return member
