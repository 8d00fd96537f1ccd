"""The typed job protocol at both edges: the connector checks what it leases before a handler
runs, the control plane checks what a connector reports before it is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from grantflow.connector.agent import ConnectorAgent
from grantflow.connector.client import LeasedJob
from grantflow.connector.handlers import default_handlers
from grantflow.services.jobs import queue as jobs
from grantflow.store.db import transaction
from grantflow.store.models import Job
from tests.fixtures.api import Api

ROLE = "arn:aws:iam::111122223333:role/grantflow-management"


class RecordingClient:
    """The agent's side of the HTTP client: what the agent reports, recorded."""

    connector_id = "gfc-typedtypedtypedtyped"

    def __init__(self) -> None:
        self.failed: list[tuple[str, bool]] = []
        self.completed: list[dict[str, Any]] = []

    def complete(self, job: LeasedJob, result: dict[str, Any]) -> None:
        self.completed.append(result)

    def fail(self, job: LeasedJob, message: str, retryable: bool) -> None:
        self.failed.append((message, retryable))


def _leased(job_type: str, payload: dict[str, Any]) -> LeasedJob:
    return LeasedJob(id="job-1", type=job_type, payload=payload, attempt=1, lease_id="lease-1",
                     lease_expires_at=datetime.now(UTC))  # fmt: skip


def test_a_malformed_payload_fails_the_job_for_good_naming_the_field() -> None:
    ran: list[object] = []
    handlers = {**default_handlers(), "grant": lambda ctx, payload: ran.append(payload) or {}}
    client = RecordingClient()
    agent = ConnectorAgent(client, object(), handlers=handlers)  # type: ignore[arg-type]
    bad_spec = {"kind": "account_assignment", "instance_arn": "arn:aws:sso:::instance/i",
                "identity_store_id": "d-1", "principal_id": "u-1", "account_id": "12345",
                "permission_set_arn": "arn:aws:sso:::permissionSet/i/ps"}  # fmt: skip
    agent._run(_leased("grant", {"grant_id": "g-1", "management_role_arn": ROLE,
                                 "spec": bad_spec}))  # fmt: skip
    ((message, retryable),) = client.failed
    assert message.startswith("invalid grant payload: spec.account_assignment.account_id:")
    assert "pattern" in message
    assert retryable is False  # the same payload would fail again
    assert ran == [] and client.completed == []  # no handler ran on it


def test_a_payload_missing_a_field_and_an_unknown_job_type_fail_cleanly() -> None:
    client = RecordingClient()
    agent = ConnectorAgent(client, object(), handlers=default_handlers())  # type: ignore[arg-type]
    agent._run(_leased("sync", {"integration_id": "i-1", "management_role_arn": ROLE}))
    agent._run(_leased("teleport", {}))
    assert client.failed == [
        ("invalid sync payload: sync_run_id: Field required", False),
        ("this connector has no handler for 'teleport'", False),
    ]


def test_a_valid_payload_reaches_its_handler_as_its_model() -> None:
    seen: list[object] = []
    client = RecordingClient()
    agent = ConnectorAgent(client, object(), handlers={  # type: ignore[arg-type]
        "ping": lambda ctx, payload: seen.append(payload) or {"version": "x"}})  # fmt: skip
    agent._run(_leased("ping", {"delay_seconds": 0}))
    assert [type(p).__name__ for p in seen] == ["PingPayload"]
    assert client.completed == [{"version": "x"}]


def _connector(api: Api) -> tuple[str, dict[str, str]]:
    r = api.client.post("/api/v1/connectors", json={"name": "typed", "kind": "self_hosted"},
                        headers=api.as_admin())  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_api_refuses_a_malformed_result_with_422_naming_the_field(api: Api) -> None:
    cid, headers = _connector(api)
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        job_id = jobs.enqueue(session, cid, "verify", {"role_arn": ROLE, "external_id": cid}).id
    r = api.client.post(f"/api/v1/connectors/{cid}/jobs/lease", json={"wait_seconds": 0},
                        headers=headers)  # fmt: skip
    (leased,) = r.json()["jobs"]
    path = f"/api/v1/connectors/{cid}/jobs/{job_id}/complete"
    for result, field, reason in (
        ({"organization_id": "o-1"}, "result.management_account_id", "Field required"),
        ({"organization_id": "o-1", "management_account_id": "1", "unknown_exclude_ou_ids": 3},
         "result.unknown_exclude_ou_ids", "valid list"),
    ):  # fmt: skip
        r = api.client.post(path, json={"lease_id": leased["lease_id"], "result": result},
                            headers=headers)  # fmt: skip
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field
        assert reason in r.json()["error"]["message"]
    with transaction(ctx.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.state, job.result) == ("leased", None)  # nothing kept
    good = {"organization_id": "o-1", "management_account_id": "111122223333"}
    r = api.client.post(path, json={"lease_id": leased["lease_id"], "result": good},
                        headers=headers)  # fmt: skip
    assert (r.status_code, r.json()["state"]) == (200, "succeeded")
