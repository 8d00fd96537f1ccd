"""CSRF on cookie-authenticated writes; failed sign-ins limited per IP and delayed per account;
failures that say nothing about which usernames exist."""

from __future__ import annotations

import json

import httpx
import pytest

from grantflow.services.auth import passwords
from tests.auth.conftest import BASE, AppFactory, AuthApp
from tests.fixtures.api import ADMIN_TOKEN

TOKENS = "/api/v1/me/tokens"


def test_cookie_authenticated_post_needs_the_csrf_token(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    csrf = auth_app.login("alice").json()["csrf_token"]

    missing = auth_app.client.post(TOKENS, json={"name": "laptop"})
    wrong = auth_app.client.post(TOKENS, json={"name": "laptop"}, headers={"X-CSRF-Token": "0"})
    right = auth_app.client.post(TOKENS, json={"name": "laptop"}, headers={"X-CSRF-Token": csrf})

    assert (missing.status_code, wrong.status_code, right.status_code) == (403, 403, 201)
    assert "CSRF" in missing.json()["error"]["message"]
    assert [t["name"] for t in auth_app.client.get(TOKENS).json()] == ["laptop"]


def test_cookie_authenticated_delete_needs_the_csrf_token(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    csrf = auth_app.login("alice").json()["csrf_token"]
    created = auth_app.client.post(TOKENS, json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    path = f"{TOKENS}/{created.json()['id']}"
    assert auth_app.client.delete(path).status_code == 403
    assert auth_app.client.delete(path, headers={"X-CSRF-Token": csrf}).status_code == 204


def test_one_sessions_csrf_token_does_not_work_for_another(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    auth_app.add_user("bob")
    alice_csrf = auth_app.login("alice").json()["csrf_token"]
    bob = auth_app.new_client(base_url=BASE)
    auth_app.login("bob", client=bob)
    response = bob.post(TOKENS, json={"name": "x"}, headers={"X-CSRF-Token": alice_csrf})
    assert response.status_code == 403


def test_bearer_requests_need_no_csrf_token_even_with_a_cookie(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    auth_app.login("alice")
    response = auth_app.client.post(
        TOKENS, json={"name": "ci"}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 201
    # the bearer wins: the token belongs to the bootstrap admin, not to alice
    mine = auth_app.client.get(TOKENS).json()
    assert [t["name"] for t in mine] == []


def test_safe_requests_need_no_csrf_token(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    auth_app.login("alice")
    assert auth_app.client.get(TOKENS).status_code == 200


def _fingerprint(response: httpx.Response) -> tuple[int, str, frozenset[str]]:
    varying = {"x-request-id", "date"}
    names = frozenset(h for h in response.headers if h.lower() not in varying)
    return response.status_code, response.text, names


def test_unknown_user_and_wrong_password_look_the_same(
    auth_app: AuthApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_app.add_user("alice")
    auth_app.add_user("sso-only", password=None)
    auth_app.add_user("gone", active=False)
    checks: list[str] = []
    real_verify = passwords.verify

    def counting_verify(stored_hash: str, password: str) -> bool:
        checks.append(password)
        return real_verify(stored_hash, password)

    monkeypatch.setattr(passwords, "verify", counting_verify)
    answers = {
        name: _fingerprint(auth_app.login(name, password))
        for name, password in [
            ("alice", "wrong password"),
            ("nobody", "wrong password"),
            ("sso-only", "wrong password"),
            ("gone", "correct horse battery staple"),
        ]
    }
    assert len(set(answers.values())) == 1, answers
    status, text, _ = answers["nobody"]
    assert (status, json.loads(text)) == (
        401,
        {"error": {"code": "invalid_credentials", "message": "invalid username or password"}},
    )
    # one argon2 verification each, real or dummy: the same work whether the user exists
    assert len(checks) == 4


def test_failures_delay_the_address_that_failed_not_the_account(make_auth_app: AppFactory) -> None:
    app = make_auth_app(login_max_failures_per_user=3, login_max_failures_per_ip=100)
    app.add_user("alice")
    first_ip = app.new_client(base_url=BASE, client=("10.0.0.1", 1000))
    other_ip = app.new_client(base_url=BASE, client=("10.0.0.2", 1000))
    codes = [app.login("alice", "guess", client=first_ip).status_code for _ in range(3)]
    assert codes == [401, 401, 401]

    limited = app.login("alice", client=first_ip)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= app.settings.login_max_delay_seconds
    assert limited.json()["error"]["code"] == "rate_limited"
    # the account is not locked: the right password from another address works
    assert app.login("alice", client=other_ip).status_code == 200
    # other users are unaffected
    app.add_user("bob")
    assert app.login("bob", client=first_ip).status_code == 200


def test_failures_are_limited_per_client_ip(make_auth_app: AppFactory) -> None:
    app = make_auth_app(login_max_failures_per_user=100, login_max_failures_per_ip=3)
    app.add_user("alice")
    attacker = app.new_client(base_url=BASE, client=("10.0.0.66", 1000))
    codes = [app.login(f"user{i}", "guess", client=attacker).status_code for i in range(3)]
    assert codes == [401, 401, 401]

    limited = app.login("alice", client=attacker)
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers
    elsewhere = app.new_client(base_url=BASE, client=("10.0.0.7", 1000))
    assert app.login("alice", client=elsewhere).status_code == 200


def test_a_success_clears_the_usernames_failures(make_auth_app: AppFactory) -> None:
    app = make_auth_app(login_max_failures_per_user=3, login_max_failures_per_ip=100)
    app.add_user("alice")
    for _ in range(2):
        assert app.login("alice", "typo").status_code == 401
    assert app.login("alice").status_code == 200
    codes = [app.login("alice", "typo").status_code for _ in range(3)]
    assert codes == [401, 401, 401]


def test_rate_limited_form_login_gets_a_page(make_auth_app: AppFactory) -> None:
    app = make_auth_app(login_max_failures_per_user=1)
    app.add_user("alice")
    form = {"username": "alice", "password": "guess"}
    html = {"Accept": "text/html"}
    assert app.client.post("/auth/login", data=form, headers=html).status_code == 401
    page = app.client.post("/auth/login", data=form, headers=html)
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert "too many failed sign-ins" in page.text
