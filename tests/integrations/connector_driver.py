"""Drive an integration through the connector protocol over HTTP, as a connector would: verify,
then syncs whose accounts, directory, permission sets and OUs the test chooses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import transaction
from grantflow.store.models import User
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_body

STORE = "d-1234567890"
INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890abcdef"


def account(
    account_id: str,
    *,
    outcome: str = "synced",
    status: str = "ACTIVE",
    ou_path: tuple[str, ...] = ("r-ab12",),
    buckets: tuple[str, ...] = (),
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {"type": "aws-account", "aws_id": account_id, "name": f"acct-{account_id}",
         "account_id": account_id, "tags": tags or {},
         "attributes": {"status": status}}
    ]  # fmt: skip
    resources += [{"type": "s3-bucket", "aws_id": b, "name": b, "account_id": account_id,
                   "region": "us-east-1", "arn": f"arn:aws:s3:::{b}"} for b in buckets]  # fmt: skip
    types = ["aws-account"] + (["s3-bucket"] if outcome == "synced" else [])
    return {"account_id": account_id, "name": f"acct-{account_id}", "outcome": outcome,
            "status": status, "detail": None if outcome == "synced" else f"account is {status}",
            "types_read": types, "ou_path": list(ou_path), "resources": resources}  # fmt: skip


def directory(groups: dict[str, list[str]], users: list[str]) -> dict[str, Any]:
    return {
        "identity_store_id": STORE,
        "instance_arn": INSTANCE,
        "users": [{"identity_store_user_id": f"u-{u}", "username": u} for u in users],
        "groups": [
            {
                "identity_store_group_id": f"g-{g}",
                "name": g,
                "member_user_ids": [f"u-{m}" for m in members],
            }
            for g, members in groups.items()
        ],
    }


def permission_set(name: str) -> dict[str, Any]:
    return {"arn": f"{INSTANCE}/ps-{name.lower()}", "name": name}


@dataclass
class Driver:
    api: Api
    connector_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    integration_id: str = ""

    @property
    def admin(self) -> dict[str, str]:
        return self.api.as_admin()

    def create(self, resource_types: list[str] | None = None, **config: Any) -> Any:
        r = self.api.client.post("/api/v1/connectors", json={"name": "c"}, headers=self.admin)
        self.connector_id = r.json()["id"]
        self.headers = {"Authorization": f"Bearer {r.json()['token']}"}
        body = integration_body(
            self.connector_id, resource_types or ["aws-account", "s3-bucket"], **config
        )
        r = self.api.client.post("/api/v1/integrations", json=body, headers=self.admin)
        if r.status_code == 201:
            self.integration_id = r.json()["id"]
        return r

    def lease(self, job_type: str | None = None) -> dict[str, Any]:
        """Lease the queued jobs; the first of ``job_type`` (others stay leased, unanswered)."""
        r = self.api.client.post(
            f"/api/v1/connectors/{self.connector_id}/jobs/lease",
            json={"wait_seconds": 0, "max_jobs": 50, "lease_seconds": 600},
            headers=self.headers,
        )
        jobs = [j for j in r.json()["jobs"] if job_type is None or j["type"] == job_type]
        assert jobs, f"no {job_type or ''} job to lease"
        return dict(jobs[0])

    def complete(self, job: dict[str, Any], result: dict[str, Any]) -> None:
        r = self.api.client.post(
            f"/api/v1/connectors/{self.connector_id}/jobs/{job['id']}/complete",
            json={"lease_id": job["lease_id"], "result": result},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text

    def verify_ok(self, **result: Any) -> dict[str, Any]:
        job = self.lease("verify")
        self.complete(job, {"organization_id": "o-abc1234567",
                            "management_account_id": "123456789012", **result})  # fmt: skip
        return dict(job["payload"])

    def sync(self, accounts: list[dict[str, Any]], **summary: Any) -> dict[str, Any]:
        """Lease the queued sync (asking for one when none is queued) and report it."""
        job = self.lease("sync")
        for acct in accounts:
            r = self.api.client.post(
                f"/api/v1/connectors/{self.connector_id}/jobs/{job['id']}/sync-batch",
                json={"lease_id": job["lease_id"], "account": acct},
                headers=self.headers,
            )
            assert r.status_code == 200, r.text
        outcomes: dict[str, int] = {}
        for acct in accounts:
            outcomes[acct["outcome"]] = outcomes.get(acct["outcome"], 0) + 1
        result = {"organization_id": "o-abc1234567", "management_account_id": "123456789012",
                  "root_id": "r-ab12", "accounts_total": len(accounts),
                  "accounts_by_outcome": outcomes, "resources_by_type": {}, "aws_calls": 1,
                  "duration_seconds": 0.1, **summary}  # fmt: skip
        self.complete(job, result)
        return self.status()

    def resync(self, accounts: list[dict[str, Any]], **summary: Any) -> dict[str, Any]:
        r = self.api.client.post(
            f"/api/v1/integrations/{self.integration_id}/sync", headers=self.admin
        )
        assert r.status_code in (200, 201, 202), r.text
        return self.sync(accounts, **summary)

    def status(self) -> dict[str, Any]:
        r = self.api.client.get(f"/api/v1/integrations/{self.integration_id}", headers=self.admin)
        return dict(r.json())

    def history(self) -> list[dict[str, Any]]:
        r = self.api.client.get(
            f"/api/v1/integrations/{self.integration_id}/syncs", headers=self.admin
        )
        return list(r.json())

    def token_for(self, username: str) -> dict[str, str]:
        ctx = self.api.client.app.state.ctx  # type: ignore[attr-defined]
        with transaction(ctx.sessions) as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            token = create_personal_token(session, user, "test", SYSTEM).plaintext
        return {"Authorization": f"Bearer {token}"}

    def flow(self, name: str, **definition: Any) -> Any:
        body = {"name": name, "integration_id": self.integration_id, "definition": definition}
        return self.api.client.post("/api/v1/access-flows", json=body, headers=self.admin)

    def resources(self, rtype: str) -> dict[str, str]:
        """aws_id → resource id of the integration's resources of ``rtype``."""
        page = self.api.client.get(
            "/api/v1/resources",
            params={"integration_id": self.integration_id, "type": rtype, "limit": 200},
            headers=self.admin,
        ).json()
        return {r["aws_id"]: r["id"] for r in page["items"]}
