"""Issue 15, item 3: credentials die with their user, for good.

Deactivating a user (admin, SCIM, the identity store sync) revokes every web session and API
token at once, and reactivation revives none of them; a SCIM delete is final (the same
userName later is a new row that inherits nothing); an admin's deactivation wins over SCIM and
the sync until an admin reactivates. Each step is seen the way the user sees it: over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.api.app import create_app
from grantflow.domain.inventory import DirectorySnapshot, DirectoryUser
from grantflow.services.audit import trail as audit
from grantflow.services.auth import passwords, tokens
from grantflow.services.directory import identity_store
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import Settings
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import ApiToken, AuditEvent, User
from grantflow.store.models_auth import DeviceAuthorization, WebSession
from grantflow.store.types import utcnow
from tests.fixtures.api import ADMIN_TOKEN, make_settings

BASE = "http://testserver"
PASSWORD = "correct horse battery staple"
SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SYNC = audit.Actor(type="system", id=None, source="scheduler")
_FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class App:
    client: TestClient
    settings: Settings

    @contextmanager
    def db(self) -> Iterator[Session]:
        engine = build_engine(self.settings.database_url)
        try:
            with transaction(session_factory(engine)) as session:
                yield session
        finally:
            engine.dispose()

    def browser(self) -> TestClient:
        """Another browser: its own cookie jar, same app."""
        return TestClient(self.client.app, base_url=BASE)

    def local_user(self, username: str) -> str:
        with self.db() as session:
            user = User(
                username=username,
                display_name=username.title(),
                role="member",
                source="local",
                password_hash=passwords.hash_password(PASSWORD),
            )
            session.add(user)
            session.flush()
            return user.id

    def token_for(self, user_id: str) -> str:
        """A personal API token, as the user would make on their profile page."""
        with self.db() as session:
            user = session.get(User, user_id)
            assert user is not None
            actor = audit.Actor(type="user", id=user_id, source="web")
            return tokens.create_personal_token(session, user, "laptop", actor).plaintext

    def set_active(self, user_id: str, active: bool) -> dict[str, Any]:
        r = self.client.patch(f"/api/v1/users/{user_id}", json={"active": active}, headers=ADMIN)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def events(self, user_id: str, action: str) -> list[dict[str, Any]]:
        with self.db() as session:
            rows = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.target_id == user_id, AuditEvent.action == action)
                .order_by(AuditEvent.seq)
            ).all()
            return [dict(e.data) for e in rows]


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    # argon2 at its production cost takes about a second here; these tests are not about it
    monkeypatch.setattr(passwords, "_hasher", lambda: _FAST)
    monkeypatch.setattr(passwords, "_dummy_hash", lambda: _FAST.hash("dummy"))
    settings = make_settings(db_url, cookie_secure=False, base_url=BASE)
    prepare_database(settings)
    with TestClient(create_app(settings, run_workers=False), base_url=BASE) as client:
        yield App(client, settings)


def _me(client: TestClient, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return int(client.get("/api/v1/me", headers=headers).status_code)


def _sign_in(app: App, username: str) -> TestClient:
    browser = app.browser()
    r = browser.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert _me(browser) == 200
    return browser


# --- admin deactivation -------------------------------------------------------------------


def test_admin_deactivation_ends_tokens_and_sessions_and_reactivation_revives_none(
    app: App,
) -> None:
    alice = app.local_user("alice")
    browser = _sign_in(app, "alice")
    token = app.token_for(alice)
    assert _me(app.client, token) == 200
    with app.db() as session:  # a CLI sign-in alice approved, its token not collected yet
        session.add(
            DeviceAuthorization(
                device_code_hash="d" * 64, user_code_hash="u" * 64, label="laptop",
                status="approved", user_id=alice, expires_at=utcnow() + timedelta(minutes=10),
            )
        )  # fmt: skip

    assert app.set_active(alice, False)["active"] is False
    assert _me(app.client, token) == 401  # revoked, not merely "deactivated" (403)
    assert _me(browser) == 401  # the browser is signed out
    assert browser.get("/auth/session").json()["authenticated"] is False

    assert app.set_active(alice, True)["active"] is True
    assert _me(app.client, token) == 401
    assert _me(browser) == 401
    assert _me(_sign_in(app, "alice")) == 200  # a fresh sign-in works again

    with app.db() as session:
        assert session.scalar(select(ApiToken.revoked_at).where(ApiToken.user_id == alice))
        ended = session.scalars(select(WebSession).where(WebSession.user_id == alice)).all()
        assert len([s for s in ended if s.revoked_at is not None]) == 1
        device = session.scalars(select(DeviceAuthorization)).one()
        assert (device.status, device.decided_at is not None) == ("denied", True)
    (deactivated,) = app.events(alice, "user.deactivated")
    assert {k: deactivated[k] for k in ("origin", "by_admin", "sessions", "tokens")} == {
        "origin": "admin", "by_admin": True, "sessions": 1, "tokens": 1,
    }  # fmt: skip
    assert deactivated["device_authorizations"] == 1
    assert [e["origin"] for e in app.events(alice, "user.reactivated")] == ["admin"]


# --- SCIM ---------------------------------------------------------------------------------


@pytest.fixture
def scim(app: App) -> dict[str, str]:
    r = app.client.post("/api/v1/scim/tokens", json={"name": "okta"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}", "Content-Type": SCIM_JSON}


def _scim_create(app: App, scim: dict[str, str], name: str) -> str:
    body = {"schemas": [USER_SCHEMA], "userName": name, "active": True}
    r = app.client.post("/scim/v2/Users", json=body, headers=scim)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _scim_active(app: App, scim: dict[str, str], user_id: str, active: bool) -> bool:
    op = {"op": "replace", "path": "active", "value": active}
    body = {"schemas": [PATCH_OP], "Operations": [op]}
    r = app.client.patch(f"/scim/v2/Users/{user_id}", json=body, headers=scim)
    assert r.status_code == 200, r.text
    return bool(r.json()["active"])


def _listed(app: App, **params: Any) -> dict[str, dict[str, Any]]:
    r = app.client.get("/api/v1/users", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    return {u["id"]: u for u in r.json()["items"]}


def test_scim_delete_is_final_and_the_same_username_is_a_new_user(
    app: App, scim: dict[str, str]
) -> None:
    old = _scim_create(app, scim, "dave")
    token = app.token_for(old)
    assert _me(app.client, token) == 200

    assert app.client.delete(f"/scim/v2/Users/{old}", headers=scim).status_code == 204
    assert _me(app.client, token) == 401
    new = _scim_create(app, scim, "Dave")  # another person, given the freed name
    assert new != old
    assert _me(app.client, token) == 401  # the new row inherits nothing

    assert app.client.get(f"/scim/v2/Users/{old}", headers=scim).status_code == 404
    found = app.client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "dave"'}, headers=scim
    ).json()
    assert [u["id"] for u in found["Resources"]] == [new]
    assert old not in _listed(app) and new in _listed(app)
    history = _listed(app, include_deleted="true")
    assert history[old]["deleted_at"] is not None and history[old]["active"] is False
    r = app.client.patch(f"/api/v1/users/{old}", json={"active": True}, headers=ADMIN)
    assert r.status_code == 409, r.text
    (deleted,) = app.events(old, "user.deleted")
    assert (deleted["origin"], deleted["username"]) == ("scim", "dave")
    assert app.events(old, "user.deactivated")[0]["tokens"] == 1


def test_scim_reactivation_revives_no_token(app: App, scim: dict[str, str]) -> None:
    erin = _scim_create(app, scim, "erin")
    token = app.token_for(erin)
    assert _scim_active(app, scim, erin, False) is False
    assert _me(app.client, token) == 401
    assert _scim_active(app, scim, erin, True) is True
    assert _me(app.client, token) == 401
    assert app.events(erin, "user.deactivated")[0]["origin"] == "scim"


def test_admin_deactivation_wins_over_scim_until_an_admin_reactivates(
    app: App, scim: dict[str, str]
) -> None:
    erin = _scim_create(app, scim, "erin")
    app.set_active(erin, False)

    assert _scim_active(app, scim, erin, True) is False  # answered, and still inactive
    body = {"schemas": [USER_SCHEMA], "userName": "erin", "active": True}
    r = app.client.put(f"/scim/v2/Users/{erin}", json=body, headers=scim)
    assert r.status_code == 200 and r.json()["active"] is False, r.text
    listed = _listed(app)[erin]
    assert (listed["active"], listed["disabled_by_admin"]) == (False, True)
    refused = app.events(erin, "user.reactivation_refused")
    assert [e["origin"] for e in refused] == ["scim"]  # once, not once per push

    assert app.set_active(erin, True)["active"] is True
    assert _listed(app)[erin]["disabled_by_admin"] is False
    assert _scim_active(app, scim, erin, False) is False  # the source rules again
    assert _scim_active(app, scim, erin, True) is True


# --- the identity store sync --------------------------------------------------------------


def _sync(app: App, active: bool) -> None:
    snapshot = DirectorySnapshot(
        identity_store_id="d-123", instance_arn="arn:aws:sso:::instance/ssoins-1",
        users=[DirectoryUser(identity_store_user_id="is-frank", username="frank", active=active)],
        groups=[],
    )  # fmt: skip
    with app.db() as session:
        identity_store.apply_identity_store_snapshot(session, snapshot, SYNC)


def _frank(app: App) -> str:
    with app.db() as session:
        found = session.scalar(select(User.id).where(User.username == "frank"))
        assert found is not None
        return found


def test_admin_deactivation_wins_over_the_sync_until_an_admin_reactivates(app: App) -> None:
    _sync(app, active=True)
    frank = _frank(app)
    token = app.token_for(frank)
    app.set_active(frank, False)
    assert _me(app.client, token) == 401

    _sync(app, active=True)
    _sync(app, active=True)
    assert _listed(app)[frank]["active"] is False
    assert [e["origin"] for e in app.events(frank, "user.reactivation_refused")] == ["sync"]

    app.set_active(frank, True)
    assert _me(app.client, token) == 401
    _sync(app, active=False)  # the source may still deactivate
    listed = _listed(app)[frank]
    assert (listed["active"], listed["disabled_by_admin"]) == (False, False)
    assert app.events(frank, "user.deactivated")[-1]["origin"] == "sync"
    _sync(app, active=True)
    assert _listed(app)[frank]["active"] is True
