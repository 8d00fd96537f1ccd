"""OIDC sign-in end to end: the app's production code talks HTTP to a real (authlib) provider
on loopback; the test plays the browser between the two."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from grantflow.settings import Settings
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User
from tests.auth.conftest import BASE, AppFactory, AuthApp
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, Identity, OidcTestProvider

COOKIE = "grantflow_session"


def _to_provider(app: AuthApp, browser: TestClient, next_path: str | None = None) -> str:
    params = {"next": next_path} if next_path else None
    response: httpx.Response = browser.get(
        "/auth/oidc/login", params=params, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def _authorize(authorize_url: str) -> str:
    """The provider signs the configured identity in and redirects back: the callback URL."""
    response = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def _callback(browser: TestClient, callback_url: str, **headers: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    response: httpx.Response = browser.get(
        f"{parts.path}?{parts.query}", follow_redirects=False, headers=headers
    )
    return response


def _sign_in(app: AuthApp, browser: TestClient | None = None) -> httpx.Response:
    browser = browser or app.client
    return _callback(browser, _authorize(_to_provider(app, browser)))


def test_sign_in_end_to_end_by_verified_email(
    oidc_app: AuthApp, oidc_provider: OidcTestProvider
) -> None:
    alice = oidc_app.add_user("alice", email="Alice@Example.com", password=None)
    oidc_provider.identity = Identity(sub="idp-1", email="alice@example.com")

    authorize_url = _to_provider(oidc_app, oidc_app.client, "/requests")
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(f"{oidc_provider.issuer}/authorize?")
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [f"{BASE}/auth/oidc/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert {"state", "nonce", "code_challenge"} <= set(query)
    assert set(query["scope"][0].split()) == {"openid", "email", "profile"}

    done = _callback(oidc_app.client, _authorize(authorize_url))
    assert done.status_code == 303, done.text
    assert (done.status_code, done.headers["location"]) == (303, "/requests")
    me = oidc_app.client.get("/api/v1/me")
    assert (me.status_code, me.json()["id"]) == (200, alice)
    assert oidc_provider.token_requests == 1
    session = oidc_app.client.get("/auth/session").json()
    assert (session["authenticated"], session["oidc_enabled"]) == (True, True)


def test_sign_in_by_preferred_username(oidc_app: AuthApp, oidc_provider: OidcTestProvider) -> None:
    bob = oidc_app.add_user("bob", email="bob@corp.example")
    oidc_provider.identity = Identity(sub="idp-2", email=None, preferred_username="bob")
    assert _sign_in(oidc_app).status_code == 303
    assert oidc_app.client.get("/api/v1/me").json()["id"] == bob


def test_unverified_email_is_not_trusted(
    oidc_app: AuthApp, oidc_provider: OidcTestProvider
) -> None:
    oidc_app.add_user("alice", email="alice@example.com")
    oidc_provider.identity = Identity(sub="idp-3", email="alice@example.com", email_verified=False)
    response = _sign_in(oidc_app)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "no_account")
    assert COOKIE not in oidc_app.client.cookies


def test_unknown_identity_is_refused(oidc_app: AuthApp, oidc_provider: OidcTestProvider) -> None:
    oidc_app.add_user("alice", email="alice@example.com")
    oidc_provider.identity = Identity(
        sub="idp-4", email="mallory@example.com", preferred_username="mallory"
    )
    response = _sign_in(oidc_app)
    assert response.status_code == 403
    assert "no active Grantflow account" in response.json()["error"]["message"]
    assert oidc_app.client.get("/api/v1/me").status_code == 401


def test_deactivated_user_is_refused(oidc_app: AuthApp, oidc_provider: OidcTestProvider) -> None:
    oidc_app.add_user("alice", email="alice@example.com", active=False)
    oidc_provider.identity = Identity(sub="idp-5", email="alice@example.com")
    response = _sign_in(oidc_app)
    assert response.status_code == 403
    assert "deactivated" in response.json()["error"]["message"]


def test_wrong_nonce_is_refused(oidc_app: AuthApp, oidc_provider: OidcTestProvider) -> None:
    oidc_app.add_user("alice", email="alice@example.com")
    oidc_provider.identity = Identity(sub="idp-6", email="alice@example.com")
    oidc_provider.nonce_override = "replayed-nonce"
    response = _sign_in(oidc_app)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "oidc_rejected")
    assert "nonce" in response.json()["error"]["message"]
    assert COOKIE not in oidc_app.client.cookies


def test_token_signed_by_another_key_is_refused(
    oidc_app: AuthApp, oidc_provider: OidcTestProvider
) -> None:
    oidc_app.add_user("alice", email="alice@example.com")
    oidc_provider.identity = Identity(sub="idp-7", email="alice@example.com")
    oidc_provider.sign_with_impostor = True
    response = _sign_in(oidc_app)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "oidc_rejected")
    assert "BadSignature" in response.json()["error"]["message"]


def test_wrong_state_is_refused_and_the_sign_in_is_spent(
    oidc_app: AuthApp, oidc_provider: OidcTestProvider
) -> None:
    oidc_app.add_user("alice", email="alice@example.com")
    oidc_provider.identity = Identity(sub="idp-8", email="alice@example.com")
    callback = _authorize(_to_provider(oidc_app, oidc_app.client))
    state = parse_qs(urlsplit(callback).query)["state"][0]
    tampered = callback.replace(f"state={state}", "state=forged")
    response = _callback(oidc_app.client, tampered)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "oidc_error")
    assert "state" in response.json()["error"]["message"]
    # the genuine callback no longer works either: a pending sign-in is used once
    assert _callback(oidc_app.client, callback).status_code == 400
    assert oidc_provider.token_requests == 0


def test_callback_in_another_browser_is_refused(
    oidc_app: AuthApp, oidc_provider: OidcTestProvider
) -> None:
    """Login CSRF: a callback URL started by someone else must not sign this browser in."""
    oidc_app.add_user("mallory", email="mallory@example.com")
    oidc_provider.identity = Identity(sub="idp-9", email="mallory@example.com")
    callback = _authorize(_to_provider(oidc_app, oidc_app.client))
    victim = oidc_app.new_client(base_url=BASE)
    response = _callback(victim, callback)
    assert response.status_code == 400
    assert COOKIE not in victim.cookies


def test_provider_error_is_a_clear_page(oidc_app: AuthApp, oidc_provider: OidcTestProvider) -> None:
    _to_provider(oidc_app, oidc_app.client)
    response = oidc_app.client.get(
        "/auth/oidc/callback",
        params={"error": "access_denied", "error_description": "<b>user said no</b>"},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "access_denied" in response.text
    assert "&lt;b&gt;user said no&lt;/b&gt;" in response.text


def test_auto_create_makes_a_member(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = make_auth_app(
        oidc_issuer=oidc_provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_auto_create=True,
    )
    oidc_provider.identity = Identity(
        sub="idp-10", email="carol@example.com", preferred_username="carol", name="Carol C"
    )
    assert _sign_in(app).status_code == 303
    engine = build_engine(app.settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            user = session.scalars(select(User).where(User.username == "carol")).one()
            created = (user.email, user.display_name, user.role, user.source, user.external_id)
    finally:
        engine.dispose()
    assert created == ("carol@example.com", "Carol C", "member", "oidc", "idp-10")


def test_unreachable_issuer_is_a_502(make_auth_app: AppFactory) -> None:
    from grantflow.demo.moto_server import free_loopback_port

    app = make_auth_app(
        oidc_issuer=f"http://127.0.0.1:{free_loopback_port()}", oidc_client_id=CLIENT_ID
    )
    response = app.client.get("/auth/oidc/login", follow_redirects=False)
    assert (response.status_code, response.json()["error"]["code"]) == (502, "oidc_unavailable")


def test_oidc_not_configured_is_a_404(auth_app: AuthApp) -> None:
    response = auth_app.client.get("/auth/oidc/login", follow_redirects=False)
    assert response.status_code == 404
    assert auth_app.client.get("/auth/session").json()["oidc_enabled"] is False


def test_issuer_must_be_https_except_on_loopback() -> None:
    with pytest.raises(ValidationError, match="https"):
        Settings(oidc_issuer="http://idp.example.com")
    assert Settings(oidc_issuer="http://127.0.0.1:9000").oidc_issuer == "http://127.0.0.1:9000"
    assert Settings(oidc_issuer="https://idp.example.com").oidc_issuer == "https://idp.example.com"
