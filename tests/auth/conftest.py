"""The app with web sign-in configured, local users with passwords, a live OIDC provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from grantflow.api.app import create_app
from grantflow.services.auth import passwords
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import Settings
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcTestProvider, serve_provider
from tests.fixtures.api import make_settings

BASE = "http://testserver"
PASSWORD = "correct horse battery staple"


@dataclass
class AuthApp:
    client: TestClient
    settings: Settings

    def new_client(self, **kwargs: object) -> TestClient:
        """Another browser: its own cookie jar, same app."""
        return TestClient(self.client.app, **kwargs)  # type: ignore[arg-type]

    def add_user(
        self,
        username: str,
        *,
        password: str | None = PASSWORD,
        email: str | None = None,
        role: str = "member",
        active: bool = True,
    ) -> str:
        engine = build_engine(self.settings.database_url)
        try:
            with transaction(session_factory(engine)) as session:
                user = User(
                    username=username,
                    email=email,
                    display_name=username.title(),
                    role=role,
                    active=active,
                    password_hash=passwords.hash_password(password) if password else None,
                )
                session.add(user)
                session.flush()
                return user.id
        finally:
            engine.dispose()

    def set_active(self, user_id: str, active: bool) -> None:
        engine = build_engine(self.settings.database_url)
        try:
            with transaction(session_factory(engine)) as session:
                user = session.get(User, user_id)
                assert user is not None
                user.active = active
        finally:
            engine.dispose()

    def login(
        self, username: str, password: str = PASSWORD, client: TestClient | None = None
    ) -> httpx.Response:
        response: httpx.Response = (client or self.client).post(
            "/auth/login", json={"username": username, "password": password}
        )
        return response


AppFactory = Callable[..., AuthApp]

# argon2 at its production cost takes about a second here; tests check behaviour, not cost.
_FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_FAST_DUMMY = _FAST.hash("dummy")


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", lambda: _FAST)
    monkeypatch.setattr(passwords, "_dummy_hash", lambda: _FAST_DUMMY)


@pytest.fixture
def make_auth_app(db_url: str) -> Iterator[AppFactory]:
    """Build the app with settings overrides (plain-HTTP cookies unless told otherwise)."""
    clients: list[TestClient] = []

    def build(**overrides: object) -> AuthApp:
        values: dict[str, object] = {"cookie_secure": False, "base_url": BASE}
        values.update(overrides)
        settings = make_settings(db_url, **values)
        prepare_database(settings)
        client = TestClient(create_app(settings, run_workers=False), base_url=BASE)
        client.__enter__()
        clients.append(client)
        return AuthApp(client=client, settings=settings)

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def auth_app(make_auth_app: AppFactory) -> AuthApp:
    return make_auth_app()


@pytest.fixture
def oidc_provider() -> Iterator[OidcTestProvider]:
    with serve_provider() as provider:
        provider.redirect_uris = [f"{BASE}/auth/oidc/callback"]
        yield provider


@pytest.fixture
def oidc_app(make_auth_app: AppFactory, oidc_provider: OidcTestProvider) -> AuthApp:
    return make_auth_app(
        oidc_issuer=oidc_provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
