"""Real processes: `grantflow serve` + `grantflow connector run`, killed at awkward moments."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.fixtures.live import LiveServer

pytestmark = pytest.mark.slow


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _create_connector(live: LiveServer) -> tuple[str, str]:
    with live.http() as c:
        r = c.post("/api/v1/connectors", json={"name": "edge", "kind": "self_hosted"})
        assert r.status_code == 201
        return r.json()["id"], r.json()["token"]


def _job(live: LiveServer, cid: str, job_id: str) -> dict:
    with live.http() as c:
        return next(j for j in c.get(f"/api/v1/connectors/{cid}/jobs").json() if j["id"] == job_id)


def _ping(live: LiveServer, cid: str, delay: float) -> str:
    with live.http() as c:
        r = c.post(f"/api/v1/connectors/{cid}/ping", json={"delay_seconds": delay})
        assert r.status_code == 202
        return str(r.json()["id"])


def test_connector_killed_holding_a_job_is_leased_again_and_completed_once(
    live_server: LiveServer,
) -> None:
    cid, token = _create_connector(live_server)
    first = live_server.start_connector(cid, token)
    with live_server.http() as c:
        _wait(
            lambda: c.get(f"/api/v1/connectors/{cid}").json()["status"] == "connected",
            30,
            "connector to connect",
        )
    job_id = _ping(live_server, cid, delay=3.0)
    _wait(lambda: _job(live_server, cid, job_id)["state"] == "leased", 20, "the job leased")
    first.kill()  # SIGKILL while it holds the job
    leased = _job(live_server, cid, job_id)
    assert leased["state"] == "leased" and leased["attempts"] == 1
    assert live_server.expire_leases() == 1  # time passes: the dead connector's lease ends
    second = live_server.start_connector(cid, token)
    _wait(lambda: _job(live_server, cid, job_id)["state"] == "succeeded", 60, "completion")
    done = _job(live_server, cid, job_id)
    assert done["attempts"] == 2
    assert done["result"]["pid"] == second.process.pid  # type: ignore[union-attr]
    with live_server.http() as c:
        events = c.get(f"/api/v1/connectors/{cid}/jobs").json()
    assert [j["id"] for j in events].count(job_id) == 1


def test_sigterm_releases_unfinished_jobs(live_server: LiveServer) -> None:
    cid, token = _create_connector(live_server)
    proc = live_server.start_connector(cid, token, "--lease-seconds", "60")
    job_id = _ping(live_server, cid, delay=60.0)
    _wait(lambda: _job(live_server, cid, job_id)["state"] == "leased", 30, "the job leased")
    started = time.monotonic()
    assert proc.terminate(timeout=60) == 0
    assert time.monotonic() - started < 45
    job = _job(live_server, cid, job_id)
    assert job["state"] == "queued" and job["attempts"] == 0
    assert "job_released" in proc.logs()


def test_connector_survives_the_control_plane_going_away(live_server: LiveServer) -> None:
    cid, token = _create_connector(live_server)
    proc = live_server.start_connector(cid, token)
    with live_server.http() as c:
        _wait(
            lambda: c.get(f"/api/v1/connectors/{cid}").json()["status"] == "connected",
            30,
            "connector to connect",
        )
    live_server.kill()
    # The connector notices (its next poll fails) and keeps running, backing off.
    _wait(lambda: "control_plane_unreachable" in proc.logs(), 60, "the connector to notice")
    assert proc.process is not None and proc.process.poll() is None  # still running
    live_server.start()
    job_id = _ping(live_server, cid, delay=0)
    _wait(lambda: _job(live_server, cid, job_id)["state"] == "succeeded", 60, "completion")
    assert "control_plane_unreachable" in proc.logs()


def test_tokens_never_reach_the_logs(live_server: LiveServer) -> None:
    cid, token = _create_connector(live_server)
    live_server.start_connector(cid, token)
    job_id = _ping(live_server, cid, delay=0)
    _wait(lambda: _job(live_server, cid, job_id)["state"] == "succeeded", 30, "completion")
    with httpx.Client(base_url=live_server.url) as c:
        c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}-wrong"})
    assert live_server.server is not None
    everything = live_server.server.logs() + "".join(p.logs() for p in live_server.connectors)
    assert token not in everything
    assert live_server.admin_token not in everything
