"""Write realistic organization-trail log files (gzip JSON, CloudTrail's layout) into S3.

The demo has no real CloudTrail, so it writes what an organization trail would have delivered
for its demo grants — the calls a user made in their Identity Center role session — next to
noise a real trail always holds (other users, other roles, other accounts), so session audit
has something to show and something to leave out.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# (eventSource, eventName, readOnly, errorCode) a console/CLI session typically produces
ACTIVITY: tuple[tuple[str, str, bool, str | None], ...] = (
    ("sts.amazonaws.com", "GetCallerIdentity", True, None),
    ("s3.amazonaws.com", "ListBuckets", True, None),
    ("s3.amazonaws.com", "GetBucketPolicy", True, "NoSuchBucketPolicy"),
    ("ec2.amazonaws.com", "DescribeInstances", True, None),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", True, None),
    ("iam.amazonaws.com", "ListRoles", True, None),
    ("iam.amazonaws.com", "CreateUser", False, "AccessDenied"),
    ("logs.amazonaws.com", "FilterLogEvents", True, None),
    ("cloudwatch.amazonaws.com", "GetMetricData", True, None),
    ("rds.amazonaws.com", "DescribeDBInstances", True, None),
)


@dataclass(frozen=True)
class SessionSpec:
    """One user's Identity Center role session in one account."""

    account_id: str
    permission_set_name: str
    session_name: str  # the Identity Store user name, e.g. jane@example.com
    start: datetime
    end: datetime


def sso_role_name(permission_set_name: str, seed: str = "") -> str:
    suffix = uuid.uuid5(uuid.NAMESPACE_OID, permission_set_name + seed).hex[:16]
    return f"AWSReservedSSO_{permission_set_name}_{suffix}"


def record(
    session: SessionSpec, when: datetime, source: str, name: str, *, region: str = "us-east-1",
    error_code: str | None = None, read_only: bool = True, source_ip: str = "198.51.100.23",
) -> dict[str, Any]:  # fmt: skip
    """One CloudTrail record (eventVersion 1.08) of a call made in ``session``."""
    role = sso_role_name(session.permission_set_name, session.account_id)
    role_id = "AROA" + uuid.uuid5(uuid.NAMESPACE_OID, role).hex[:17].upper()
    rec: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"{role_id}:{session.session_name}",
            "arn": f"arn:aws:sts::{session.account_id}:assumed-role/{role}/{session.session_name}",
            "accountId": session.account_id,
            "accessKeyId": "ASIA" + uuid.uuid4().hex[:16].upper(),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role", "principalId": role_id,
                    "arn": f"arn:aws:iam::{session.account_id}:role/aws-reserved/"
                           f"sso.amazonaws.com/{role}",
                    "accountId": session.account_id, "userName": role,
                },
                "webIdFederationData": {},
                "attributes": {"creationDate": session.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "mfaAuthenticated": "false"},
            },
        },
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source, "eventName": name, "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22",
        "requestParameters": None, "responseElements": None,
        "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()),
        "readOnly": read_only, "eventType": "AwsApiCall", "managementEvent": True,
        "recipientAccountId": session.account_id, "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": source},
    }  # fmt: skip
    if error_code:
        rec["errorCode"] = error_code
        rec["errorMessage"] = f"User is not authorized to perform: {name}"
    return rec


def log_key(organization_id: str, account_id: str, region: str, delivered: datetime) -> str:
    stamp = delivered.strftime("%Y%m%dT%H%MZ")
    return (f"AWSLogs/{organization_id}/{account_id}/CloudTrail/{region}/"
            f"{delivered:%Y/%m/%d}/{account_id}_CloudTrail_{region}_{stamp}_"
            f"{uuid.uuid4().hex[:16]}.json.gz")  # fmt: skip


def put_log_file(
    s3: Any, bucket: str, organization_id: str, account_id: str, region: str,
    delivered: datetime, records: Sequence[dict[str, Any]],
) -> str:  # fmt: skip
    key = log_key(organization_id, account_id, region, delivered)
    body = gzip.compress(json.dumps({"Records": list(records)}).encode("utf-8"))
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                  ContentEncoding="gzip")  # fmt: skip
    return key


def session_activity(session: SessionSpec, calls: int, rng: random.Random) -> list[dict[str, Any]]:
    span = max((session.end - session.start).total_seconds(), 60.0)
    out = []
    for _ in range(calls):
        when = session.start + timedelta(seconds=rng.uniform(0, span))
        source, name, read_only, error = rng.choice(ACTIVITY)
        out.append(record(session, when, source, name, error_code=error, read_only=read_only))
    return sorted(out, key=lambda r: str(r["eventTime"]))


def write_trail_files(
    s3: Any, bucket: str, organization_id: str, sessions: Iterable[SessionSpec], *,
    calls_per_session: int = 12, region: str = "us-east-1", seed: int = 7,
) -> list[str]:  # fmt: skip
    """For each session: its calls, plus noise (another user with the same permission set, the
    same user before the session began) delivered in five-minute files, as CloudTrail does."""
    rng = random.Random(seed)  # demo data, not security
    keys = []
    for spec in sessions:
        records = session_activity(spec, calls_per_session, rng)
        other = SessionSpec(spec.account_id, spec.permission_set_name, "someone.else@example.com",
                            spec.start, spec.end)  # fmt: skip
        records += session_activity(other, 3, rng)
        before = spec.start - timedelta(hours=2)
        records.append(record(spec, before, "s3.amazonaws.com", "ListBuckets"))
        by_file: dict[datetime, list[dict[str, Any]]] = {}
        for rec in records:
            when = datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            delivered = when.replace(second=0, microsecond=0) + timedelta(
                minutes=5 - when.minute % 5)  # fmt: skip
            by_file.setdefault(delivered, []).append(rec)
        for delivered, batch in sorted(by_file.items()):
            keys.append(put_log_file(s3, bucket, organization_id, spec.account_id, region,
                                     delivered, batch))  # fmt: skip
    return keys
