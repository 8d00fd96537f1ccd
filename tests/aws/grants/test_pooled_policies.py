"""Pooled permission set names and inline policies (pure)."""

from __future__ import annotations

import json
import re

import pytest

from grantflow.aws import pooled_policies
from grantflow.domain.grant_specs import PooledPermission as P
from grantflow.domain.grant_specs import PooledPermissionSetSpec
from grantflow.domain.grant_specs import PooledResourceType as T

BASE = {"instance_arn": "arn:aws:sso:::instance/ssoins-1", "identity_store_id": "d-1"}
ACCOUNT = "111122223333"
NAME_CHARS = re.compile(r"^[\w+=,.@-]{1,32}$")


def _spec(
    rtype: T, arn: str, rid: str, permission: P, region: str | None = None
) -> PooledPermissionSetSpec:
    return PooledPermissionSetSpec(
        **BASE,
        principal_id="u-1",
        resource_type=rtype,
        resource_arn=arn,
        resource_id=rid,
        account_id=ACCOUNT,
        region=region,
        permission=permission,
    )


SPECS = {
    "s3-ro": _spec(T.S3_BUCKET, "arn:aws:s3:::reports", "reports", P.READ_ONLY),
    "s3-rw": _spec(T.S3_BUCKET, "arn:aws:s3:::reports", "reports", P.READ_WRITE),
    "ec2": _spec(
        T.EC2_INSTANCE,
        f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abc",
        "i-0abc",
        P.SESSION,
        "eu-west-1",
    ),
    "rds": _spec(
        T.RDS_INSTANCE,
        f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:orders",
        "db-ABCDEFGHIJKL",
        P.CONNECT,
        "eu-west-1",
    ),
    "aurora": _spec(
        T.RDS_CLUSTER,
        f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:ledger",
        "cluster-XYZ",
        P.CONNECT,
        "eu-west-1",
    ),
    "role": _spec(T.IAM_ROLE, f"arn:aws:iam::{ACCOUNT}:role/Deployer", "Deployer", P.ASSUME),
}


def _statements(key: str) -> dict[str, tuple[list[str], list[str]]]:
    document = json.loads(pooled_policies.inline_policy(SPECS[key]))
    assert document["Version"] == "2012-10-17"
    return {s["Sid"]: (s["Action"], s["Resource"]) for s in document["Statement"]}


def test_names_are_short_valid_stable_and_distinct() -> None:
    names = {
        key: pooled_policies.permission_set_name(s.resource_arn, s.permission)
        for key, s in SPECS.items()
    }
    assert all(NAME_CHARS.match(n) for n in names.values()), names
    assert all(len(n) <= pooled_policies.PERMISSION_SET_NAME_MAX for n in names.values())
    assert all(pooled_policies.is_pooled_name(n) for n in names.values())
    assert len(set(names.values())) == len(names)
    # Stable across calls and processes: a fixed input has a fixed, known name.
    assert names["s3-ro"] == pooled_policies.permission_set_name(
        "arn:aws:s3:::reports", P.READ_ONLY
    )
    assert names["s3-ro"].startswith("Grantflow-") and names["s3-ro"].endswith("-RO")
    assert names["s3-ro"][:-3] == names["s3-rw"][:-3]  # same resource, other permission


def test_every_policy_is_valid_json_and_deterministic() -> None:
    for spec in SPECS.values():
        text = pooled_policies.inline_policy(spec)
        assert json.loads(text)["Statement"]
        assert text == pooled_policies.inline_policy(spec)
        assert pooled_policies.same_policy(text, json.dumps(json.loads(text), indent=2))
    assert not pooled_policies.same_policy("{}", "not json")


def test_s3_read_only_and_read_write() -> None:
    assert _statements("s3-ro") == {
        "ListBucket": (["s3:ListBucket"], ["arn:aws:s3:::reports"]),
        "Objects": (["s3:GetObject"], ["arn:aws:s3:::reports/*"]),
    }
    assert _statements("s3-rw")["Objects"] == (
        ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        ["arn:aws:s3:::reports/*"],
    )


def test_ec2_session_on_the_instance_and_own_sessions_only() -> None:
    found = _statements("ec2")
    assert found["StartSession"] == (
        ["ssm:StartSession"],
        [
            f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abc",
            "arn:aws:ssm:eu-west-1::document/AWS-StartSSHSession",
            "arn:aws:ssm:eu-west-1::document/AWS-StartInteractiveCommand",
        ],
    )
    assert found["OwnSessions"] == (
        ["ssm:ResumeSession", "ssm:TerminateSession"],
        [f"arn:aws:ssm:eu-west-1:{ACCOUNT}:session/${{aws:userid}}-*"],
    )


def test_rds_connect_names_the_resource_id() -> None:
    assert _statements("rds") == {
        "Connect": (
            ["rds-db:connect"],
            [f"arn:aws:rds-db:eu-west-1:{ACCOUNT}:dbuser:db-ABCDEFGHIJKL/*"],
        )
    }
    assert _statements("aurora")["Connect"][1] == [
        f"arn:aws:rds-db:eu-west-1:{ACCOUNT}:dbuser:cluster-XYZ/*"
    ]


def test_iam_role_assume() -> None:
    assert _statements("role") == {
        "AssumeRole": (["sts:AssumeRole"], [f"arn:aws:iam::{ACCOUNT}:role/Deployer"])
    }


def test_partition_comes_from_the_resource_arn() -> None:
    spec = _spec(
        T.RDS_INSTANCE,
        f"arn:aws-us-gov:rds:us-gov-west-1:{ACCOUNT}:db:x",
        "db-X",
        P.CONNECT,
        "us-gov-west-1",
    )
    text = pooled_policies.inline_policy(spec)
    assert f"arn:aws-us-gov:rds-db:us-gov-west-1:{ACCOUNT}:dbuser:db-X/*" in text


def test_spec_rejects_a_permission_the_type_does_not_have() -> None:
    with pytest.raises(ValueError, match="has no permission"):
        _spec(T.S3_BUCKET, "arn:aws:s3:::reports", "reports", P.SESSION)
    with pytest.raises(ValueError, match="needs a region"):
        _spec(T.EC2_INSTANCE, f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-1", "i-1", P.SESSION)
