"""Pooled permission sets: their deterministic names and inline policies (pure).

Grantflow generates one permission set per (resource, permission) and reuses it for every
user granted that permission on that resource. Its name is
``PERMISSION_SET_NAME_PREFIX + <12 hex digits of sha256(resource ARN)> + "-" + <abbreviation>``,
25 characters, within AWS's limit of 32 characters of ``[\\w+=,.@-]``. The name is the only
key by which the pool is found again, so it must never change for a given input.
"""

from __future__ import annotations

import hashlib
import json

from grantflow.domain.grant_specs import PooledPermission, PooledPermissionSetSpec
from grantflow.domain.grant_specs import PooledResourceType as T

PERMISSION_SET_NAME_PREFIX = "Grantflow-"
PERMISSION_SET_NAME_MAX = 32
_HASH_CHARS = 12
SESSION_DURATION = "PT1H"
SSM_SESSION_DOCUMENTS = ("AWS-StartSSHSession", "AWS-StartInteractiveCommand")

_ABBREVIATIONS = {
    PooledPermission.READ_ONLY: "RO",
    PooledPermission.READ_WRITE: "RW",
    PooledPermission.SESSION: "SS",
    PooledPermission.CONNECT: "DB",
    PooledPermission.ASSUME: "AR",
}

Statement = dict[str, object]


def permission_set_name(resource_arn: str, permission: PooledPermission) -> str:
    """The stable name of the pooled permission set for ``(resource_arn, permission)``."""
    digest = hashlib.sha256(resource_arn.encode()).hexdigest()[:_HASH_CHARS]
    return f"{PERMISSION_SET_NAME_PREFIX}{digest}-{_ABBREVIATIONS[permission]}"


def is_pooled_name(name: str) -> bool:
    return name.startswith(PERMISSION_SET_NAME_PREFIX)


def description(spec: PooledPermissionSetSpec) -> str:
    """The permission set's description (AWS allows 700 characters)."""
    return f"Grantflow {spec.permission} on {spec.resource_arn}"[:700]


def _allow(sid: str, actions: list[str], resources: list[str]) -> Statement:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def _s3(spec: PooledPermissionSetSpec) -> list[Statement]:
    bucket = spec.resource_arn
    read = _allow("ListBucket", ["s3:ListBucket"], [bucket])
    objects = ["s3:GetObject"]
    if spec.permission is PooledPermission.READ_WRITE:
        objects += ["s3:PutObject", "s3:DeleteObject"]
    return [read, _allow("Objects", objects, [f"{bucket}/*"])]


def _ec2(spec: PooledPermissionSetSpec) -> list[Statement]:
    p, region, account = spec.partition, spec.region, spec.account_id
    documents = [f"arn:{p}:ssm:{region}::document/{name}" for name in SSM_SESSION_DOCUMENTS]
    own_sessions = f"arn:{p}:ssm:{region}:{account}:session/${{aws:userid}}-*"
    return [
        _allow("StartSession", ["ssm:StartSession"], [spec.resource_arn, *documents]),
        _allow("OwnSessions", ["ssm:ResumeSession", "ssm:TerminateSession"], [own_sessions]),
    ]


def _rds(spec: PooledPermissionSetSpec) -> list[Statement]:
    p, region, account = spec.partition, spec.region, spec.account_id
    db_users = f"arn:{p}:rds-db:{region}:{account}:dbuser:{spec.resource_id}/*"
    return [_allow("Connect", ["rds-db:connect"], [db_users])]


def _iam_role(spec: PooledPermissionSetSpec) -> list[Statement]:
    return [_allow("AssumeRole", ["sts:AssumeRole"], [spec.resource_arn])]


_STATEMENTS = {
    T.S3_BUCKET: _s3,
    T.EC2_INSTANCE: _ec2,
    T.RDS_INSTANCE: _rds,
    T.RDS_CLUSTER: _rds,
    T.IAM_ROLE: _iam_role,
}


def policy_document(spec: PooledPermissionSetSpec) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": _STATEMENTS[spec.resource_type](spec)}


def inline_policy(spec: PooledPermissionSetSpec) -> str:
    """The inline policy as canonical JSON (sorted keys, no spaces): equal input, equal text."""
    return canonical(policy_document(spec))


def canonical(document: object) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def same_policy(a: str, b: str) -> bool:
    """Whether two policy texts are the same document (AWS may reformat what it stores)."""
    try:
        return canonical(json.loads(a)) == canonical(json.loads(b))
    except ValueError:
        return False
