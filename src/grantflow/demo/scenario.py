"""What the demo sets up after the server starts, through the same public API an admin uses:
the integration (then its owners, once the directory is synced), sample access flows, and
passwords for a few demo users so a visitor can sign in as them."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from grantflow.demo.org_summary import OrgSummary
from grantflow.services.auth.passwords import hash_password
from grantflow.services.identity.principals import principals_of
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User

SYNC_TIMEOUT_SECONDS = 300.0
INTEGRATION_NAME = "Acme Organization"
CUSTOM_DETAILS = (
    "Sign in through the AWS access portal. Production access is recorded; "
    "questions go to #cloud-access."
)


class DemoSetupError(RuntimeError):
    """A step of the demo scenario did not work; the message says which."""


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    why: str


def _check(response: httpx.Response, step: str) -> Any:
    if response.status_code >= 400:
        raise DemoSetupError(f"{step}: HTTP {response.status_code} {response.text[:300]}")
    return response.json()


def _wait_active(client: httpx.Client, integration_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        got = client.get(f"/api/v1/integrations/{integration_id}").json()
        if got["status"] in ("active", "warning"):
            return dict(got)
        if got["status"] == "error":
            raise DemoSetupError(f"integration sync failed: {got['status_message']}")
        time.sleep(0.5)
    raise DemoSetupError("the integration did not finish its first sync in time")


def create_integration(
    client: httpx.Client, org: OrgSummary, connector_id: str, role_arn: str, audit_bucket: str
) -> dict[str, Any]:
    body = {
        "name": INTEGRATION_NAME,
        "connector_id": connector_id,
        "resource_types": ["aws-account", "identity-center-group", "iam-role", "s3-bucket",
                           "ec2-instance", "rds-instance", "rds-cluster"],
        "config": {
            "region": "us-east-1",
            "sso_region": org.sso_region,
            "sso_portal": f"https://{org.identity_store_id}.awsapps.com/start",
            "management_role_arn": role_arn,
            "exclude_ou_ids": list(org.excluded_ou_ids),
            "sync_regions": list(org.regions),
            "enable_audit": True,
            "audit_bucket": audit_bucket,
            "custom_access_details": CUSTOM_DETAILS,
            # revoking in the demo also ends the sessions (the request shows the cut)
            "cut_sessions_on_own_permission_sets": True,
        },
    }  # fmt: skip
    created = _check(client.post("/api/v1/integrations", json=body), "create the integration")
    active = _wait_active(client, created["id"])
    config = {
        **body["config"],  # type: ignore[dict-item]
        "integration_owners": [{"kind": "group", "value": "security"}],
        "resource_owner": {"tag_key": org.owner_tag_key, "attribute": "group_name"},
    }
    _check(client.patch(f"/api/v1/integrations/{active['id']}", json={"config": config}),
           "set the integration and resource owners")  # fmt: skip
    return _wait_active(client, active["id"])


def _group_ids(client: httpx.Client) -> dict[str, str]:
    page = _check(client.get("/api/v1/groups", params={"limit": 500}), "list groups")
    return {g["name"]: g["id"] for g in page["items"]}


def create_flows(client: httpx.Client, integration_id: str) -> list[str]:
    groups = _group_ids(client)
    developers = groups.get("developers")
    everyone = {"everyone": True}
    devs = {"group_ids": [developers]} if developers else everyone
    flows = [
        ("Read-only for engineers", "Any engineer may read any account for up to 4 hours.",
         {"requestors": devs, "scope": {"resource_types": ["aws-account"], "mode": "all"},
          "permissions": {"aws-account": ["ReadOnlyAccess"]}, "approval": {"mode": "auto"},
          "max_duration_seconds": 4 * 3600, "default_duration_seconds": 3600}),
        ("Admin with owner approval", "Administrator access, approved by the account owner.",
         {"requestors": everyone, "scope": {"resource_types": ["aws-account"], "mode": "all"},
          "permissions": {"aws-account": ["AdministratorAccess", "PowerUserAccess"]},
          "approval": {"mode": "any", "groups": [{"kind": "resource_owner"}]},
          "justification_required": True, "justification_pattern": r"[A-Z]+-\d+",
          "approver_reason_required": True, "max_duration_seconds": 2 * 3600,
          "default_duration_seconds": 3600, "max_extensions": 1}),
        ("S3 data access", "Read or write a bucket, approved by its owner.",
         {"requestors": everyone, "scope": {"resource_types": ["s3-bucket"], "mode": "all"},
          "permissions": {"s3-bucket": ["read-only", "read-write"]},
          "approval": {"mode": "any", "groups": [{"kind": "resource_owner"}]},
          "max_duration_seconds": 8 * 3600, "default_duration_seconds": 3600}),
        ("EC2 shell", "A Session Manager shell on an instance, for engineers.",
         {"requestors": devs, "scope": {"resource_types": ["ec2-instance"], "mode": "all"},
          "permissions": {"ec2-instance": ["session"]}, "approval": {"mode": "auto"},
          "max_duration_seconds": 2 * 3600, "default_duration_seconds": 1800}),
    ]  # fmt: skip
    names = []
    for name, description, definition in flows:
        body = {"name": name, "description": description, "integration_id": integration_id,
                "definition": definition}  # fmt: skip
        _check(client.post("/api/v1/access-flows", json=body), f"create flow {name!r}")
        names.append(name)
    return names


def demo_logins(database_url: str, org: OrgSummary) -> list[DemoLogin]:
    """Give the bootstrap admin and a few synced users a password (printed once)."""
    owners = {g.name: g.members for g in org.groups}
    picks: list[tuple[str, str, str]] = [("admin", "admin", "configure everything")]
    for group in ("security", "platform-team"):
        members = owners.get(group, ())
        if members:
            picks.append((members[0], "member", f"approver: member of {group}"))
    for user in org.users:
        if len(picks) >= 5:
            break
        if user.username not in {p[0] for p in picks}:
            picks.append((user.username, "member", "requester"))
    engine = build_engine(database_url)
    logins = []
    try:
        with transaction(session_factory(engine)) as session:
            for username, role, why in picks:
                user = session.scalar(select(User).where(User.username == username))
                if user is None:
                    continue
                password = secrets.token_urlsafe(9)
                user.password_hash = hash_password(password)
                user.role = role
                logins.append(DemoLogin(username, password, role, why))
    finally:
        engine.dispose()
    return logins


def _personal_token(database_url: str, username: str) -> str | None:
    """A personal API token for a synced demo user (as if they had made one in the UI)."""
    from grantflow.services.audit.trail import SYSTEM
    from grantflow.services.auth.tokens import create_personal_token

    engine = build_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None or not principals_of(session, user.id):
                return None
            return create_personal_token(session, user, "demo", SYSTEM).plaintext
    finally:
        engine.dispose()


def demo_pending_request(client: httpx.Client, database_url: str, org: OrgSummary,
                         requester: str) -> tuple[str, str] | None:  # fmt: skip
    """Administrator access that waits for the account's owners: they are notified (email,
    webhook) and find it under "My approvals". Returns the request id and the requester's
    personal API token (printed for trying the CLI as them)."""
    token = _personal_token(database_url, requester)
    if token is None:
        return None
    page = _check(client.get("/api/v1/resources", params={"type": "aws-account", "limit": 100}),
                  "list accounts")  # fmt: skip
    owned = [a for a in page["items"]
             if a["aws_id"] != org.management_account_id and a.get("owners")]  # fmt: skip
    account = owned[0] if owned else None
    if account is None:
        return None
    body = {"resource_ids": [account["id"]], "permission": "AdministratorAccess",
            "duration_seconds": 3600,
            "justification": "OPS-1234: rotate the stuck deploy key"}  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    request = _check(client.post("/api/v1/access-requests", json=body, headers=headers),
                     "request administrator access")  # fmt: skip
    return str(request["id"]), token


def demo_grant(
    client: httpx.Client, database_url: str, org: OrgSummary, requester: str, bucket: str
) -> str | None:
    """One granted request, made by a demo user through the API, and the CloudTrail files its
    session would leave (so session audit has something to show once they are delivered)."""
    from datetime import UTC, datetime, timedelta

    import boto3

    from grantflow.demo.cloudtrail_files import SessionSpec, write_trail_files

    token = _personal_token(database_url, requester)
    if token is None:
        return None
    page = _check(client.get("/api/v1/resources", params={"type": "aws-account", "limit": 50}),
                  "list accounts")  # fmt: skip
    account = next(a for a in page["items"] if a["aws_id"] != org.management_account_id)
    headers = {"Authorization": f"Bearer {token}"}
    body = {"resource_ids": [account["id"]], "permission": "ReadOnlyAccess",
            "duration_seconds": 4 * 3600, "justification": "demo: looking around"}  # fmt: skip
    request = _check(client.post("/api/v1/access-requests", json=body, headers=headers),
                     "request demo access")  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = client.get(f"/api/v1/access-requests/{request['id']}", headers=headers).json()
        if got["state"] == "granted":
            break
        time.sleep(0.5)
    else:
        raise DemoSetupError("the demo request was not granted in time")
    start = datetime.fromisoformat(got["granted_at"]).astimezone(UTC) + timedelta(seconds=5)
    session_spec = SessionSpec(account["aws_id"], "ReadOnlyAccess", requester, start,
                               start + timedelta(minutes=20))  # fmt: skip
    write_trail_files(boto3.client("s3", region_name="us-east-1"), bucket,
                      org.organization_id, [session_spec])  # fmt: skip
    return str(request["id"])
