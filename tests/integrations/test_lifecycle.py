"""The integration lifecycle as the control plane sees it, driven through the connector
protocol over HTTP: verify → sync → active; a failed verify → error with the message; an
account that could not be read → warning, and nothing of it is removed.

The connector side (what AWS answers) is tested against moto in tests/aws/sync and
tests/e2e; moto enforces no trust policy, so the refusals here are the real translated
error messages a connector reports.
"""

from __future__ import annotations

from typing import Any

from tests.fixtures.api import Api
from tests.fixtures.integrations import ROLE, integration_body


def _setup(api: Api) -> tuple[str, dict[str, str], str]:
    r = api.client.post("/api/v1/connectors", json={"name": "c"}, headers=api.as_admin())
    cid, headers = r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}
    body = integration_body(cid, ["aws-account", "s3-bucket"])
    integ = api.client.post("/api/v1/integrations", json=body, headers=api.as_admin()).json()
    return cid, headers, integ["id"]


def _lease(api: Api, cid: str, headers: dict[str, str]) -> dict[str, Any]:
    r = api.client.post(f"/api/v1/connectors/{cid}/jobs/lease", json={"wait_seconds": 0},
                        headers=headers)  # fmt: skip
    (job,) = r.json()["jobs"]
    return dict(job)


def _status(api: Api, integration_id: str) -> dict[str, Any]:
    return dict(api.client.get(f"/api/v1/integrations/{integration_id}",
                               headers=api.as_admin()).json())  # fmt: skip


def _account(account: str, outcome: str, buckets: list[str], detail: str | None = None) -> dict:
    resources = [{"type": "aws-account", "aws_id": account, "name": f"acct-{account}",
                  "account_id": account}]  # fmt: skip
    resources += [{"type": "s3-bucket", "aws_id": b, "name": b, "account_id": account,
                   "region": "us-east-1", "arn": f"arn:aws:s3:::{b}"} for b in buckets]  # fmt: skip
    types = ["aws-account"] + (["s3-bucket"] if outcome == "synced" else [])
    return {"account_id": account, "name": f"acct-{account}", "outcome": outcome,
            "detail": detail, "types_read": types, "ou_path": ["r-ab12"],
            "resources": resources}  # fmt: skip


def _summary(accounts: int, outcomes: dict[str, int]) -> dict[str, Any]:
    return {"organization_id": "o-abc1234567", "management_account_id": "123456789012",
            "root_id": "r-ab12", "accounts_total": accounts, "accounts_by_outcome": outcomes,
            "resources_by_type": {}, "aws_calls": 10, "duration_seconds": 1.0}  # fmt: skip


def _run_sync(api: Api, cid: str, headers: dict[str, str], accounts: list[dict]) -> None:
    job = _lease(api, cid, headers)
    assert job["type"] == "sync"
    for account in accounts:
        r = api.client.post(f"/api/v1/connectors/{cid}/jobs/{job['id']}/sync-batch",
                            json={"lease_id": job["lease_id"], "account": account},
                            headers=headers)  # fmt: skip
        assert r.status_code == 200, r.text
    outcomes: dict[str, int] = {}
    for a in accounts:
        outcomes[a["outcome"]] = outcomes.get(a["outcome"], 0) + 1
    r = api.client.post(f"/api/v1/connectors/{cid}/jobs/{job['id']}/complete",
                        json={"lease_id": job["lease_id"],
                              "result": _summary(len(accounts), outcomes)},
                        headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text


def _verify_ok(api: Api, cid: str, headers: dict[str, str]) -> None:
    job = _lease(api, cid, headers)
    assert job["type"] == "verify" and job["payload"]["external_id"] == cid
    api.client.post(f"/api/v1/connectors/{cid}/jobs/{job['id']}/complete",
                    json={"lease_id": job["lease_id"], "result": {
                        "organization_id": "o-abc1234567",
                        "management_account_id": "123456789012"}}, headers=headers)  # fmt: skip


def _buckets(api: Api, account: str) -> set[str]:
    page = api.client.get("/api/v1/resources", params={"account": account, "type": "s3-bucket"},
                          headers=api.as_admin()).json()  # fmt: skip
    return {r["aws_id"] for r in page["items"]}


def test_failed_verify_is_error_with_the_actionable_message(api: Api) -> None:
    cid, headers, integration_id = _setup(api)
    job = _lease(api, cid, headers)
    message = (f"sts:AssumeRole on {ROLE} was denied — check the role's trust policy allows "
               f"the connector role and that sts:ExternalId is {cid}")  # fmt: skip
    api.client.post(f"/api/v1/connectors/{cid}/jobs/{job['id']}/fail",
                    json={"lease_id": job["lease_id"], "error": message, "retryable": False},
                    headers=headers)  # fmt: skip
    got = _status(api, integration_id)
    assert got["status"] == "error"
    assert "trust policy" in got["status_message"] and cid in got["status_message"]


def test_sync_then_warning_keeps_what_could_not_be_read(api: Api) -> None:
    cid, headers, integration_id = _setup(api)
    _verify_ok(api, cid, headers)
    _run_sync(api, cid, headers, [_account("111111111111", "synced", ["a1", "a2"]),
                                  _account("222222222222", "synced", ["b1"])])  # fmt: skip
    got = _status(api, integration_id)
    assert got["status"] == "active"
    assert got["counts"] == {"aws-account": 2, "s3-bucket": 3}
    # Second sync: bucket a2 is gone from account 1; account 2's member role is missing.
    api.client.post(f"/api/v1/integrations/{integration_id}/sync", headers=api.as_admin())
    assert _status(api, integration_id)["status"] == "refreshing"
    denied = "GrantflowMemberRole cannot be assumed in 222222222222: deploy the StackSet there"
    second = [
        _account("111111111111", "synced", ["a1"]),
        _account("222222222222", "access_denied", [], denied),
    ]
    _run_sync(api, cid, headers, second)
    got = _status(api, integration_id)
    assert got["status"] == "warning"
    assert "222222222222" in got["status_message"] and "StackSet" in got["status_message"]
    assert _buckets(api, "111111111111") == {"a1"}
    assert _buckets(api, "222222222222") == {"b1"}  # could not be read: kept
    history = api.client.get(f"/api/v1/integrations/{integration_id}/syncs",
                             headers=api.as_admin()).json()  # fmt: skip
    assert [h["state"] for h in history] == ["warning", "succeeded"]
    assert history[0]["counts"]["s3-bucket"]["removed"] == 1
