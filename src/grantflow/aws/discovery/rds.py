"""RDS DB instances and clusters of a member account in one region.

Resource types ``rds-instance`` (DescribeDBInstances) and ``rds-cluster`` (DescribeDBClusters).
Tags come from the ``TagList`` field both calls return; a response without that field (older
API behaviour) is completed with ``ListTagsForResource`` on the resource ARN. The RDS API also
serves DocumentDB and Neptune, whose databases cannot be reached with ``rds-db:connect``
(the grant this type offers), so their instances and clusters are not resources here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from grantflow.aws.discovery.scope import Raw, ReadScope, tag_dict, translated
from grantflow.domain.inventory import ResourceRecord

INSTANCE_TYPE_KEY = "rds-instance"
CLUSTER_TYPE_KEY = "rds-cluster"
NOT_RDS_ENGINES = frozenset({"docdb", "neptune"})


@dataclass(frozen=True)
class RawDatabase:
    item: Raw
    tags: Sequence[Raw]


def _tags(rds: Any, item: Raw, arn_field: str, role_arn: str | None) -> list[Raw]:
    if "TagList" in item:
        return list(item["TagList"])
    with translated("rds:ListTagsForResource", role_arn):
        return list(rds.list_tags_for_resource(ResourceName=item[arn_field])["TagList"])


def _get(scope: ReadScope, paginator: str, items_key: str, arn_field: str) -> list[RawDatabase]:
    rds: Any = scope.factory.client("rds", region=scope.client_region)
    role_arn = scope.factory.role_arn
    action = "rds:" + (
        "DescribeDBInstances" if items_key == "DBInstances" else "DescribeDBClusters"
    )
    with translated(action, role_arn):
        items = [
            item
            for page in rds.get_paginator(paginator).paginate()
            for item in page[items_key]
            if str(item.get("Engine", "")) not in NOT_RDS_ENGINES
        ]
    return [RawDatabase(item, _tags(rds, item, arn_field, role_arn)) for item in items]


def get_db_instances(scope: ReadScope) -> list[RawDatabase]:
    return _get(scope, "describe_db_instances", "DBInstances", "DBInstanceArn")


def get_db_clusters(scope: ReadScope) -> list[RawDatabase]:
    return _get(scope, "describe_db_clusters", "DBClusters", "DBClusterArn")


def transform_db_instances(
    raw: Iterable[RawDatabase], account_id: str, region: str
) -> list[ResourceRecord]:
    records: list[ResourceRecord] = []
    for entry in raw:
        db = entry.item
        endpoint = db.get("Endpoint") or {}
        records.append(
            ResourceRecord(
                type=INSTANCE_TYPE_KEY,
                aws_id=str(db["DBInstanceIdentifier"]),
                arn=str(db["DBInstanceArn"]),
                name=str(db["DBInstanceIdentifier"]),
                account_id=account_id,
                region=region,
                tags=tag_dict(list(entry.tags)),
                attributes={
                    "engine": db.get("Engine"),
                    "engine_version": db.get("EngineVersion"),
                    "status": db.get("DBInstanceStatus"),
                    "resource_id": db.get("DbiResourceId"),
                    "endpoint": endpoint.get("Address"),
                    "port": endpoint.get("Port"),
                    "iam_auth": bool(db.get("IAMDatabaseAuthenticationEnabled", False)),
                    "cluster_id": db.get("DBClusterIdentifier"),
                },
            )
        )
    return records


def transform_db_clusters(
    raw: Iterable[RawDatabase], account_id: str, region: str
) -> list[ResourceRecord]:
    records: list[ResourceRecord] = []
    for entry in raw:
        cluster = entry.item
        records.append(
            ResourceRecord(
                type=CLUSTER_TYPE_KEY,
                aws_id=str(cluster["DBClusterIdentifier"]),
                arn=str(cluster["DBClusterArn"]),
                name=str(cluster["DBClusterIdentifier"]),
                account_id=account_id,
                region=region,
                tags=tag_dict(list(entry.tags)),
                attributes={
                    "engine": cluster.get("Engine"),
                    "engine_version": cluster.get("EngineVersion"),
                    "status": cluster.get("Status"),
                    "resource_id": cluster.get("DbClusterResourceId"),
                    "endpoint": cluster.get("Endpoint"),
                    "port": cluster.get("Port"),
                    "iam_auth": bool(cluster.get("IAMDatabaseAuthenticationEnabled", False)),
                },
            )
        )
    return records


def read_db_instances(scope: ReadScope) -> list[ResourceRecord]:
    return transform_db_instances(get_db_instances(scope), scope.account_id, scope.client_region)


def read_db_clusters(scope: ReadScope) -> list[ResourceRecord]:
    return transform_db_clusters(get_db_clusters(scope), scope.account_id, scope.client_region)
