"""Password sign-in: sessions, cookie flags, sign-out, deactivation, login CSRF."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx
import pytest
from sqlalchemy import select

from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import AuditEvent
from grantflow.store.models_auth import WebSession
from tests.auth.conftest import BASE, PASSWORD, AppFactory, AuthApp

COOKIE = "grantflow_session"


def _set_cookie(response: httpx.Response, name: str) -> SimpleCookie:
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        if name in parsed:
            return parsed
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


def test_json_login_opens_a_session_the_api_accepts(auth_app: AuthApp) -> None:
    auth_app.add_user("alice", email="alice@example.com")
    response = auth_app.login("alice")
    assert response.status_code == 200
    body = response.json()
    assert (body["authenticated"], body["user"]["username"]) == (True, "alice")
    assert len(body["csrf_token"]) == 64

    me = auth_app.client.get("/api/v1/me")
    assert (me.status_code, me.json()["username"]) == (200, "alice")
    session = auth_app.client.get("/auth/session").json()
    assert (session["authenticated"], session["csrf_token"]) == (True, body["csrf_token"])


def test_session_cookie_flags_on_plain_http(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    morsel = _set_cookie(auth_app.login("alice"), COOKIE)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) == auth_app.settings.session_max_age_seconds
    assert not morsel["secure"]


def test_session_cookie_is_secure_and_host_bound_when_configured(
    make_auth_app: AppFactory,
) -> None:
    app = make_auth_app(cookie_secure=True, base_url="https://testserver")
    app.add_user("alice")
    client = app.new_client(base_url="https://testserver")
    response = app.login("alice", client=client)
    name = "__Host-grantflow_session"
    morsel = _set_cookie(response, name)[name]
    assert (morsel["secure"], morsel["httponly"], morsel["samesite"].lower()) == (
        True,
        True,
        "lax",
    )
    assert client.get("/api/v1/me").status_code == 200


def test_form_login_redirects_to_a_local_next_only(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    form = {"username": "alice", "password": PASSWORD, "next": "/requests?x=1"}
    response = auth_app.client.post("/auth/login", data=form, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/requests?x=1")

    for evil in ("//evil.example/x", "https://evil.example", "/\\evil.example", "/\t/evil.example"):
        other = auth_app.new_client(base_url=BASE)
        form["next"] = evil
        response = other.post("/auth/login", data=form, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/")


def test_logout_ends_the_session_on_the_server(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    csrf = auth_app.login("alice").json()["csrf_token"]
    stolen = auth_app.client.cookies[COOKIE]

    response = auth_app.client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert COOKIE not in auth_app.client.cookies
    replay = auth_app.new_client(base_url=BASE, cookies={COOKIE: stolen})
    assert replay.get("/api/v1/me").status_code == 401
    assert auth_app.client.get("/auth/session").json()["authenticated"] is False


def test_logout_by_form_with_the_csrf_field(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    csrf = auth_app.login("alice").json()["csrf_token"]
    response = auth_app.client.post(
        "/auth/logout", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert auth_app.client.get("/api/v1/me").status_code == 401


def test_deactivated_users_session_stops_working(auth_app: AuthApp) -> None:
    alice = auth_app.add_user("alice")
    auth_app.login("alice")
    assert auth_app.client.get("/api/v1/me").status_code == 200

    auth_app.set_active(alice, False)
    response = auth_app.client.get("/api/v1/me")
    assert response.status_code == 401
    assert "deactivated" in response.json()["error"]["message"]
    assert auth_app.client.get("/auth/session").json()["authenticated"] is False


def test_deactivated_user_cannot_sign_in(auth_app: AuthApp) -> None:
    auth_app.add_user("bob", active=False)
    response = auth_app.login("bob")
    assert response.status_code == 401
    assert COOKIE not in auth_app.client.cookies


def test_cross_site_login_post_is_refused(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    response = auth_app.client.post(
        "/auth/login",
        data={"username": "alice", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert COOKIE not in auth_app.client.cookies
    same_site = auth_app.client.post(
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": BASE},
    )
    assert same_site.status_code == 200


def test_signing_in_again_replaces_the_old_session(auth_app: AuthApp) -> None:
    auth_app.add_user("alice")
    auth_app.login("alice")
    first = auth_app.client.cookies[COOKIE]
    auth_app.login("alice")
    assert auth_app.client.cookies[COOKIE] != first
    old = auth_app.new_client(base_url=BASE, cookies={COOKIE: first})
    assert old.get("/api/v1/me").status_code == 401


def test_sessions_are_stored_hashed_and_audited(auth_app: AuthApp) -> None:
    alice = auth_app.add_user("alice")
    auth_app.login("alice")
    secret = auth_app.client.cookies[COOKIE]
    engine = build_engine(auth_app.settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            rows = session.scalars(select(WebSession)).all()
            actions = {
                (a, t) for a, t in session.execute(select(AuditEvent.action, AuditEvent.target_id))
            }
    finally:
        engine.dispose()
    assert [(r.user_id, r.auth_method) for r in rows] == [(alice, "password")]
    assert secret not in {r.token_hash for r in rows}
    assert ("auth.signed_in", alice) in actions


@pytest.mark.parametrize(
    "body",
    [{"username": "alice"}, {"password": "x"}, {"username": "", "password": "x"}],
)
def test_incomplete_login_is_a_validation_error(auth_app: AuthApp, body: dict[str, str]) -> None:
    response = auth_app.client.post("/auth/login", json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_error")
