"""Browser tests: Playwright driving Debian's Chromium against a real `grantflow serve`.

Only SQLite here (the pages do not care about the backend, and Chromium is the slow part).
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright
from sqlalchemy import select

from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.passwords import hash_password
from grantflow.services.directory import people as directory
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User
from tests.e2e.conftest import deployed  # noqa: F401 (the emulated org + live server)
from tests.fixtures.db import sqlite_clone

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=30_000)  # bounds a failure only: a loaded machine renders slowly


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only for browser tests (overrides the two-backend fixture): a clone of the
    session's migrated template, so the server starts without running the migrations."""
    path = tmp_path / "grantflow.db"
    sqlite_clone(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(autouse=True)
def _plain_http_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live server serves plain http on loopback: its session cookie cannot be Secure."""
    monkeypatch.setenv("GRANTFLOW_COOKIE_SECURE", "false")


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    yield browser
    browser.close()


@dataclass
class Tab:
    """A browser context (its own cookies) with one page, recording page errors."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_test_id("who")).to_be_visible()

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def assert_no_errors(self) -> None:
        assert self.errors == []


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[object]:
    contexts = []

    def make(base_url: str, viewport: dict[str, int] | None = None) -> Tab:
        context = browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
        contexts.append(context)
        tab = Tab(context.new_page(), base_url)

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error" and not re.search(r"favicon|Failed to load resource", msg.text):
                tab.errors.append(msg.text)

        tab.page.on("console", on_console)
        tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        context.on("request", lambda req: _only_local(req.url, base_url, tab))
        return tab

    yield make
    for context in contexts:
        context.close()


def _only_local(url: str, base_url: str, tab: Tab) -> None:
    """The pages must not reach anything but their own server (no CDN, no fonts)."""
    if not url.startswith((base_url, "data:", "blob:", "about:")):
        tab.errors.append(f"external request: {url}")


def set_password(
    db_url: str, username: str, password: str = PASSWORD, role: str | None = None
) -> str:
    """Give a user (a synced one has none) a password; create a local admin if missing."""
    engine = build_engine(db_url)
    try:
        with transaction(session_factory(engine)) as session:
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
            if user is None:
                user = directory.create_local_user(
                    session, username, f"{username}@example.com", username.title(), password,
                    role or "member", SYSTEM,
                )  # fmt: skip
            user.password_hash = hash_password(password)
            if role is not None:
                user.role = role
            return user.id
    finally:
        engine.dispose()
