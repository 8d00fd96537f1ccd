"""Issue 15, item 7a: failed sign-ins never lock an account out; 7b: no token prefix is a
piece of a secret.

The review locked the admin out by failing their password from its own address: the limit was
a hard one per username. Now each address has a hard limit of its own, and failures of a
username delay only the addresses that failed, progressively (1 s, 2 s, 4 s … up to a cap).
Time moves by the test's clock, never by sleeping.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantflow.domain.secrets import hash_token
from grantflow.services.auth import password_login
from grantflow.services.auth.password_login import address_key
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import Settings
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import ApiToken, Connector
from grantflow.store.types import utcnow
from tests.auth import conftest as auth_fixtures
from tests.auth.conftest import BASE, AppFactory, AuthApp
from tests.fixtures.api import ADMIN_TOKEN, Api

make_auth_app = auth_fixtures.make_auth_app
fast_password_hashing = auth_fixtures.fast_password_hashing


def _from(app: AuthApp, ip: str) -> TestClient:
    return app.new_client(base_url=BASE, client=(ip, 1000))


class Clock:
    """The sign-in limiter's clock, moved by the test (the app runs in this process)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(password_login, "utcnow", fake)
    return fake


def test_failing_an_admins_password_does_not_lock_the_admin_out(
    make_auth_app: AppFactory,
) -> None:
    app = make_auth_app(login_max_failures_per_user=3, login_max_failures_per_ip=20)
    app.add_user("root", role="admin")
    attacker, admin = _from(app, "10.0.0.66"), _from(app, "10.0.0.7")
    codes = [app.login("root", "guess", client=attacker).status_code for _ in range(6)]
    assert codes == [401, 401, 401, 429, 429, 429]
    signed_in = app.login("root", client=admin)
    assert signed_in.status_code == 200, signed_in.text
    assert admin.get("/api/v1/me").json()["username"] == "root"


def test_a_failing_address_waits_longer_and_longer_then_gets_in(
    make_auth_app: AppFactory, clock: Clock
) -> None:
    app = make_auth_app(
        login_max_failures_per_user=2, login_max_failures_per_ip=50, login_max_delay_seconds=8
    )
    app.add_user("alice")
    laptop = _from(app, "10.0.0.5")
    assert [app.login("alice", "typo", client=laptop).status_code for _ in range(2)] == [401, 401]
    waits = []
    for _ in range(5):
        refused = app.login("alice", client=laptop)
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        clock.advance(waits[-1] - 0.5)
        assert app.login("alice", client=laptop).status_code == 429  # not yet
        clock.advance(0.5)
        assert app.login("alice", "typo", client=laptop).status_code == 401
    assert waits == [1, 2, 4, 8, 8]  # doubling, capped at login_max_delay_seconds
    refused = app.login("alice", client=laptop)
    assert refused.status_code == 429
    clock.advance(int(refused.headers["Retry-After"]))
    assert app.login("alice", client=laptop).status_code == 200


def test_the_per_address_limit_stays_hard(make_auth_app: AppFactory) -> None:
    app = make_auth_app(login_max_failures_per_user=100, login_max_failures_per_ip=3)
    app.add_user("alice")
    sprayer = _from(app, "10.0.0.66")
    codes = [app.login(f"user{i}", "guess", client=sprayer).status_code for i in range(3)]
    assert codes == [401, 401, 401]
    limited = app.login("alice", client=sprayer)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= app.settings.login_failure_window_seconds
    assert app.login("alice", client=_from(app, "10.0.0.7")).status_code == 200


def test_an_ipv6_network_counts_as_one_address(make_auth_app: AppFactory) -> None:
    app = make_auth_app(login_max_failures_per_user=100, login_max_failures_per_ip=2)
    app.add_user("alice")
    for host in ("2001:db8:0:1::1", "2001:db8:0:1::2"):
        assert app.login("bob", "guess", client=_from(app, host)).status_code == 401
    assert app.login("alice", client=_from(app, "2001:db8:0:1::ffff")).status_code == 429
    assert app.login("alice", client=_from(app, "2001:db8:0:2::1")).status_code == 200
    assert address_key("2001:db8:0:1::1") == "2001:db8:0:1::/64"
    assert address_key("::ffff:10.0.0.1") == address_key("10.0.0.1") == "10.0.0.1"


# --- 7b: no stored or shown token prefix is a piece of a secret ------------------------------


def _secret_part(plaintext: str, prefix: str) -> bytes:
    """What follows the public prefix: the whole secret, 32 random bytes on its own."""
    assert plaintext.startswith(prefix + "_"), (plaintext, prefix)
    rest = plaintext[len(prefix) + 1 :]
    return base64.urlsafe_b64decode(rest + "=" * (-len(rest) % 4))


def _stored_prefixes(settings: Settings) -> dict[str, str]:
    """Every stored prefix by token hash (API tokens and connectors)."""
    engine = build_engine(settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            out = {t.token_hash: t.prefix for t in session.scalars(select(ApiToken))}
            out |= {c.token_hash: c.token_prefix for c in session.scalars(select(Connector))}
            return out
    finally:
        engine.dispose()


def test_every_token_kind_shows_a_public_prefix_only(api: Api) -> None:
    personal = api.client.post("/api/v1/me/tokens", json={"name": "ci"}, headers=api.as_admin())
    scim = api.client.post("/api/v1/scim/tokens", json={"name": "idp"}, headers=api.as_admin())
    connector = api.client.post("/api/v1/connectors", json={"name": "edge"},
                                headers=api.as_admin())  # fmt: skip
    assert (personal.status_code, scim.status_code, connector.status_code) == (201, 201, 201)
    issued = [
        (personal.json()["token"], personal.json()["prefix"]),
        (scim.json()["token"], scim.json()["prefix"]),
        (connector.json()["token"], connector.json()["token_prefix"]),
    ]
    stored = _stored_prefixes(api.settings)
    for plaintext, shown in issued:
        assert len(_secret_part(plaintext, shown)) == 32
        assert stored[hash_token(plaintext)] == shown
    # the configured bootstrap token: its prefix is a label, none of its characters
    bootstrap = stored[hash_token(ADMIN_TOKEN)]
    listed = api.client.get("/api/v1/me/tokens", headers=api.as_admin()).json()
    assert bootstrap in {t["prefix"] for t in listed}
    assert bootstrap.startswith("admin~")
    assert not any(ADMIN_TOKEN[:n] in bootstrap for n in range(4, len(ADMIN_TOKEN)))


def test_prefixes_stored_by_older_versions_are_replaced_at_start(api: Api) -> None:
    made = api.client.post("/api/v1/me/tokens", json={"name": "old"}, headers=api.as_admin())
    connector = api.client.post("/api/v1/connectors", json={"name": "old-edge"},
                                headers=api.as_admin())  # fmt: skip
    secrets_ = [ADMIN_TOKEN, made.json()["token"], connector.json()["token"]]
    engine = build_engine(api.settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:  # as an older version stored them
            for token in session.scalars(select(ApiToken)):
                if token.token_hash == hash_token(ADMIN_TOKEN):
                    token.prefix = ADMIN_TOKEN[:10]
                elif token.token_hash == hash_token(secrets_[1]):
                    token.prefix = secrets_[1][:11]
            for row in session.scalars(select(Connector)):
                if row.token_hash == hash_token(secrets_[2]):
                    row.token_prefix = secrets_[2][:11]
    finally:
        engine.dispose()

    prepare_database(api.settings)  # what `serve` does when it starts

    stored = _stored_prefixes(api.settings)
    for secret in secrets_:
        prefix = stored[hash_token(secret)]
        assert "~" in prefix and prefix.split("~")[1] not in secret, (prefix, secret)
    events = api.client.get("/api/v1/audit-events", params={"action": "token.prefixes_hidden"},
                            headers=api.as_admin()).json()["items"]  # fmt: skip
    assert [e["data"]["count"] for e in events] == [3]
