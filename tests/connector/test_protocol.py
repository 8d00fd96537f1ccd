"""The connector job protocol over HTTP: ownership, leases, retries, rotation."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from grantflow.domain.ids import CONNECTOR_ID_RE
from grantflow.services.jobs import queue as jobs
from grantflow.services.runtime.scheduler import requeue_expired_leases
from grantflow.store.db import transaction
from grantflow.store.models import Connector, Job
from grantflow.store.types import utcnow
from tests.fixtures.api import Api


def _connector(api: Api, name: str) -> tuple[str, dict[str, str]]:
    r = api.client.post(
        "/api/v1/connectors", json={"name": name, "kind": "self_hosted"}, headers=api.as_admin()
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


def _enqueue(api: Api, connector_id: str, n: int = 1, **kw: object) -> list[str]:
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        return [
            jobs.enqueue(session, connector_id, "ping", {"n": i}, **kw).id  # type: ignore[arg-type]
            for i in range(n)
        ]


def _lease(api: Api, cid: str, headers: dict[str, str], **body: object) -> list[dict]:
    body = {"wait_seconds": 0, **body}
    r = api.client.post(f"/api/v1/connectors/{cid}/jobs/lease", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["jobs"]


def test_create_shows_token_once_and_stores_only_its_hash(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    assert CONNECTOR_ID_RE.match(cid)
    listed = api.client.get("/api/v1/connectors", headers=api.as_admin()).json()
    assert [c["id"] for c in listed] == [cid]
    assert "token" not in listed[0]
    assert listed[0]["status"] == "never_connected"
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        row = session.get(Connector, cid)
        assert row is not None
        assert headers["Authorization"].split()[1] not in (row.token_hash, row.token_prefix)


def test_duplicate_name_is_409_and_bad_name_422(api: Api) -> None:
    _connector(api, "c1")
    r = api.client.post("/api/v1/connectors", json={"name": "c1"}, headers=api.as_admin())
    assert r.status_code == 409
    r = api.client.post("/api/v1/connectors", json={"name": "bad/name"}, headers=api.as_admin())
    assert (r.status_code, r.json()["error"]["field"]) == (422, "name")


def test_heartbeat_reports_identity_and_role_arn(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    identity = "arn:aws:sts::111122223333:assumed-role/grantflow-connector/i-0abc"
    r = api.client.post(
        f"/api/v1/connectors/{cid}/heartbeat",
        json={"version": "0.1.0", "aws_identity_arn": identity, "aws_account_id": "111122223333"},
        headers=headers,
    )
    assert r.status_code == 200
    got = api.client.get(f"/api/v1/connectors/{cid}", headers=api.as_admin()).json()
    assert got["status"] == "connected"
    assert got["aws_identity_arn"] == identity
    assert got["reported_role_arn"] == "arn:aws:iam::111122223333:role/grantflow-connector"
    assert got["connector_role_arn"] is None  # reported, not confirmed (tests/security)


def test_lease_complete_roundtrip(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    (job_id,) = _enqueue(api, cid)
    leased = _lease(api, cid, headers)
    assert [j["id"] for j in leased] == [job_id]
    assert _lease(api, cid, headers) == []
    lease_id = leased[0]["lease_id"]
    r = api.client.post(
        f"/api/v1/connectors/{cid}/jobs/{job_id}/complete",
        json={"lease_id": lease_id, "result": {"ok": True}},
        headers=headers,
    )
    assert r.json()["state"] == "succeeded"
    again = api.client.post(
        f"/api/v1/connectors/{cid}/jobs/{job_id}/complete",
        json={"lease_id": lease_id, "result": {}},
        headers=headers,
    )
    assert again.status_code == 409


def test_connector_cannot_lease_complete_or_see_another_connectors_jobs(api: Api) -> None:
    a, a_headers = _connector(api, "a")
    b, b_headers = _connector(api, "b")
    (b_job,) = _enqueue(api, b)
    assert _lease(api, a, a_headers) == []
    r = api.client.post(f"/api/v1/connectors/{b}/jobs/lease", json={}, headers=a_headers)
    assert r.status_code == 403
    (leased,) = _lease(api, b, b_headers)
    for path in ("complete", "fail", "extend", "release"):
        r = api.client.post(
            f"/api/v1/connectors/{a}/jobs/{b_job}/{path}",
            json={"lease_id": leased["lease_id"], "error": "x"},
            headers=a_headers,
        )
        assert r.status_code == 403, path
        r = api.client.post(
            f"/api/v1/connectors/{b}/jobs/{b_job}/{path}",
            json={"lease_id": leased["lease_id"], "error": "x"},
            headers=a_headers,
        )
        assert r.status_code == 403, path
    assert api.client.get(f"/api/v1/connectors/{b}/jobs", headers=a_headers).status_code == 403
    assert api.client.get("/api/v1/connectors", headers=a_headers).status_code == 403


def test_rotated_token_stops_working(api: Api) -> None:
    cid, old = _connector(api, "c1")
    assert _lease(api, cid, old) == []
    r = api.client.post(f"/api/v1/connectors/{cid}/rotate-token", headers=api.as_admin())
    new = {"Authorization": f"Bearer {r.json()['token']}"}
    r = api.client.post(f"/api/v1/connectors/{cid}/jobs/lease", json={}, headers=old)
    assert r.status_code == 401
    assert _lease(api, cid, new) == []


def test_retryable_failure_backs_off_then_gives_up(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    (job_id,) = _enqueue(api, cid, max_attempts=2)
    (leased,) = _lease(api, cid, headers)
    r = api.client.post(
        f"/api/v1/connectors/{cid}/jobs/{job_id}/fail",
        json={"lease_id": leased["lease_id"], "error": "Throttling", "retryable": True},
        headers=headers,
    )
    assert r.json()["state"] == "queued"
    assert _lease(api, cid, headers) == []  # backoff: not available yet
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.available_at = job.created_at  # skip the backoff wait
    (leased,) = _lease(api, cid, headers)
    assert leased["attempt"] == 2
    r = api.client.post(
        f"/api/v1/connectors/{cid}/jobs/{job_id}/fail",
        json={"lease_id": leased["lease_id"], "error": "Throttling", "retryable": True},
        headers=headers,
    )
    assert r.json()["state"] == "failed"
    assert "gave up after 2 attempts" in r.json()["last_error"]


def test_non_retryable_failure_ends_at_once(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    (job_id,) = _enqueue(api, cid)
    (leased,) = _lease(api, cid, headers)
    r = api.client.post(
        f"/api/v1/connectors/{cid}/jobs/{job_id}/fail",
        json={"lease_id": leased["lease_id"], "error": "AccessDenied", "retryable": False},
        headers=headers,
    )
    assert r.json()["state"] == "failed"


def test_expired_lease_returns_the_job_and_the_old_lease_is_dead(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    (job_id,) = _enqueue(api, cid)
    (first,) = _lease(api, cid, headers)
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:  # the clock moves past the lease's end
        leased = session.get(Job, job_id)
        assert leased is not None
        leased.lease_expires_at = utcnow() - timedelta(seconds=1)
    # The app's own scheduler may get there first (it looks every second): one of them does.
    requeue_expired_leases(ctx.sessions, ctx.metrics)
    with transaction(ctx.sessions) as session:
        requeued = session.get(Job, job_id)
        assert requeued is not None
        assert (requeued.state, requeued.lease_id) == ("queued", None)
        assert requeued.last_error == "lease expired before the job finished"
    (second,) = _lease(api, cid, headers)
    assert second["id"] == job_id and second["attempt"] == 2
    stale = api.client.post(
        f"/api/v1/connectors/{cid}/jobs/{job_id}/complete",
        json={"lease_id": first["lease_id"]},
        headers=headers,
    )
    assert stale.status_code == 409


def test_release_gives_the_job_back_without_spending_an_attempt(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    (job_id,) = _enqueue(api, cid)
    (leased,) = _lease(api, cid, headers)
    r = api.client.post(
        f"/api/v1/connectors/{cid}/jobs/{job_id}/release",
        json={"lease_id": leased["lease_id"]},
        headers=headers,
    )
    assert r.json() == {
        "id": job_id,
        "state": "queued",
        "attempts": 0,
        "lease_expires_at": None,
        "last_error": None,
    }
    assert _lease(api, cid, headers)[0]["attempt"] == 1


def test_idempotency_key_reuses_the_unfinished_job(api: Api) -> None:
    cid, _ = _connector(api, "c1")
    first = _enqueue(api, cid, idempotency_key="sync:abc")
    second = _enqueue(api, cid, idempotency_key="sync:abc")
    assert first == second


def test_concurrent_lessees_never_share_a_job(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    ids = set(_enqueue(api, cid, 40))

    def grab(_: int) -> list[str]:
        got: list[str] = []
        for _ in range(10):
            got += [j["id"] for j in _lease(api, cid, headers, max_jobs=3)]
        return got

    with ThreadPoolExecutor(4) as pool:
        results = [j for batch in pool.map(grab, range(4)) for j in batch]
    assert len(results) == len(set(results))
    assert set(results) == ids


def test_long_poll_waits_then_answers_empty(api: Api) -> None:
    cid, headers = _connector(api, "c1")
    started = time.monotonic()
    assert _lease(api, cid, headers, wait_seconds=1) == []
    assert time.monotonic() - started >= 0.9
