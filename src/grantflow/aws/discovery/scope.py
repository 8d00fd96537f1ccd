"""What every resource-family reader gets: one member account, one region, one client factory.

Each family module (``iam_roles``, ``s3_buckets``, ``ec2_instances``, ``rds``) has three steps:
``get_*`` talks to boto3 only (paginators) and returns the raw items, ``transform_*`` is pure
and returns :class:`~grantflow.domain.inventory.ResourceRecord` objects, and ``read_*`` joins
the two for one :class:`ReadScope`. ``read_*`` raises a translated
:class:`~grantflow.aws.errors.AwsError`; it never turns a failed read into an empty list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from grantflow.aws import registry
from grantflow.aws.errors import translate
from grantflow.aws.session import ClientFactory
from grantflow.domain.inventory import ResourceRecord

Raw = Mapping[str, Any]  # one item of a boto3 response; never passed beyond transform_*
Tags = dict[str, str]


@dataclass(frozen=True)
class ReadScope:
    """Read one resource type in ``account_id`` (and ``region``, for regional types)."""

    factory: ClientFactory  # the member role in ``account_id``
    account_id: str
    region: str | None = None  # None: a global type (IAM, S3)
    partition: str = "aws"

    @property
    def client_region(self) -> str:
        return self.region or self.factory.region


Reader = Callable[[ReadScope], list[ResourceRecord]]


@contextmanager
def translated(action: str, role_arn: str | None) -> Iterator[None]:
    """Translate botocore errors raised inside the block (paginators raise while iterating)."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise translate(err, action=action, role_arn=role_arn) from err


def list_pages(scope: ReadScope, type_key: str) -> list[Raw]:
    """Every page of the call that lists ``type_key``: the operation (and the IAM action an
    error names) is the one the registry declares, so the template grants what is called."""
    rt = registry.resource_type(type_key)
    client: Any = scope.factory.client(rt.service, region=scope.client_region)
    with translated(rt.list_action, scope.factory.role_arn):
        return list(client.get_paginator(rt.paginator).paginate())


def tag_dict(tags: object) -> Tags:
    """``[{"Key": k, "Value": v}, ...]`` (the shape of every tag list here) as a dict."""
    if not isinstance(tags, list):
        return {}
    return {str(tag["Key"]): str(tag.get("Value", "")) for tag in tags}


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
