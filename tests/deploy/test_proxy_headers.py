"""TLS behind a proxy: X-Forwarded-Proto/-For count only when they come from a trusted proxy.

A real `grantflow serve --forwarded-allow-ips 127.0.0.2` process; the test connects from two
loopback source addresses, 127.0.0.2 (the proxy) and 127.0.0.1 (anyone else), and reads what
the server made of each request: the client IP recorded on sign-in (per-IP sign-in limits
use the same value), whether a browser's https Origin passes the login CSRF check, and the
scheme of the URLs the server builds (SCIM `meta.location`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from grantflow.cli.server import build_server
from grantflow.demo.moto_server import free_loopback_port
from grantflow.services.auth import passwords
from grantflow.services.runtime.config_check import Level, check
from grantflow.settings import Settings
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User
from tests.fixtures.live import LiveServer

PROXY = "127.0.0.2"
OTHER = "127.0.0.1"
CLIENT = "203.0.113.7"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("proxy")
    port = free_loopback_port()
    live = LiveServer(
        url=f"http://127.0.0.1:{port}", port=port, db_url=f"sqlite:///{tmp / 'gf.db'}", tmp=tmp
    )
    live.start("--forwarded-allow-ips", PROXY)
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.add(
                User(
                    username="ada",
                    display_name="Ada",
                    role="member",
                    active=True,
                    password_hash=passwords.hash_password(PASSWORD),
                )
            )
    finally:
        engine.dispose()
    try:
        yield live
    finally:
        live.stop_all()


def _from(live: LiveServer, source: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=live.url, transport=transport, headers=headers, timeout=30)


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT}


def _sign_in(live: LiveServer, source: str, origin: str | None) -> httpx.Response:
    headers = dict(FORWARDED)
    if origin:
        headers["Origin"] = origin
    with _from(live, source) as http:
        return http.post(
            "/auth/login", json={"username": "ada", "password": PASSWORD}, headers=headers
        )


def _sign_in_ips(live: LiveServer) -> list[str]:
    with live.http() as http:
        page = http.get("/api/v1/audit-events", params={"action": "auth.signed_in"})
    page.raise_for_status()
    return [event["data"]["ip"] for event in reversed(page.json()["items"])]


def test_a_trusted_proxy_sets_the_client_ip_and_the_https_scheme(proxied: LiveServer) -> None:
    # The browser's page is https://<host>; the proxy forwards its Origin with XFP/XFF.
    origin = f"https://127.0.0.1:{proxied.port}"
    response = _sign_in(proxied, PROXY, origin)
    assert response.status_code == 200, response.text
    # Behind TLS the session cookie keeps its Secure, __Host- form.
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-grantflow_session=") and "secure" in cookie.lower()
    assert _sign_in_ips(proxied)[-1] == CLIENT

    with proxied.http() as http:
        created = http.post("/api/v1/scim/tokens", json={"name": "idp"})
    assert created.status_code == 201, created.text
    with _from(proxied, PROXY, created.json()["token"]) as scim:
        config = scim.get("/scim/v2/ServiceProviderConfig", headers=FORWARDED)
    assert config.status_code == 200, config.text
    assert config.json()["meta"]["location"].startswith("https://")


def test_anyone_else_cannot_spoof_forwarded_headers(proxied: LiveServer) -> None:
    # Same headers from a non-proxy address: the scheme stays http, so an https Origin is
    # foreign (login CSRF refused), and the recorded IP is the real peer.
    refused = _sign_in(proxied, OTHER, f"https://127.0.0.1:{proxied.port}")
    assert refused.status_code == 403, refused.text
    accepted = _sign_in(proxied, OTHER, None)
    assert accepted.status_code == 200, accepted.text
    assert _sign_in_ips(proxied)[-1] == OTHER

    with proxied.http() as http:
        created = http.post("/api/v1/scim/tokens", json={"name": "idp-2"})
    with _from(proxied, OTHER, created.json()["token"]) as scim:
        config = scim.get("/scim/v2/ServiceProviderConfig", headers=FORWARDED)
    assert config.status_code == 200, config.text
    assert config.json()["meta"]["location"].startswith("http://")


@pytest.mark.parametrize(
    ("env", "proxy_headers", "allowed"),
    [
        ({}, True, "127.0.0.1"),
        (
            {"GRANTFLOW_FORWARDED_ALLOW_IPS": "10.0.0.0/8,192.168.1.7"},
            True,
            "10.0.0.0/8,192.168.1.7",
        ),
        ({"GRANTFLOW_PROXY_HEADERS": "false"}, False, "127.0.0.1"),
    ],
)
def test_the_settings_reach_uvicorn(
    env: dict[str, str],
    proxy_headers: bool,
    allowed: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'gf.db'}",
        port=free_loopback_port(),
        managed_connector=False,
    )
    config = build_server(settings).server.config
    assert config.proxy_headers is proxy_headers
    assert config.forwarded_allow_ips == allowed


def test_an_empty_forwarded_allow_ips_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRANTFLOW_FORWARDED_ALLOW_IPS", "")
    with pytest.raises(ValueError, match="forwarded_allow_ips"):
        Settings()


def test_proxy_addresses_are_validated_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRANTFLOW_FORWARDED_ALLOW_IPS", " 10.0.0.0/8 , ::1,192.168.1.7")
    assert Settings().forwarded_allow_ips == "10.0.0.0/8,::1,192.168.1.7"
    for bad in ("10.0.0.0/33", "proxy.internal", "10.0.0.1,"):
        monkeypatch.setenv("GRANTFLOW_FORWARDED_ALLOW_IPS", bad)
        with pytest.raises(ValueError, match="not an IP address or CIDR"):
            Settings()


def test_config_check_warns_about_trusting_everyone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRANTFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'gf.db'}")
    monkeypatch.setenv("GRANTFLOW_FORWARDED_ALLOW_IPS", "*")
    (warning,) = [f for f in check() if f.setting == "GRANTFLOW_FORWARDED_ALLOW_IPS"]
    assert warning.level is Level.WARNING
    monkeypatch.setenv("GRANTFLOW_FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    assert not [f for f in check() if f.setting == "GRANTFLOW_FORWARDED_ALLOW_IPS"]
    monkeypatch.setenv("GRANTFLOW_FORWARDED_ALLOW_IPS", "*")
    monkeypatch.setenv("GRANTFLOW_PROXY_HEADERS", "false")
    assert not [f for f in check() if f.setting == "GRANTFLOW_FORWARDED_ALLOW_IPS"]
