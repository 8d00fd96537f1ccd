"""The database goes away and comes back: the API says 503 (never 500) while it is gone,
liveness stays green, and everything works again without a restart.

PostgreSQL is reached through a TCP proxy the test controls (tests/fixtures/tcp_proxy.py), so
the cut is real (connections reset, new ones refused) without touching the shared server.
(The control plane going away under a running connector is covered by
tests/connector/test_live_connector.py::test_connector_survives_the_control_plane_going_away.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from grantflow.demo.moto_server import free_loopback_port
from tests.fixtures.live import LiveServer
from tests.fixtures.tcp_proxy import tcp_proxy

PG = "127.0.0.1:5432"


def _until(check: Callable[[], bool], seconds: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _status(c: httpx.Client, method: str, path: str, **kw: object) -> int:
    return c.request(method, path, **kw).status_code  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_api_is_503_while_the_database_is_unreachable_and_recovers(
    db_url: str, tmp_path: Path
) -> None:
    assert PG in db_url
    with tcp_proxy("127.0.0.1", 5432) as proxy:
        port = free_loopback_port()
        live = LiveServer(url=f"http://127.0.0.1:{port}", port=port, tmp=tmp_path,
                          db_url=db_url.replace(PG, f"127.0.0.1:{proxy.port}"))  # fmt: skip
        try:
            live.start()
            with live.http() as c:
                _exercise(live, c, proxy.cut, proxy.restore)
        finally:
            live.stop_all()
    logs = (tmp_path / "server.log").read_text()
    assert "unhandled_error" not in logs, logs[-3000:]
    assert "database_unavailable" in logs


def _exercise(
    live: LiveServer, c: httpx.Client, cut: Callable[[], None], restore: Callable[[], None]
) -> None:
    assert _status(c, "GET", "/readyz") == 200
    assert _status(c, "POST", "/api/v1/connectors", json={"name": "before"}) == 201
    pid = live.server.process.pid if live.server and live.server.process else None

    cut()
    calls = [
        ("GET", "/api/v1/me", {}),
        ("GET", "/api/v1/users", {}),
        ("GET", "/api/v1/access-requests", {}),
        ("POST", "/api/v1/connectors", {"json": {"name": "during"}}),
        ("GET", "/api/v1/audit-events", {}),
    ]
    for _ in range(3):  # pooled connections were reset; fresh ones are refused
        assert _status(c, "GET", "/readyz") == 503
        assert _status(c, "GET", "/healthz") == 200  # alive: no restart is wanted
        for method, path, kw in calls:
            started = time.monotonic()
            r = c.request(method, path, **kw)  # type: ignore[arg-type]
            assert r.status_code == 503, (method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unavailable", r.text
            assert "database" in r.json()["error"]["message"]
            assert r.headers.get("retry-after"), r.headers
            assert time.monotonic() - started < 15  # answered, not hung
    anonymous = httpx.get(f"{live.url}/api/v1/me", timeout=30)
    assert anonymous.status_code in (401, 503)  # never a 500, whatever is checked first

    restore()
    recovery = _until(lambda: _status(c, "GET", "/readyz") == 200, 30, "/readyz after restore")
    for method, path, kw in calls:
        if method == "POST":
            kw = {"json": {"name": "after"}}
        assert c.request(method, path, **kw).status_code in (200, 201), (method, path)  # type: ignore[arg-type]
    assert live.server and live.server.process and live.server.process.pid == pid
    assert live.server.process.poll() is None
    print(f"recovered {recovery:.1f} s after the database came back")
