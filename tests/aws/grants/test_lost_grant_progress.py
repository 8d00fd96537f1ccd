"""A grant job whose lease was lost before its ``pre_existing`` report was recorded creates
nothing: the next attempt would find that assignment, call it pre-existing, and the revoke would
keep it in AWS for ever (the hardening burst's "assignments left in AWS after their grants
ended"). Real control plane (the app over HTTP, both backends), real agent, moto.

On the old code the agent logged the 409 of the report (``report_lease_lost``) and the handler
went on to create the assignment: this test then finds it in moto and fails.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from grantflow.aws.grants import GrantSettings
from grantflow.aws.identity_center import Waiter
from grantflow.connector.agent import ConnectorAgent
from grantflow.connector.client import ControlPlaneClient
from grantflow.domain.connector_jobs import LeasedJob
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime.scheduler import requeue_expired_leases
from grantflow.store.db import transaction
from grantflow.store.models import Job
from grantflow.store.types import utcnow
from tests.aws.grants.conftest import ACCOUNT, Directory
from tests.fixtures.api import Api

ROLE = "arn:aws:iam::123456789012:role/grantflow-management"


def _connector(api: Api) -> tuple[str, dict[str, str]]:
    r = api.client.post("/api/v1/connectors", json={"name": "c", "kind": "self_hosted"},
                        headers=api.as_admin())  # fmt: skip
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}


def _lease(api: Api, cid: str, headers: dict[str, str]) -> dict[str, Any]:
    r = api.client.post(f"/api/v1/connectors/{cid}/jobs/lease",
                        json={"wait_seconds": 0}, headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text
    (job,) = r.json()["jobs"]
    return dict(job)


def _enqueue_grant(api: Api, directory: Directory, cid: str, *, user: int, grant_id: str) -> str:
    """A grant job of ``directory.users[user]`` in ACCOUNT, queued for connector ``cid``."""
    spec = {
        "kind": "account_assignment",
        "instance_arn": directory.instance_arn,
        "identity_store_id": directory.identity_store_id,
        "principal_id": directory.users[user],
        "account_id": ACCOUNT,
        "permission_set_arn": directory.permission_set_arn,
    }
    payload = {"grant_id": grant_id, "tuple_key": f"t-{grant_id}", "spec": spec,
               "management_role_arn": ROLE, "external_id": cid}  # fmt: skip
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        return jobs.enqueue(session, cid, "grant", payload).id


def _agent(api: Api, cid: str, headers: dict[str, str], directory: Directory) -> ConnectorAgent:
    """The real agent, talking to the app itself over its test transport."""
    client = ControlPlaneClient("http://testserver", cid, "unused")
    client._http = api.client
    api.client.headers.update(headers)
    agent = ConnectorAgent(client, directory.factory)
    agent.shared.grant_settings = GrantSettings(waiter=Waiter(timeout=30.0, interval=0.05))
    return agent


def test_a_grant_whose_progress_report_is_refused_creates_nothing(
    api: Api, directory: Directory
) -> None:
    cid, headers = _connector(api)
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    job_id = _enqueue_grant(api, directory, cid, user=0, grant_id="g-1")
    first = _lease(api, cid, headers)
    with transaction(ctx.sessions) as session:  # the first lease lapses (a loaded machine)
        row = session.get(Job, job_id)
        assert row is not None
        row.lease_expires_at = utcnow() - timedelta(seconds=1)
    requeue_expired_leases(ctx.sessions, ctx.metrics)
    second = _lease(api, cid, headers)  # and the job runs again under a new lease
    assert second["id"] == job_id and second["lease_id"] != first["lease_id"]

    agent = _agent(api, cid, headers, directory)
    agent._run(LeasedJob.model_validate(first))  # the first attempt, still running

    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []
    creates = directory.factory.calls.counts().get(("sso-admin", "CreateAccountAssignment"))
    assert creates is None
    with transaction(ctx.sessions) as session:  # the live attempt is untouched
        row = session.get(Job, job_id)
        assert row is not None and (row.state, row.lease_id) == ("leased", second["lease_id"])


def test_a_grant_whose_progress_is_recorded_creates(api: Api, directory: Directory) -> None:
    """The same job under its live lease: reported, created, completed."""
    cid, headers = _connector(api)
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    job_id = _enqueue_grant(api, directory, cid, user=1, grant_id="g-2")
    leased = _lease(api, cid, headers)
    agent = _agent(api, cid, headers, directory)
    agent._run(LeasedJob.model_validate(leased))
    assert len(directory.assignments(ACCOUNT, directory.permission_set_arn)) == 1
    with transaction(ctx.sessions) as session:
        row = session.get(Job, job_id)
        assert row is not None and row.state == "succeeded"
