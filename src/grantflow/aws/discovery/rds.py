"""RDS DB instances and clusters of a member account in one region.

Resource types ``rds-instance`` (DescribeDBInstances) and ``rds-cluster`` (DescribeDBClusters).
Tags come from the ``TagList`` field both calls return; a response without that field (older
API behaviour) is completed with ``ListTagsForResource`` on the resource ARN. The RDS API also
serves DocumentDB and Neptune, whose databases cannot be reached with ``rds-db:connect``
(the grant this type offers), so their instances and clusters are not resources here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grantflow.aws.discovery.scope import Raw, ReadScope, list_pages, tag_dict, translated
from grantflow.domain.inventory import ResourceRecord

INSTANCE_TYPE_KEY = "rds-instance"
CLUSTER_TYPE_KEY = "rds-cluster"
NOT_RDS_ENGINES = frozenset({"docdb", "neptune"})


@dataclass(frozen=True)
class RawDatabase:
    item: Raw
    tags: Sequence[Raw]


@dataclass(frozen=True)
class _Kind:
    """Where the two RDS listings differ: the response keys of one type."""

    type_key: str
    items_key: str
    id_field: str
    arn_field: str
    status_field: str
    resource_id_field: str


_INSTANCES = _Kind(
    INSTANCE_TYPE_KEY,
    "DBInstances",
    "DBInstanceIdentifier",
    "DBInstanceArn",
    "DBInstanceStatus",
    "DbiResourceId",
)
_CLUSTERS = _Kind(
    CLUSTER_TYPE_KEY,
    "DBClusters",
    "DBClusterIdentifier",
    "DBClusterArn",
    "Status",
    "DbClusterResourceId",
)


def _tags(rds: Any, item: Raw, arn_field: str, role_arn: str | None) -> list[Raw]:
    if "TagList" in item:
        return list(item["TagList"])
    with translated("rds:ListTagsForResource", role_arn):
        return list(rds.list_tags_for_resource(ResourceName=item[arn_field])["TagList"])


def _get(scope: ReadScope, kind: _Kind) -> list[RawDatabase]:
    items = [
        item
        for page in list_pages(scope, kind.type_key)
        for item in page[kind.items_key]
        if str(item.get("Engine", "")) not in NOT_RDS_ENGINES
    ]
    rds: Any = scope.factory.client("rds", region=scope.client_region)
    role_arn = scope.factory.role_arn
    return [RawDatabase(item, _tags(rds, item, kind.arn_field, role_arn)) for item in items]


def get_db_instances(scope: ReadScope) -> list[RawDatabase]:
    return _get(scope, _INSTANCES)


def get_db_clusters(scope: ReadScope) -> list[RawDatabase]:
    return _get(scope, _CLUSTERS)


def _transform(
    kind: _Kind, raw: Iterable[RawDatabase], account_id: str, region: str
) -> list[ResourceRecord]:
    records: list[ResourceRecord] = []
    for entry in raw:
        item = entry.item
        endpoint = item.get("Endpoint")
        # An instance's endpoint is {"Address", "Port"}; a cluster's is the address, its port
        # a field of its own.
        if isinstance(endpoint, Mapping):
            address, port = endpoint.get("Address"), endpoint.get("Port")
        else:
            address, port = endpoint, item.get("Port")
        attributes = {
            "engine": item.get("Engine"),
            "engine_version": item.get("EngineVersion"),
            "status": item.get(kind.status_field),
            "resource_id": item.get(kind.resource_id_field),
            "endpoint": address,
            "port": port,
            "iam_auth": bool(item.get("IAMDatabaseAuthenticationEnabled", False)),
        }
        if kind is _INSTANCES:
            attributes["cluster_id"] = item.get("DBClusterIdentifier")
        records.append(
            ResourceRecord(
                type=kind.type_key,
                aws_id=str(item[kind.id_field]),
                arn=str(item[kind.arn_field]),
                name=str(item[kind.id_field]),
                account_id=account_id,
                region=region,
                tags=tag_dict(list(entry.tags)),
                attributes=attributes,
            )
        )
    return records


def transform_db_instances(
    raw: Iterable[RawDatabase], account_id: str, region: str
) -> list[ResourceRecord]:
    return _transform(_INSTANCES, raw, account_id, region)


def transform_db_clusters(
    raw: Iterable[RawDatabase], account_id: str, region: str
) -> list[ResourceRecord]:
    return _transform(_CLUSTERS, raw, account_id, region)


def read_db_instances(scope: ReadScope) -> list[ResourceRecord]:
    return transform_db_instances(get_db_instances(scope), scope.account_id, scope.client_region)


def read_db_clusters(scope: ReadScope) -> list[ResourceRecord]:
    return transform_db_clusters(get_db_clusters(scope), scope.account_id, scope.client_region)
