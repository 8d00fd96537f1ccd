"""Issue 15, item 1: an OIDC identity is bound by (issuer, sub), never by a name.

The review signed in with ``sub=attacker``, ``preferred_username=admin`` and the admin's email
marked unverified, got the bootstrap admin's session and minted a token with it. Each test
plays the browser between the app and a real (authlib) OIDC provider on loopback.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.auth import conftest as auth_fixtures
from tests.auth.conftest import AppFactory, AuthApp
from tests.auth.oidc_flow import ADMIN, SESSION_COOKIE, audit_events, sign_in
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, Identity, OidcTestProvider

# the sign-in fixtures of tests/auth (the app with OIDC, the provider, fast argon2)
make_auth_app = auth_fixtures.make_auth_app
oidc_provider = auth_fixtures.oidc_provider
fast_password_hashing = auth_fixtures.fast_password_hashing

ADMIN_EMAIL = "root@corp.example"


def _app(factory: AppFactory, provider: OidcTestProvider, **overrides: object) -> AuthApp:
    return factory(
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        **overrides,
    )


def _bootstrap_admin(app: AuthApp, email: str | None = ADMIN_EMAIL) -> str:
    users = app.client.get("/api/v1/users", headers=ADMIN).json()["items"]
    (admin,) = [u for u in users if u["username"] == "admin"]
    if email is not None:
        from grantflow.store.db import build_engine, session_factory, transaction
        from grantflow.store.models import User

        engine = build_engine(app.settings.database_url)
        try:
            with transaction(session_factory(engine)) as session:
                row = session.get(User, admin["id"])
                assert row is not None
                row.email = email
        finally:
            engine.dispose()
    return str(admin["id"])


def _usernames(app: AuthApp) -> set[str]:
    users = app.client.get("/api/v1/users", headers=ADMIN).json()["items"]
    return {u["username"] for u in users}


def _identities(app: AuthApp, user_id: str) -> set[tuple[str, str, str]]:
    response = app.client.get(f"/api/v1/users/{user_id}/identities", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {(i["issuer"], i["subject"], i["linked_by"]) for i in response.json()}


def _refused(response: Any, browser: TestClient) -> None:
    """No session: the browser holds no cookie, is nobody, and cannot mint a token."""
    assert (response.status_code, response.json()["error"]["code"]) == (403, "no_account")
    assert SESSION_COOKIE not in browser.cookies
    assert browser.get("/api/v1/me").status_code == 401
    assert browser.post("/api/v1/me/tokens", json={"name": "loot"}).status_code == 401


@pytest.mark.parametrize("auto_create", [False, True])
def test_takeover_of_the_bootstrap_admin_is_refused(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider, auto_create: bool
) -> None:
    """The review's exact identity: sub=attacker, preferred_username=admin, the admin's email
    unverified. No session, no token, no new account; the refusal is audited with issuer
    and sub."""
    app = _app(make_auth_app, oidc_provider, oidc_auto_create=auto_create)
    admin_id = _bootstrap_admin(app)
    before = _usernames(app)
    oidc_provider.identity = Identity(
        sub="attacker", preferred_username="admin", email=ADMIN_EMAIL, email_verified=False
    )
    _refused(sign_in(app), app.client)
    assert _usernames(app) == before
    assert _identities(app, admin_id) == set()
    (failed,) = audit_events(app, "auth.sign_in_failed")
    assert (failed["data"]["issuer"], failed["data"]["sub"]) == (oidc_provider.issuer, "attacker")
    assert failed["data"]["reason"] == ("username_taken" if auto_create else "no_match")


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        ("bootstrap", "bootstrap_admin"),
        ("admin", "admin_account"),
        ("password", "local_password"),
    ],
)
def test_a_verified_email_never_links_an_account_only_an_admin_may_link(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider, who: str, reason: str
) -> None:
    app = _app(make_auth_app, oidc_provider, oidc_auto_create=True)
    email = f"{who}@corp.example"
    if who == "bootstrap":
        target = _bootstrap_admin(app, email)
    else:
        target = app.add_user(
            f"{who}-user",
            email=email,
            role="admin" if who == "admin" else "member",
            password="correct horse battery staple" if who == "password" else None,
        )
    before = _usernames(app)
    oidc_provider.identity = Identity(sub=f"idp-{who}", email=email.upper(), email_verified=True)
    response = sign_in(app)
    _refused(response, app.client)
    assert "admin" in response.json()["error"]["message"]
    assert _usernames(app) == before  # and auto-create made no look-alike either
    assert _identities(app, target) == set()
    (failed,) = audit_events(app, "auth.sign_in_failed")
    assert (failed["data"]["reason"], failed["data"]["sub"], failed["target_id"]) == (
        reason,
        f"idp-{who}",
        target,
    )


def test_preferred_username_matches_nobody(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = _app(make_auth_app, oidc_provider)
    app.add_user("bob", email="bob@corp.example", password=None)
    oidc_provider.identity = Identity(sub="idp-bob", preferred_username="bob", email=None)
    _refused(sign_in(app), app.client)


def test_first_sign_in_links_by_verified_email_then_only_the_sub_counts(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = _app(make_auth_app, oidc_provider)
    alice = app.add_user("alice", email="alice@corp.example", password=None)
    oidc_provider.identity = Identity(sub="alice-sub", email="Alice@corp.example")
    assert sign_in(app).status_code == 303
    assert app.client.get("/api/v1/me").json()["id"] == alice
    assert _identities(app, alice) == {(oidc_provider.issuer, "alice-sub", "verified_email")}

    # another identity with alice's verified email: alice is bound already
    other = app.new_client()
    oidc_provider.identity = Identity(sub="someone-else", email="alice@corp.example")
    response = sign_in(app, other)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "no_account")
    assert other.get("/api/v1/me").status_code == 401

    # alice's own sub signs in as alice whatever the email and names say now
    again = app.new_client()
    oidc_provider.identity = Identity(
        sub="alice-sub", email="new@else.example", email_verified=False, preferred_username="admin"
    )
    assert sign_in(app, again).status_code == 303
    assert again.get("/api/v1/me").json()["id"] == alice

    signed_in = audit_events(app, "auth.oidc_signed_in")
    assert [
        (e["data"]["issuer"], e["data"]["sub"], e["data"]["linked_now"]) for e in signed_in
    ] == [
        (oidc_provider.issuer, "alice-sub", True),
        (oidc_provider.issuer, "alice-sub", False),
    ]
    (linked,) = audit_events(app, "user.identity_linked")
    assert (linked["target_id"], linked["data"]["sub"]) == (alice, "alice-sub")


def test_auto_create_binds_the_new_member_and_never_trusts_an_unverified_email(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = _app(make_auth_app, oidc_provider, oidc_auto_create=True)
    _bootstrap_admin(app)
    oidc_provider.identity = Identity(
        sub="carol-sub", preferred_username="carol", email=ADMIN_EMAIL, email_verified=False
    )
    assert sign_in(app).status_code == 303
    me = app.client.get("/api/v1/me").json()
    assert (me["username"], me["role"]) == ("carol", "member")
    users = app.client.get("/api/v1/users", headers=ADMIN).json()["items"]
    (carol,) = [u for u in users if u["username"] == "carol"]
    assert carol["email"] is None
    assert _identities(app, carol["id"]) == {(oidc_provider.issuer, "carol-sub", "created")}

    # the same sub, now calling itself admin, is still carol
    later = app.new_client()
    oidc_provider.identity = Identity(sub="carol-sub", preferred_username="admin")
    assert sign_in(app, later).status_code == 303
    assert later.get("/api/v1/me").json()["id"] == carol["id"]


def test_an_admin_links_and_unlinks_an_identity_explicitly(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = _app(make_auth_app, oidc_provider)
    admin_id = _bootstrap_admin(app)
    path = f"/api/v1/users/{admin_id}/identities"
    linked = app.client.post(path, json={"subject": "corp-root"}, headers=ADMIN)
    assert linked.status_code == 201, linked.text
    identity = linked.json()
    assert (identity["issuer"], identity["subject"], identity["linked_by"]) == (
        oidc_provider.issuer,
        "corp-root",
        "admin",
    )
    oidc_provider.identity = Identity(sub="corp-root", email=None)
    assert sign_in(app).status_code == 303
    assert app.client.get("/api/v1/me").json()["id"] == admin_id

    gone = app.client.delete(f"{path}/{identity['id']}", headers=ADMIN)
    assert gone.status_code == 204
    assert app.client.get("/api/v1/me").status_code == 401  # its session ended with it
    browser = app.new_client()
    _refused(sign_in(app, browser), browser)
    (unlinked,) = audit_events(app, "user.identity_unlinked")
    assert (unlinked["data"]["sub"], unlinked["data"]["sessions_ended"]) == ("corp-root", 1)


def test_identity_links_are_checked(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = _app(make_auth_app, oidc_provider)
    alice = app.add_user("alice", password=None)
    bob = app.add_user("bob", password=None)
    first = app.client.post(f"/api/v1/users/{alice}/identities", json={"subject": "s1"},
                            headers=ADMIN)  # fmt: skip
    assert first.status_code == 201
    cases = [
        (bob, {"subject": "s1"}, 409, "subject"),  # bound to alice already
        (alice, {"subject": "s2"}, 409, "issuer"),  # alice has one of this issuer
        (bob, {"subject": "s3", "issuer": "https://other.example"}, 422, "issuer"),
        (bob, {"subject": ""}, 422, "subject"),
        ("no-such-user", {"subject": "s4"}, 404, None),
    ]
    for user_id, body, status, field in cases:
        response = app.client.post(f"/api/v1/users/{user_id}/identities", json=body,
                                   headers=ADMIN)  # fmt: skip
        assert response.status_code == status, (body, response.text)
        if field is not None:
            assert field in str(response.json()["error"].get("field")), response.text


def test_members_cannot_see_or_change_identities(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = _app(make_auth_app, oidc_provider)
    app.add_user("mallory")
    admin_id = _bootstrap_admin(app)
    assert app.login("mallory").status_code == 200
    csrf = app.client.get("/auth/session").json()["csrf_token"]
    path = f"/api/v1/users/{admin_id}/identities"
    assert app.client.get(path).status_code == 403
    attempt = app.client.post(path, json={"subject": "x"}, headers={"X-CSRF-Token": csrf})
    assert attempt.status_code == 403
    assert _identities(app, admin_id) == set()


def test_an_unverified_email_never_links_whatever_the_settings_say(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    """GRANTFLOW_OIDC_REQUIRE_VERIFIED_EMAIL=false is ignored (config check and serve say so)."""
    app = _app(make_auth_app, oidc_provider, oidc_require_verified_email=False)
    dana = app.add_user("dana", email="dana@corp.example", password=None)
    oidc_provider.identity = Identity(sub="idp-dana", email="dana@corp.example",
                                      email_verified=False)  # fmt: skip
    _refused(sign_in(app), app.client)
    assert _identities(app, dana) == set()


def test_a_rejected_id_token_is_audited_with_the_issuer(
    make_auth_app: AppFactory, oidc_provider: OidcTestProvider
) -> None:
    app = _app(make_auth_app, oidc_provider)
    oidc_provider.identity = Identity(sub="idp-x", email="x@corp.example")
    oidc_provider.nonce_override = "replayed"
    assert sign_in(app).status_code == 401
    (failed,) = audit_events(app, "auth.sign_in_failed")
    assert (failed["data"]["issuer"], failed["data"]["sub"], failed["data"]["reason"]) == (
        oidc_provider.issuer,
        None,  # an ID token that failed validation names nobody
        "oidc_rejected",
    )
