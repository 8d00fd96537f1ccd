"""EC2 instances of a member account in one region (resource type ``ec2-instance``).

Besides the instances, Grantflow needs to know whether SSM manages each one (an EC2 session
grant is an SSM Session Manager session). ``ssm:DescribeInstanceInformation`` answers that.
When SSM answers 5xx (or cannot be reached) after botocore's retries, the SSM status of the
region's instances is *unknown* — a typed value on each record, the instances themselves are
still read completely. moto 5.2.5 does not implement DescribeInstanceInformation and answers
HTTP 500, which lands here. A :class:`SsmAvailability` shared by one sync remembers that, so
later accounts do not spend botocore's retries on it again. Any other SSM error (access
denied, throttled) fails the read of the region like an EC2 error would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from grantflow.aws.discovery.scope import Raw, ReadScope, list_pages, tag_dict, translated
from grantflow.aws.errors import AwsUnavailable
from grantflow.domain.inventory import ResourceRecord

TYPE_KEY = "ec2-instance"
SKIPPED_STATES = frozenset({"terminated", "shutting-down"})  # gone, or about to be


class SsmStatus(StrEnum):
    MANAGED = "managed"  # registered with SSM (see ssm_ping_status for whether it is online)
    NOT_MANAGED = "not-managed"
    UNKNOWN = "unknown"  # SSM could not be asked (see ssm_detail)


@dataclass(frozen=True)
class SsmLookup:
    """SSM registrations in one region: ``ping`` maps instance id → PingStatus."""

    known: bool
    ping: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""

    def status(self, instance_id: str) -> SsmStatus:
        if not self.known:
            return SsmStatus.UNKNOWN
        return SsmStatus.MANAGED if instance_id in self.ping else SsmStatus.NOT_MANAGED


class SsmAvailability:
    """Per sync: once SSM answered 5xx, later lookups report UNKNOWN without calling it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: str | None = None

    @property
    def reason(self) -> str | None:
        with self._lock:
            return self._reason

    def mark_unavailable(self, reason: str) -> None:
        with self._lock:
            self._reason = self._reason or reason


def get_instances(scope: ReadScope) -> list[Raw]:
    return [
        instance
        for page in list_pages(scope, TYPE_KEY)
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]


def get_ssm_lookup(scope: ReadScope, availability: SsmAvailability) -> SsmLookup:
    earlier = availability.reason
    if earlier is not None:
        return SsmLookup(known=False, detail=earlier)
    ssm: Any = scope.factory.client("ssm", region=scope.client_region)
    try:
        with translated("ssm:DescribeInstanceInformation", scope.factory.role_arn):
            infos = [
                info
                for page in ssm.get_paginator("describe_instance_information").paginate()
                for info in page["InstanceInformationList"]
            ]
    except AwsUnavailable as err:
        availability.mark_unavailable(err.message)
        return SsmLookup(known=False, detail=err.message)
    return transform_ssm(infos)


def transform_ssm(infos: Iterable[Raw]) -> SsmLookup:
    return SsmLookup(
        known=True, ping={str(i["InstanceId"]): str(i.get("PingStatus", "")) for i in infos}
    )


def transform_instances(
    instances: Iterable[Raw], ssm: SsmLookup, account_id: str, region: str, partition: str = "aws"
) -> list[ResourceRecord]:
    return [
        _record(instance, ssm, account_id, region, partition)
        for instance in instances
        if instance.get("State", {}).get("Name") not in SKIPPED_STATES
    ]


def _record(
    instance: Raw, ssm: SsmLookup, account_id: str, region: str, partition: str
) -> ResourceRecord:
    instance_id = str(instance["InstanceId"])
    tags = tag_dict(instance.get("Tags"))
    status = ssm.status(instance_id)
    return ResourceRecord(
        type=TYPE_KEY,
        aws_id=instance_id,
        arn=f"arn:{partition}:ec2:{region}:{account_id}:instance/{instance_id}",
        name=tags.get("Name", instance_id),
        account_id=account_id,
        region=region,
        tags=tags,
        attributes={
            "state": instance.get("State", {}).get("Name"),
            "instance_type": instance.get("InstanceType"),
            "platform": instance.get("PlatformDetails") or instance.get("Platform"),
            "private_ip": instance.get("PrivateIpAddress"),
            "ssm_status": status.value,
            "ssm_managed": None if status is SsmStatus.UNKNOWN else status is SsmStatus.MANAGED,
            "ssm_ping_status": ssm.ping.get(instance_id),
            "ssm_detail": ssm.detail or None,
        },
    )


def read_instances(scope: ReadScope, availability: SsmAvailability) -> list[ResourceRecord]:
    region = scope.client_region
    instances = get_instances(scope)
    live = [i for i in instances if i.get("State", {}).get("Name") not in SKIPPED_STATES]
    # No instance, no question for SSM: saves a call per empty region.
    ssm = get_ssm_lookup(scope, availability) if live else SsmLookup(known=True)
    return transform_instances(live, ssm, scope.account_id, region, scope.partition)
