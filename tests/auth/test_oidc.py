"""OIDC sign-in end to end: the app's production code talks HTTP to a real (authlib) provider
on loopback; the test plays the browser between the two."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from grantflow.settings import Settings
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User, UserIdentity
from tests.auth.conftest import BASE, AppFactory, AuthApp
from tests.auth.oidc_flow import SESSION_COOKIE, authorize, callback, sign_in, to_provider
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, Identity, OidcTestProvider

COOKIE = SESSION_COOKIE
_to_provider, _authorize, _callback, _sign_in = to_provider, authorize, callback, sign_in


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


def test_preferred_username_never_signs_anyone_in(
    oidc_app: AuthApp, oidc_provider: OidcTestProvider
) -> None:
    oidc_app.add_user("bob", email="bob@corp.example", password=None)
    oidc_provider.identity = Identity(sub="idp-2", email=None, preferred_username="bob")
    response = _sign_in(oidc_app)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "no_account")
    assert oidc_app.client.get("/api/v1/me").status_code == 401


def test_unverified_email_is_not_trusted(
    oidc_app: AuthApp, oidc_provider: OidcTestProvider
) -> None:
    oidc_app.add_user("alice", email="alice@example.com", password=None)
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
    oidc_app.add_user("alice", email="alice@example.com", active=False, password=None)
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
            created = (user.email, user.display_name, user.role, user.source)
            (identity,) = session.scalars(
                select(UserIdentity).where(UserIdentity.user_id == user.id)
            ).all()
            bound = (identity.issuer, identity.subject, identity.linked_by)
    finally:
        engine.dispose()
    assert created == ("carol@example.com", "Carol C", "member", "oidc")
    assert bound == (oidc_provider.issuer, "idp-10", "created")


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
