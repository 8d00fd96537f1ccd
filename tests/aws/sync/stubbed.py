"""A ClientFactory whose clients answer from botocore's Stubber (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from botocore.stub import Stubber

from grantflow.aws.discovery.scope import ReadScope
from grantflow.aws.session import ClientFactory

ACCOUNT = "111122223333"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/GrantflowMemberRole"


def offline_factory() -> ClientFactory:
    session = boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-east-1"
    )
    return ClientFactory(session, role_arn=ROLE_ARN)


@contextmanager
def stubbed(factory: ClientFactory, service: str, region: str = "us-east-1") -> Iterator[Stubber]:
    """Stub ``factory``'s (cached) client; fails if a queued response was not used."""
    stubber = Stubber(factory.client(service, region=region))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def scope(factory: ClientFactory, region: str | None = None) -> ReadScope:
    return ReadScope(factory, ACCOUNT, region)
