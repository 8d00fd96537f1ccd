"""Issue 16, item 7: two replicas on one database, two working managed connectors.

The managed connector's only token was renewed at every start, so the second `serve` on a
database ended the first one's connector, which then backed off on 401 for ever. Now each
replica holds its own credential (connector_credentials, holder = host:port): a start
replaces only that replica's earlier one. Pings queued after both replicas started are done
by both replicas' connectors (a ping answers with the pid of the process that ran it), also
after one replica restarts, and no connector logs a 401.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from grantflow.demo.moto_server import free_loopback_port
from tests.fixtures.db import postgresql_only
from tests.fixtures.live import LiveServer

DEADLINE_SECONDS = 180.0
PINGS_PER_ROUND = 8  # two connectors with 4 slots each, 2 s per ping: both are needed


def _replica(db_url: str, tmp: Path, audit_key: str) -> LiveServer:
    tmp.mkdir()
    port = free_loopback_port()
    return LiveServer(
        url=f"http://127.0.0.1:{port}", port=port, db_url=db_url, tmp=tmp,
        extra_env={"GRANTFLOW_MANAGED_CONNECTOR": "true", "GRANTFLOW_AUDIT_KEY": audit_key,
                   "GRANTFLOW_DATA_DIR": str(tmp), "AWS_EC2_METADATA_DISABLED": "true",
                   "AWS_DEFAULT_REGION": "us-east-1"},
    )  # fmt: skip


def _pid(live: LiveServer) -> int:
    assert live.server is not None and live.server.process is not None
    return live.server.process.pid


def _managed(admin: httpx.Client) -> dict[str, Any]:
    (managed,) = [c for c in admin.get("/api/v1/connectors").json() if c["kind"] == "managed"]
    return dict(managed)


def _round(admin: httpx.Client, connector_id: str, deadline: float) -> set[int]:
    """Queue pings, wait until each is done; the pids of the processes that ran them."""
    ids = set()
    for _ in range(PINGS_PER_ROUND):
        r = admin.post(f"/api/v1/connectors/{connector_id}/ping", json={"delay_seconds": 2})
        assert r.status_code == 202, r.text
        ids.add(r.json()["id"])
    while time.monotonic() < deadline:
        jobs = admin.get(f"/api/v1/connectors/{connector_id}/jobs", params={"limit": 500}).json()
        mine = [j for j in jobs if j["id"] in ids]
        assert [j["last_error"] for j in mine if j["state"] == "failed"] == []
        if len(mine) == len(ids) and all(j["state"] == "succeeded" for j in mine):
            return {int(j["result"]["pid"]) for j in mine}
        time.sleep(0.5)
    raise AssertionError(f"pings not done in time: {mine}")


def _both_work(admin: httpx.Client, connector_id: str, pids: set[int]) -> None:
    """Rounds of pings until each replica's connector has run one (or the deadline)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    seen: set[int] = set()
    while not pids <= seen:
        assert time.monotonic() < deadline, f"only {seen} of replicas {pids} ran pings"
        seen |= _round(admin, connector_id, deadline)
    assert seen == pids  # nobody else ran them


@postgresql_only
def test_each_replica_keeps_a_working_managed_connector(db_url: str, tmp_path: Path) -> None:
    audit_key = secrets.token_urlsafe(32)
    first = _replica(db_url, tmp_path / "a", audit_key)
    second = _replica(db_url, tmp_path / "b", audit_key)
    try:
        first.start()
        second.start()  # the start that used to end the first replica's connector
        with first.http() as admin:
            managed = _managed(admin)
            _both_work(admin, managed["id"], {_pid(first), _pid(second)})
            ports = {r["holder"].rsplit(":", 1)[1] for r in managed["replicas"]}
            assert ports == {str(first.port), str(second.port)}  # one credential each

        first.kill()  # a restart renews the first replica's credential only
        first.start()
        with second.http() as admin:
            managed = _managed(admin)
            assert len(managed["replicas"]) == 2
            _both_work(admin, managed["id"], {_pid(first), _pid(second)})
    finally:
        first.stop_all()
        second.stop_all()
    for live in (first, second):
        logs = live.server.logs() if live.server else ""
        assert "connector_connected" in logs
        assert "HTTP 401" not in logs and "control_plane_unreachable" not in logs, logs[-3000:]
        assert "gf_con_" not in logs  # no connector secret (nor its prefix) is logged
