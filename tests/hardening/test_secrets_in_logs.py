"""No secret ever reaches a log line.

`grantflow serve` and `grantflow connector run` run as real processes at DEBUG with JSON logs,
and with the standard library's logging opened wide too (a ``sitecustomize`` puts the root
logger at DEBUG, so uvicorn, httpx/httpcore and SQLAlchemy's statements *with their
parameters and result rows* are written). Through the API the test then creates and uses
every kind of secret: a user's password (right and wrong sign-in), the session cookie and
its CSRF token, a personal token, connector tokens (issued and rotated; the connector process
uses one), a SCIM token and a SCIM user's password, the bootstrap admin token, and an unknown
bearer. Every captured byte is then searched for each secret, whole and its random part.
"""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import httpx
import pytest

from grantflow.demo.moto_server import free_loopback_port
from tests.fixtures.api import ADMIN_TOKEN
from tests.fixtures.live import LiveServer

SITECUSTOMIZE = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format="STDLIB %(levelname)s %(name)s %(message)s")
# SQLAlchemy quiets itself to WARNING unless told: statements, parameters and result rows.
logging.getLogger("sqlalchemy").setLevel(logging.DEBUG)
"""


def _random_part(secret: str) -> str:
    """The part after a public prefix such as ``gf_pat_`` (the prefix may be shown)."""
    match = re.fullmatch(r"gfs?_(?:[a-z]+_)?(.{12,})", secret)
    return match.group(1) if match else secret


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_secret_reaches_any_log(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    port = free_loopback_port()
    live = LiveServer(
        url=f"http://127.0.0.1:{port}", port=port, db_url=db_url, tmp=tmp_path,
        extra_env={"GRANTFLOW_LOG_LEVEL": "DEBUG", "GRANTFLOW_LOG_FORMAT": "json",
                   "GRANTFLOW_COOKIE_SECURE": "false", "PYTHONPATH": str(tmp_path / "site")},
    )  # fmt: skip
    found: dict[str, str] = {"bootstrap admin token": ADMIN_TOKEN}
    try:
        live.start()
        found |= _exercise_every_secret(live)
    finally:
        live.stop_all()
    logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    everything = "\n".join(logs.values())

    # The capture is real: JSON request lines, DEBUG lines, the stdlib's SQL with parameters.
    assert '"event": "http_request"' in everything
    assert '"level": "debug"' in everything or "STDLIB DEBUG" in everything
    assert "STDLIB INFO sqlalchemy.engine" in everything, "SQL statements were not captured"
    assert len(logs) == 2 and all(logs.values()), list(logs)  # server and connector
    # A value that is not secret, written by the same requests, is there: the search can find.
    assert "scim-leaky" in logs["server.log"] and "leak-check" in logs["server.log"]

    leaks = sorted(
        f"{what} in {name}"
        for what, secret in found.items()
        for name, text in logs.items()
        if secret in text or _random_part(secret) in text
    )
    assert leaks == []
    assert len(found) >= 11


def _exercise_every_secret(live: LiveServer) -> dict[str, str]:
    found: dict[str, str] = {}
    password, wrong = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    found |= {"password": password, "wrong password": wrong}
    with live.http() as admin:
        r = admin.post("/api/v1/users", json={"username": "leaky", "password": password})
        assert r.status_code == 201, r.text

        with httpx.Client(base_url=live.url, timeout=30) as browser:
            bad = browser.post("/auth/login", json={"username": "leaky", "password": wrong})
            assert bad.status_code in (400, 401), bad.text
            ok = browser.post("/auth/login", json={"username": "leaky", "password": password})
            assert ok.status_code in (200, 204, 303), ok.text
            assert browser.cookies, "no session cookie"
            found |= {f"session cookie {k}": v for k, v in browser.cookies.items()}
            csrf = browser.get("/auth/session").json()["csrf_token"]
            found["csrf token"] = csrf
            out = browser.post("/auth/logout", headers={"X-CSRF-Token": csrf})
            assert out.status_code in (200, 204, 303), out.text

        pat = admin.post("/api/v1/me/tokens", json={"name": "leak-check"}).json()["token"]
        found["personal token"] = pat
        assert live.http(pat).get("/api/v1/me").status_code == 200

        connector = admin.post("/api/v1/connectors", json={"name": "leaky"}).json()
        found["connector token (issued)"] = connector["token"]
        rotated = admin.post(f"/api/v1/connectors/{connector['id']}/rotate-token").json()
        found["connector token (rotated)"] = rotated["token"]

        scim = admin.post("/api/v1/scim/tokens", json={"name": "leaky-idp"}).json()["token"]
        found["scim token"] = scim
        scim_password = secrets.token_urlsafe(18)
        found["scim user password"] = scim_password
        scim_user = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "scim-leaky", "password": scim_password, "active": True,
        }  # fmt: skip
        with live.http(scim) as idp:
            r = idp.post("/scim/v2/Users", json=scim_user,
                         headers={"Content-Type": "application/scim+json"})  # fmt: skip
            assert r.status_code == 201, r.text
            assert idp.get("/scim/v2/Users").status_code == 200

        unknown = "gf_pat_" + secrets.token_urlsafe(24)
        found["unknown bearer"] = unknown
        assert live.http(unknown).get("/api/v1/me").status_code == 401

    proc = live.start_connector(connector["id"], rotated["token"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the connector has talked to the server
        with live.http() as admin:
            seen = admin.get(f"/api/v1/connectors/{connector['id']}").json()
        if seen.get("last_heartbeat_at"):
            break
        time.sleep(0.5)
    assert seen.get("last_heartbeat_at"), proc.logs()
    return found
