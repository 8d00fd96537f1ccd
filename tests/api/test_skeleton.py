"""The API skeleton through HTTP: health, readiness, metrics, docs, auth, error shape."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from grantflow.services.auth.tokens import hash_token
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import ApiToken, User
from tests.fixtures.api import Api


def test_health_ready_metrics_docs(api: Api) -> None:
    c = api.client
    assert c.get("/healthz").json()["status"] == "ok"
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert c.get("/docs").status_code == 200
    spec = c.get("/openapi.json").json()
    assert "/api/v1/me" in spec["paths"]
    metrics = c.get("/metrics").text
    assert "grantflow_http_requests_total" in metrics
    assert 'route="/readyz"' in metrics


def test_request_id_is_echoed_or_made(api: Api) -> None:
    r = api.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    made = api.client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert made.headers["X-Request-ID"] != "bad id\nwith newline"
    assert len(made.headers["X-Request-ID"]) == 32


def test_no_token_is_401_with_error_shape(api: Api) -> None:
    r = api.client.get("/api/v1/me")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_unknown_token_is_401(api: Api) -> None:
    r = api.client.get("/api/v1/me", headers={"Authorization": "Bearer gf_pat_nope"})
    assert r.status_code == 401


def test_bootstrap_admin(api: Api) -> None:
    r = api.client.get("/api/v1/me", headers=api.as_admin())
    assert r.status_code == 200
    assert (r.json()["username"], r.json()["role"]) == ("admin", "admin")


def _member_token(api: Api) -> str:
    engine = build_engine(api.settings.database_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.add(User(username="mallory", role="member"))
        r = api.client.post(
            "/api/v1/me/tokens", json={"name": "x"}, headers=api.as_admin()
        )  # admin can mint their own; a member needs their own user row:
        assert r.status_code == 201
        from grantflow.services.audit.trail import SYSTEM
        from grantflow.services.auth.tokens import create_personal_token

        with transaction(session_factory(engine)) as session:
            user = session.scalars(select(User).where(User.username == "mallory")).one()
            return create_personal_token(session, user, "cli", SYSTEM).plaintext
    finally:
        engine.dispose()


def test_member_is_403_on_admin_routes(api: Api) -> None:
    token = _member_token(api)
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/api/v1/me", headers=headers).status_code == 200
    r = api.client.get("/api/v1/users", headers=headers)
    assert r.status_code == 403
    assert "admin" in r.json()["error"]["message"]
    assert api.client.get("/api/v1/users", headers=api.as_admin()).status_code == 200


def test_tokens_are_stored_hashed_shown_once_and_revocable(api: Api) -> None:
    r = api.client.post("/api/v1/me/tokens", json={"name": "laptop"}, headers=api.as_admin())
    assert r.status_code == 201
    created = r.json()
    secret = created["token"]
    assert secret.startswith("gf_pat_")
    listed = api.client.get("/api/v1/me/tokens", headers=api.as_admin()).json()
    assert all("token" not in t for t in listed)
    engine = build_engine(api.settings.database_url)
    with transaction(session_factory(engine)) as session:
        row = session.get(ApiToken, created["id"])
        assert row is not None and row.token_hash == hash_token(secret)
        assert secret not in (row.token_hash, row.prefix)
    engine.dispose()
    own = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/me", headers=own).status_code == 200
    assert api.client.delete(f"/api/v1/me/tokens/{created['id']}", headers=own).status_code == 204
    assert api.client.get("/api/v1/me", headers=own).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": ""}, "name"), ({}, "name"), ({"name": "x", "expires_at": "soon"}, "expires_at")],
)
def test_validation_errors_are_422_naming_the_field(api: Api, body: dict, field: str) -> None:
    r = api.client.post("/api/v1/me/tokens", json=body, headers=api.as_admin())
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["field"] == field


def test_malformed_json_is_422_not_500(api: Api) -> None:
    r = api.client.post(
        "/api/v1/me/tokens",
        content=b"{not json",
        headers={**api.as_admin(), "Content-Type": "application/json"},
    )
    assert r.status_code == 422


def test_secrets_never_reach_the_logs(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    r = api.client.post("/api/v1/me/tokens", json={"name": "ci"}, headers=api.as_admin())
    secret = r.json()["token"]
    api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    api.client.get("/api/v1/users", headers={"Authorization": f"Bearer {secret}x"})
    captured = capsys.readouterr()
    logs = captured.out + captured.err
    assert secret not in logs
    assert api.admin_token not in logs


def test_the_documented_422_is_the_body_the_api_sends(api: Api) -> None:
    import jsonschema

    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's default shape is never sent
    response = spec["paths"]["/api/v1/connectors"]["post"]["responses"]["422"]
    ref = response["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ErrorResponse"

    r = api.client.post("/api/v1/connectors", json={"name": ""}, headers=api.as_admin())
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "name"
    resolver_spec = {**schemas["ErrorResponse"], "components": spec["components"]}
    jsonschema.validate(r.json(), resolver_spec)
