"""Invitations: a directory user (synced from Identity Center, no password) gets a one-time,
expiring link from an admin, sets a password on /invite and is signed in.

Over HTTP on both backends: the link works once; an expired, replaced or spent link is refused;
a deactivated user's link is refused; the invitation secret is never a bearer token; the
secret is stored only hashed; with SMTP configured the link is emailed, not shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from grantflow.api.app import create_app
from grantflow.notify.email import EmailChannel
from grantflow.services.auth import passwords
from grantflow.services.runtime.startup import prepare_database
from grantflow.store.db import transaction
from grantflow.store.models import ApiToken, AuditEvent, User
from grantflow.store.types import utcnow
from tests.fixtures.api import ADMIN_TOKEN, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NEW_PASSWORD = "a long enough new password"
_FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", lambda: _FAST)
    monkeypatch.setattr(passwords, "_dummy_hash", lambda: _FAST.hash("dummy"))


def _client(db_url: str, **settings: object) -> Iterator[TestClient]:
    config = make_settings(db_url, base_url="https://grantflow.example", **settings)
    prepare_database(config)
    with TestClient(create_app(config)) as client:
        yield client


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    yield from _client(db_url)


def _sessions(client: TestClient) -> sessionmaker[Session]:
    return client.app.state.ctx.sessions  # type: ignore[attr-defined,no-any-return]


def _synced_user(client: TestClient, username: str = "alice") -> str:
    """A user as the Identity Center sync makes it: no password, no way to sign in."""
    with transaction(_sessions(client)) as session:
        user = User(
            username=username, display_name=username.title(), email=f"{username}@example.com",
            role="member", source="identity_center", directory="d-1234567890",
        )  # fmt: skip
        session.add(user)
        session.flush()
        return user.id


def _invite(client: TestClient, user_id: str) -> str:
    r = client.post(f"/api/v1/users/{user_id}/invitation", headers=ADMIN)
    assert r.status_code == 201, r.text
    link = r.json()["link"]
    assert link.startswith("https://grantflow.example/invite#gf_inv_")
    assert "?" not in link  # the secret is in the fragment, never in a query string
    return str(link.split("#", 1)[1])


def _accept(client: TestClient, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    browser = TestClient(client.app, base_url="https://testserver")
    answer: httpx.Response = browser.post(
        "/auth/invitation", json={"token": token, "password": password}
    )
    return answer


def test_invitation_sets_a_password_once_and_signs_in(client: TestClient) -> None:
    user_id = _synced_user(client)
    assert client.post(
        "/auth/login", json={"username": "alice", "password": NEW_PASSWORD}
    ).status_code == 401  # fmt: skip
    token = _invite(client, user_id)

    browser = TestClient(client.app, base_url="https://testserver")
    short = browser.post("/auth/invitation", json={"token": token, "password": "short"})
    assert short.status_code == 422 and short.json()["error"]["field"] == "password"
    used = browser.post("/auth/invitation", json={"token": token, "password": NEW_PASSWORD})
    assert used.status_code == 200, used.text
    assert used.json()["user"]["username"] == "alice"
    session = browser.get("/auth/session").json()
    assert session["authenticated"] is True and session["user"]["id"] == user_id

    again = _accept(client, token, "another long password")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invitation_invalid"
    # the password set through the link is the user's password from now on
    signed_in = client.post("/auth/login", json={"username": "alice", "password": NEW_PASSWORD})
    assert signed_in.status_code == 200, signed_in.text

    with transaction(_sessions(client)) as db:
        row = db.scalar(select(ApiToken).where(ApiToken.kind == "invite"))
        assert row is not None and token not in row.token_hash and row.revoked_at is not None
        actions = set(db.scalars(select(AuditEvent.action)))
    assert {"user.invited", "user.invitation_accepted"} <= actions


def test_an_expired_invitation_is_refused(client: TestClient) -> None:
    token = _invite(client, _synced_user(client))
    with transaction(_sessions(client)) as db:
        db.execute(
            update(ApiToken)
            .where(ApiToken.kind == "invite")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = _accept(client, token)
    assert r.status_code == 400


def test_a_new_invitation_replaces_the_older_one(client: TestClient) -> None:
    user_id = _synced_user(client)
    first = _invite(client, user_id)
    second = _invite(client, user_id)
    assert _accept(client, first).status_code == 400
    assert _accept(client, second).status_code == 200


def test_an_invitation_is_never_a_bearer_token(client: TestClient) -> None:
    token = _invite(client, _synced_user(client))
    for path in ("/api/v1/me", "/api/v1/me/tokens", "/api/v1/requestable"):
        r = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (path, r.status_code)
    # still usable for what it is for
    assert _accept(client, token).status_code == 200


def test_a_deactivated_user_cannot_use_or_get_an_invitation(client: TestClient) -> None:
    user_id = _synced_user(client)
    token = _invite(client, user_id)
    off = client.patch(f"/api/v1/users/{user_id}", headers=ADMIN, json={"active": False})
    assert off.status_code == 200, off.text
    assert _accept(client, token).status_code == 400
    again = client.post(f"/api/v1/users/{user_id}/invitation", headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"]["field"] == "user_id"
    # reactivated: the old link stays dead (deactivation revoked it)
    on = client.patch(f"/api/v1/users/{user_id}", headers=ADMIN, json={"active": True})
    assert on.status_code == 200, on.text
    assert _accept(client, token).status_code == 400


def test_a_deleted_user_cannot_use_an_invitation(client: TestClient) -> None:
    user_id = _synced_user(client)
    token = _invite(client, user_id)
    with transaction(_sessions(client)) as db:
        db.execute(update(User).where(User.id == user_id).values(deleted_at=utcnow()))
    assert _accept(client, token).status_code == 400


def test_only_admins_invite(client: TestClient) -> None:
    user_id = _synced_user(client)
    assert client.post(f"/api/v1/users/{user_id}/invitation").status_code == 401
    missing = client.post("/api/v1/users/no-such-user/invitation", headers=ADMIN)
    assert missing.status_code == 404


def test_the_invite_page_carries_no_secret_and_asks_for_a_password(client: TestClient) -> None:
    page = client.get("/invite")
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in page.text and "/static/invite.js" in page.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_with_smtp_the_link_is_emailed_not_shown(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        EmailChannel, "send_text", lambda _self, to, subject, body: sent.append((to, subject, body))
    )
    for client in _client(db_url, smtp_host="smtp.example"):
        user_id = _synced_user(client)
        r = client.post(f"/api/v1/users/{user_id}/invitation", headers=ADMIN)
        assert r.status_code == 201, r.text
        assert r.json()["link"] is None and r.json()["emailed_to"] == "alice@example.com"
        assert len(sent) == 1 and sent[0][0] == "alice@example.com"
        token = sent[0][2].split("/invite#", 1)[1].split()[0]
        assert _accept(client, token).status_code == 200
