"""The browser's part of an OIDC sign-in, for tests: app -> provider -> app callback."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi.testclient import TestClient

from tests.auth.conftest import BASE, AuthApp
from tests.fixtures.api import ADMIN_TOKEN

SESSION_COOKIE = "grantflow_session"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def to_provider(app: AuthApp, browser: TestClient, next_path: str | None = None) -> str:
    params = {"next": next_path} if next_path else None
    response: httpx.Response = browser.get(
        "/auth/oidc/login", params=params, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def authorize(authorize_url: str) -> str:
    """The provider signs the configured identity in and redirects back: the callback URL."""
    response = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def callback(browser: TestClient, callback_url: str, **headers: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE
    response: httpx.Response = browser.get(
        f"{parts.path}?{parts.query}", follow_redirects=False, headers=headers
    )
    return response


def sign_in(app: AuthApp, browser: TestClient | None = None) -> httpx.Response:
    browser = browser or app.client
    return callback(browser, authorize(to_provider(app, browser)))


def audit_events(app: AuthApp, action: str) -> list[dict[str, Any]]:
    """The audit events of one action, oldest first (read by the bootstrap admin)."""
    response = app.client.get(
        "/api/v1/audit-events", params={"action": action, "limit": 500}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))
