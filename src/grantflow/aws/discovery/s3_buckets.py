"""S3 buckets of a member account (resource type ``s3-bucket``; global, region per bucket).

``ListBuckets`` lists every bucket the account owns in every region; ``GetBucketLocation``
gives each bucket's region, and the bucket's tags are read with a client in that region.
A bucket without tags answers ``NoSuchTagSet``: that means "no tags", not a failed read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from grantflow.aws.discovery.scope import (
    Raw,
    ReadScope,
    error_code,
    list_pages,
    tag_dict,
    translated,
)
from grantflow.domain.inventory import ResourceRecord

TYPE_KEY = "s3-bucket"
NO_TAGS_CODE = "NoSuchTagSet"
# GetBucketLocation answers no constraint for us-east-1 and "EU" for buckets made long ago.
_LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}


@dataclass(frozen=True)
class RawBucket:
    bucket: Raw
    location: str | None  # LocationConstraint as AWS returned it
    tags: Sequence[Raw]


def bucket_region(location: str | None) -> str:
    return _LEGACY_LOCATIONS.get(location, location or "us-east-1")


def get_buckets(scope: ReadScope) -> list[RawBucket]:
    s3: Any = scope.factory.client("s3")
    role_arn = scope.factory.role_arn
    buckets = [b for page in list_pages(scope, TYPE_KEY) for b in page["Buckets"]]
    found: list[RawBucket] = []
    for bucket in buckets:
        name = str(bucket["Name"])
        with translated("s3:GetBucketLocation", role_arn):
            location = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
        found.append(
            RawBucket(bucket, location, _bucket_tags(scope, name, bucket_region(location)))
        )
    return found


def _bucket_tags(scope: ReadScope, name: str, region: str) -> list[Raw]:
    s3: Any = scope.factory.client("s3", region=region)
    with translated("s3:GetBucketTagging", scope.factory.role_arn):
        try:
            return list(s3.get_bucket_tagging(Bucket=name)["TagSet"])
        except ClientError as err:
            if error_code(err) == NO_TAGS_CODE:
                return []
            raise


def transform_buckets(
    raw: Iterable[RawBucket], account_id: str, partition: str = "aws"
) -> list[ResourceRecord]:
    records: list[ResourceRecord] = []
    for item in raw:
        name = str(item.bucket["Name"])
        created = item.bucket.get("CreationDate")
        records.append(
            ResourceRecord(
                type=TYPE_KEY,
                aws_id=name,
                arn=f"arn:{partition}:s3:::{name}",
                name=name,
                account_id=account_id,
                region=bucket_region(item.location),
                tags=tag_dict(list(item.tags)),
                attributes={"created": created.isoformat() if created is not None else None},
            )
        )
    return records


def read_buckets(scope: ReadScope) -> list[ResourceRecord]:
    return transform_buckets(get_buckets(scope), scope.account_id, scope.partition)
