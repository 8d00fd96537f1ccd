"""get_* and transform_* of the member-account families, on AWS's real response shapes.

The get_* paths run against botocore's Stubber (which validates every response against the
service model), so they exercise the paginators and the error handling without moto.
"""

from __future__ import annotations

import datetime as dt

import pytest

from grantflow.aws.discovery import ec2_instances, iam_roles, rds, s3_buckets
from grantflow.aws.discovery.account import member_readers
from grantflow.aws.discovery.ec2_instances import SsmAvailability, SsmLookup, SsmStatus
from grantflow.aws.errors import AccessDenied
from tests.aws.sync.stubbed import ACCOUNT, offline_factory, scope, stubbed

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TRUST = "%7B%22Version%22%3A%222012-10-17%22%7D"


def _role(name: str, path: str = "/") -> dict[str, object]:
    return {
        "Path": path,
        "RoleName": name,
        "RoleId": f"AROA{name.upper()[:8]:X<16}",
        "Arn": f"arn:aws:iam::{ACCOUNT}:role{path}{name}",
        "CreateDate": NOW,
        "AssumeRolePolicyDocument": TRUST,
        "Description": f"{name} role",
        "MaxSessionDuration": 3600,
    }


def test_iam_roles_skip_service_linked_sso_and_grantflow_roles() -> None:
    factory = offline_factory()
    page_one = [
        _role("deploy"),
        _role("AWSServiceRoleForSupport", "/aws-service-role/support.amazonaws.com/"),
        _role(
            "AWSReservedSSO_AdministratorAccess_0123456789abcdef",
            "/aws-reserved/sso.amazonaws.com/",
        ),
    ]
    page_two = [_role("GrantflowMemberRole"), _role("CustomReader"), _role("ci-runner", "/ci/")]
    with stubbed(factory, "iam") as iam:
        iam.add_response("list_roles", {"Roles": page_one, "IsTruncated": True, "Marker": "m1"})
        iam.add_response("list_roles", {"Roles": page_two, "IsTruncated": False}, {"Marker": "m1"})
        iam.add_response(
            "list_role_tags",
            {"Tags": [{"Key": "owner", "Value": "platform-team"}], "IsTruncated": False},
            {"RoleName": "deploy"},
        )
        iam.add_response(
            "list_role_tags", {"Tags": [], "IsTruncated": False}, {"RoleName": "ci-runner"}
        )
        records = iam_roles.read_roles(scope(factory), {"GrantflowMemberRole", "CustomReader"})
    assert [(r.name, r.tags, r.arn, r.region) for r in records] == [
        ("deploy", {"owner": "platform-team"}, f"arn:aws:iam::{ACCOUNT}:role/deploy", None),
        ("ci-runner", {}, f"arn:aws:iam::{ACCOUNT}:role/ci/ci-runner", None),
    ]
    assert records[0].aws_id == _role("deploy")["RoleId"]
    assert records[1].attributes["path"] == "/ci/"


def test_s3_bucket_region_from_location() -> None:
    assert s3_buckets.bucket_region(None) == "us-east-1"
    assert s3_buckets.bucket_region("EU") == "eu-west-1"
    assert s3_buckets.bucket_region("ap-southeast-2") == "ap-southeast-2"


def test_s3_no_such_tag_set_means_no_tags() -> None:
    factory = offline_factory()
    buckets = [{"Name": "logs", "CreationDate": NOW}, {"Name": "data-eu", "CreationDate": NOW}]
    with stubbed(factory, "s3") as s3, stubbed(factory, "s3", "eu-west-1") as s3_eu:
        s3.add_response("list_buckets", {"Buckets": buckets, "Owner": {"ID": "abc"}})
        s3.add_response("get_bucket_location", {}, {"Bucket": "logs"})
        s3.add_client_error(
            "get_bucket_tagging",
            "NoSuchTagSet",
            "The TagSet does not exist",
            404,
            expected_params={"Bucket": "logs"},
        )
        s3.add_response(
            "get_bucket_location", {"LocationConstraint": "eu-west-1"}, {"Bucket": "data-eu"}
        )
        s3_eu.add_response(
            "get_bucket_tagging",
            {"TagSet": [{"Key": "owner", "Value": "data-team"}]},
            {"Bucket": "data-eu"},
        )
        records = s3_buckets.read_buckets(scope(factory))
    assert [(r.aws_id, r.region, r.tags, r.arn) for r in records] == [
        ("logs", "us-east-1", {}, "arn:aws:s3:::logs"),
        ("data-eu", "eu-west-1", {"owner": "data-team"}, "arn:aws:s3:::data-eu"),
    ]


def test_s3_denied_tagging_is_an_error_not_an_empty_tag_set() -> None:
    factory = offline_factory()
    with stubbed(factory, "s3") as s3:
        s3.add_response("list_buckets", {"Buckets": [{"Name": "locked", "CreationDate": NOW}]})
        s3.add_response("get_bucket_location", {}, {"Bucket": "locked"})
        s3.add_client_error("get_bucket_tagging", "AccessDenied", "Access Denied", 403)
        with pytest.raises(AccessDenied) as denied:
            s3_buckets.read_buckets(scope(factory))
    assert denied.value.action == "s3:GetBucketTagging"


def _instance(instance_id: str, state: str, name: str | None = None) -> dict[str, object]:
    tags = [{"Key": "owner", "Value": "platform-team"}]
    if name:
        tags.append({"Key": "Name", "Value": name})
    return {
        "InstanceId": instance_id,
        "ImageId": "ami-0abcdef1234567890",
        "InstanceType": "t3.micro",
        "LaunchTime": NOW,
        "PrivateIpAddress": "10.0.1.12",
        "State": {"Code": 16 if state == "running" else 48, "Name": state},
        "PlatformDetails": "Linux/UNIX",
        "Tags": tags,
    }


def _reservations(*instances: dict[str, object]) -> dict[str, object]:
    return {
        "Reservations": [
            {"ReservationId": "r-0123", "OwnerId": ACCOUNT, "Instances": list(instances)}
        ]
    }


SSM_INFO = {
    "InstanceInformationList": [
        {
            "InstanceId": "i-0aaa1111bbbb2222c",
            "PingStatus": "Online",
            "LastPingDateTime": NOW,
            "AgentVersion": "3.3.40.0",
            "IsLatestVersion": True,
            "PlatformType": "Linux",
            "PlatformName": "Amazon Linux",
            "PlatformVersion": "2023",
            "ResourceType": "EC2Instance",
            "IPAddress": "10.0.1.12",
            "ComputerName": "ip-10-0-1-12.ec2.internal",
        }
    ]
}


def test_ec2_instances_with_ssm_status_from_describe_instance_information() -> None:
    factory = offline_factory()
    with stubbed(factory, "ec2") as ec2, stubbed(factory, "ssm") as ssm:
        ec2.add_response(
            "describe_instances",
            _reservations(
                _instance("i-0aaa1111bbbb2222c", "running", "web-1"),
                _instance("i-0ddd3333eeee4444f", "stopped"),
                _instance("i-0fff5555aaaa6666b", "terminated", "gone"),
            ),
        )
        ssm.add_response("describe_instance_information", SSM_INFO)
        records = ec2_instances.read_instances(scope(factory, "us-east-1"), SsmAvailability())
    assert [
        (r.aws_id, r.name, r.attributes["ssm_status"], r.attributes["ssm_managed"]) for r in records
    ] == [
        ("i-0aaa1111bbbb2222c", "web-1", "managed", True),
        ("i-0ddd3333eeee4444f", "i-0ddd3333eeee4444f", "not-managed", False),
    ]
    assert records[0].arn == f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0aaa1111bbbb2222c"
    assert records[0].attributes["ssm_ping_status"] == "Online"


def test_ssm_5xx_is_unknown_and_not_asked_again_in_the_same_sync() -> None:
    """moto 5.2.5 answers DescribeInstanceInformation with HTTP 500 (not implemented)."""
    factory = offline_factory()
    availability = SsmAvailability()
    with stubbed(factory, "ec2") as ec2, stubbed(factory, "ssm") as ssm:
        ec2.add_response("describe_instances", _reservations(_instance("i-01", "running")))
        ssm.add_client_error("describe_instance_information", "500", "Internal Server Error", 500)
        ec2.add_response("describe_instances", _reservations(_instance("i-02", "running")))
        first = ec2_instances.read_instances(scope(factory, "us-east-1"), availability)
        second = ec2_instances.read_instances(scope(factory, "us-east-1"), availability)
    assert [r.attributes["ssm_status"] for r in first + second] == ["unknown", "unknown"]
    assert [r.attributes["ssm_managed"] for r in first + second] == [None, None]
    assert "ssm:DescribeInstanceInformation" in str(second[0].attributes["ssm_detail"])


def test_ssm_access_denied_fails_the_region() -> None:
    factory = offline_factory()
    with stubbed(factory, "ec2") as ec2, stubbed(factory, "ssm") as ssm:
        ec2.add_response("describe_instances", _reservations(_instance("i-01", "running")))
        ssm.add_client_error(
            "describe_instance_information", "AccessDeniedException", "denied", 400
        )
        with pytest.raises(AccessDenied):
            ec2_instances.read_instances(scope(factory, "us-east-1"), SsmAvailability())


def test_empty_region_does_not_ask_ssm() -> None:
    factory = offline_factory()
    with stubbed(factory, "ec2") as ec2, stubbed(factory, "ssm"):
        ec2.add_response("describe_instances", {"Reservations": []})
        assert ec2_instances.read_instances(scope(factory, "us-east-1"), SsmAvailability()) == []


def test_ssm_lookup_status() -> None:
    lookup = ec2_instances.transform_ssm(SSM_INFO["InstanceInformationList"])
    assert lookup.status("i-0aaa1111bbbb2222c") is SsmStatus.MANAGED
    assert lookup.status("i-other") is SsmStatus.NOT_MANAGED
    assert SsmLookup(known=False).status("i-0aaa1111bbbb2222c") is SsmStatus.UNKNOWN


def _db(identifier: str, engine: str, tags: list[dict[str, str]] | None) -> dict[str, object]:
    db: dict[str, object] = {
        "DBInstanceIdentifier": identifier,
        "DBInstanceClass": "db.t3.micro",
        "Engine": engine,
        "EngineVersion": "16.3",
        "DBInstanceStatus": "available",
        "Endpoint": {"Address": f"{identifier}.abc.eu-west-1.rds.amazonaws.com", "Port": 5432},
        "DbiResourceId": "db-ABCDEFGHIJKLMNOP",
        "DBInstanceArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:{identifier}",
        "IAMDatabaseAuthenticationEnabled": True,
    }
    if tags is not None:
        db["TagList"] = tags
    return db


def test_rds_instances_tags_from_tag_list_or_list_tags_for_resource() -> None:
    factory = offline_factory()
    owner = [{"Key": "owner", "Value": "data-team"}]
    with stubbed(factory, "rds", "eu-west-1") as client:
        client.add_response(
            "describe_db_instances",
            {
                "DBInstances": [
                    _db("orders", "postgres", owner),
                    _db("legacy", "mysql", None),
                    _db("graph", "neptune", []),
                ]
            },
        )
        client.add_response(
            "list_tags_for_resource",
            {"TagList": [{"Key": "owner", "Value": "security"}]},
            {"ResourceName": f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:legacy"},
        )
        records = rds.read_db_instances(scope(factory, "eu-west-1"))
    assert [(r.aws_id, r.region, r.tags) for r in records] == [
        ("orders", "eu-west-1", {"owner": "data-team"}),
        ("legacy", "eu-west-1", {"owner": "security"}),
    ]
    assert records[0].attributes["resource_id"] == "db-ABCDEFGHIJKLMNOP"
    assert records[0].attributes["iam_auth"] is True


def test_rds_clusters() -> None:
    cluster = {
        "DBClusterIdentifier": "users-aurora",
        "DBClusterArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:users-aurora",
        "Engine": "aurora-postgresql",
        "EngineVersion": "16.4",
        "Status": "available",
        "Endpoint": "users-aurora.cluster-abc.us-east-1.rds.amazonaws.com",
        "Port": 5432,
        "DbClusterResourceId": "cluster-ABCDEFGHIJ",
        "IAMDatabaseAuthenticationEnabled": False,
        "TagList": [],
    }
    records = rds.transform_db_clusters([rds.RawDatabase(cluster, [])], ACCOUNT, "us-east-1")
    assert [(r.type, r.aws_id, r.arn, r.attributes["port"]) for r in records] == [
        ("rds-cluster", "users-aurora", cluster["DBClusterArn"], 5432)
    ]


def test_grantflows_own_roles_are_never_offered_the_connectors_included() -> None:
    """The connector's role (its documented name, and the role the connector runs as) is
    hidden like the management and member roles (issue 17)."""
    own = iam_roles.role_name_of("arn:aws:sts::123456789012:assumed-role/acme-gf-connector/s1")
    assert own == "acme-gf-connector"
    assert iam_roles.role_name_of("arn:aws:iam::123456789012:role/path/x-connector") == (
        "x-connector"
    )
    assert iam_roles.role_name_of("arn:aws:iam::123456789012:user/moto") is None
    readers = member_readers("GrantflowMemberRole", SsmAvailability(), [own])
    factory = offline_factory()
    names = ["grantflow-connector", "acme-gf-connector", "GrantflowManagementRole"]
    roles = [_role(n) for n in [*names, "GrantflowMemberRole", "deploy"]]
    with stubbed(factory, "iam") as iam:
        iam.add_response("list_roles", {"Roles": roles, "IsTruncated": False})
        iam.add_response(
            "list_role_tags", {"Tags": [], "IsTruncated": False}, {"RoleName": "deploy"}
        )
        records = readers["iam-role"](scope(factory))
    assert [r.name for r in records] == ["deploy"]
