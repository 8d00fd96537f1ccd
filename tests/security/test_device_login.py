"""CLI sign-in by the device authorization grant (RFC 8628), and the link attack it replaces.

Before: `grantflow login --browser` printed a link carrying a token hash and a label chosen by
whoever made the link; a signed-in person who opened someone else's link and clicked Approve
gave that someone a 30-day token. Now the CLI gets a device code and a user code from the
server, the person types the user code on the fixed page /device (nothing in a URL fills it
in), sees where and when the sign-in started, and approves; the first poll after that gets the
token, once. Over HTTP on both backends, plus Chromium typing the code for a real CLI process.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from grantflow.api.app import create_app
from grantflow.demo.moto_server import free_loopback_port
from grantflow.domain import device_login as dl
from grantflow.services.audit import trail as audit
from grantflow.services.auth import device_approval, passwords
from grantflow.services.errors import Forbidden
from grantflow.services.runtime.startup import prepare_database
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import ApiToken, AuditEvent, User
from grantflow.store.models_auth import DeviceAuthorization
from tests.fixtures.api import make_settings
from tests.fixtures.live import LiveServer

BASE = "http://testserver"
PASSWORD = "correct horse battery staple"
START, POLL = "/api/v1/auth/device", "/api/v1/auth/device/token"
CODE = re.compile(r"\b([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})\b")
CLI_AGENT = {"User-Agent": "grantflow-cli/test"}
_FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", lambda: _FAST)
    monkeypatch.setattr(passwords, "_dummy_hash", lambda: _FAST.hash("dummy"))


class App:
    """The app in process; each `browser` is its own cookie jar, the CLI sends no cookie."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.sessions: sessionmaker[Session] = client.app.state.ctx.sessions  # type: ignore[attr-defined]
        self._others: list[TestClient] = []

    def add_user(self, username: str, role: str = "member") -> str:
        with transaction(self.sessions) as session:
            user = User(username=username, display_name=username.title(), role=role,
                        password_hash=passwords.hash_password(PASSWORD))  # fmt: skip
            session.add(user)
            session.flush()
            return user.id

    def browser(self, username: str) -> tuple[TestClient, str]:
        """A signed-in browser and its session's CSRF token."""
        browser = TestClient(self.client.app, base_url=BASE)  # type: ignore[arg-type]
        self._others.append(browser)
        signed_in = browser.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        return browser, str(signed_in.json()["csrf_token"])

    def cli(self) -> TestClient:
        cli = TestClient(self.client.app, base_url=BASE, headers=CLI_AGENT)  # type: ignore[arg-type]
        self._others.append(cli)
        return cli

    def start(self, label: str = "ann@laptop") -> dict[str, Any]:
        started = self.cli().post(START, json={"label": label})
        assert started.status_code == 200, started.text
        return dict(started.json())

    def poll(self, device_code: str) -> httpx.Response:
        return self.cli().post(POLL, json={"device_code": device_code})

    def shift(self, **columns: timedelta) -> None:
        """Move a sign-in's times into the past, as if that much time had gone by."""
        with transaction(self.sessions) as session:
            for row in session.scalars(select(DeviceAuthorization)):
                for name, delta in columns.items():
                    if getattr(row, name) is not None:
                        setattr(row, name, getattr(row, name) - delta)

    def audit(self, prefix: str) -> list[tuple[str, str | None, dict[str, Any]]]:
        with transaction(self.sessions) as session:
            rows = session.scalars(
                select(AuditEvent).where(AuditEvent.action.startswith(prefix))
                .order_by(AuditEvent.seq)
            ).all()  # fmt: skip
            return [(r.action, r.actor_id, dict(r.data)) for r in rows]

    def close(self) -> None:
        for other in self._others:
            other.close()


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    settings = make_settings(db_url, cookie_secure=False, base_url=BASE)
    prepare_database(settings)
    with TestClient(create_app(settings, run_workers=False), base_url=BASE) as client:
        wrapped = App(client)
        yield wrapped
        wrapped.close()


def _type_code(browser: TestClient, csrf: str, code: str) -> httpx.Response:
    return browser.post("/device", data={"user_code": code, "csrf_token": csrf})


def _decide(browser: TestClient, csrf: str, code: str, decision: str) -> httpx.Response:
    return browser.post(
        "/device/decision", data={"user_code": code, "decision": decision, "csrf_token": csrf}
    )


def _error(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    return str(response.json()["error"]["code"])


def test_start_type_the_code_approve_poll_and_the_token_works(app: App) -> None:
    carol = app.add_user("carol")
    started = app.start("ann@laptop")
    assert CODE.fullmatch(started["user_code"])
    assert started["verification_uri"] == f"{BASE}/device"
    assert (started["expires_in"], started["interval"]) == (600, 5)
    assert started["device_code"].startswith("gf_dev_") and len(started["device_code"]) > 40
    assert set(started) == {
        "device_code",
        "user_code",
        "verification_uri",
        "expires_in",
        "interval",
    }  # no verification_uri_complete: no code in a URL
    assert _error(app.poll(started["device_code"])) == "authorization_pending"

    browser, csrf = app.browser("carol")
    page = browser.get("/device")
    assert page.status_code == 200 and 'name="user_code"' in page.text
    typed = started["user_code"].lower().replace("-", " ")  # typed loosely
    shown = _type_code(browser, csrf, typed)
    assert shown.status_code == 200, shown.text
    for fact in (started["user_code"], "ann@laptop", "testclient", "grantflow-cli/test",
                 "Approve", "Deny"):  # fmt: skip
        assert fact in shown.text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((\d+ min )?\d+ s ago\)", shown.text)
    approved = _decide(browser, csrf, started["user_code"], "approve")
    assert approved.status_code == 200 and "is now signed in as" in approved.text

    app.shift(last_polled_at=timedelta(seconds=5))
    got = app.poll(started["device_code"])
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "no-store"
    body = got.json()
    assert body["username"] == "carol" and body["expires_in"] == 30 * 86400
    me = app.cli().get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == carol
    (token,) = [t for t in browser.get("/api/v1/me/tokens").json() if t["name"] != "bootstrap"]
    assert token["name"] == "CLI: ann@laptop" and body["access_token"].startswith(token["prefix"])

    app.shift(last_polled_at=timedelta(seconds=5))
    assert _error(app.poll(started["device_code"])) == "invalid_grant"  # the token came once
    again = _type_code(browser, csrf, started["user_code"])
    assert again.status_code == 400 and "already used" in again.text
    actions = [(a, actor) for a, actor, _ in app.audit("device.")]
    assert actions[:2] == [("device.requested", None), ("device.approved", carol)]
    requested = app.audit("device.requested")[0][2]
    assert requested == {"label": "ann@laptop", "client_ip": "testclient",
                         "user_agent": "grantflow-cli/test"}  # fmt: skip
    assert [(a, actor) for a, actor, _ in app.audit("token.created")] == [("token.created", carol)]


def test_a_denied_sign_in_gets_no_token(app: App) -> None:
    carol = app.add_user("carol")
    started = app.start()
    browser, csrf = app.browser("carol")
    denied = _decide(browser, csrf, started["user_code"], "deny")
    assert denied.status_code == 200 and "Denied" in denied.text
    assert _error(app.poll(started["device_code"])) == "access_denied"
    assert ("device.denied", carol) in [(a, actor) for a, actor, _ in app.audit("device.")]
    assert app.audit("token.created") == []


def test_codes_expire_after_ten_minutes(app: App) -> None:
    app.add_user("carol")
    started = app.start()
    app.shift(expires_at=dl.EXPIRES_IN, created_at=dl.EXPIRES_IN)
    browser, csrf = app.browser("carol")
    typed = _type_code(browser, csrf, started["user_code"])
    assert typed.status_code == 400 and "expired" in typed.text
    refused = _decide(browser, csrf, started["user_code"], "approve")
    assert refused.status_code == 400
    assert _error(app.poll(started["device_code"])) == "expired_token"


def test_an_approval_that_comes_too_late_yields_nothing(app: App) -> None:
    app.add_user("carol")
    started = app.start()
    browser, csrf = app.browser("carol")
    assert _decide(browser, csrf, started["user_code"], "approve").status_code == 200
    app.shift(expires_at=dl.EXPIRES_IN)
    assert _error(app.poll(started["device_code"])) == "expired_token"
    assert app.audit("token.created") == []


def test_two_polls_after_one_approval_get_one_token(app: App) -> None:
    app.add_user("carol")
    started = app.start()
    browser, csrf = app.browser("carol")
    assert _decide(browser, csrf, started["user_code"], "approve").status_code == 200
    first = app.poll(started["device_code"])
    app.shift(last_polled_at=timedelta(seconds=60))
    second = app.poll(started["device_code"])
    assert (first.status_code, _error(second)) == (200, "invalid_grant")
    with transaction(app.sessions) as session:
        row = session.scalars(select(DeviceAuthorization)).one()
        assert (row.status, row.token_id) == ("used", session.scalars(select(ApiToken.id).where(
            ApiToken.name == "CLI: ann@laptop")).one())  # fmt: skip


def test_polling_faster_than_the_interval_is_slowed_down(app: App) -> None:
    started = app.start()
    with transaction(app.sessions) as session:  # an interval no loaded machine can undercut
        session.execute(update(DeviceAuthorization).values(interval_seconds=30))
    assert _error(app.poll(started["device_code"])) == "authorization_pending"
    fast = app.poll(started["device_code"])
    assert _error(fast) == "slow_down" and fast.json()["error"]["interval"] == 35
    app.shift(last_polled_at=timedelta(seconds=30))
    still = app.poll(started["device_code"])  # 35 s now, not 30; and 5 more for trying
    assert _error(still) == "slow_down" and still.json()["error"]["interval"] == 40
    app.shift(last_polled_at=timedelta(seconds=40))
    assert _error(app.poll(started["device_code"])) == "authorization_pending"


def test_wrong_codes_are_limited_per_person_counted_and_audited(app: App) -> None:
    carol = app.add_user("carol")
    app.add_user("dave")
    started = app.start()
    browser, csrf = app.browser("carol")
    malformed = _type_code(browser, csrf, "not a code")
    assert malformed.status_code == 400 and "8 letters" in malformed.text  # not counted
    wrong = [
        c
        for c in ("BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF", "GGGG-GGGG", "HHHH-HHHH")
        if c != started["user_code"]
    ][: dl.WRONG_CODE_LIMIT]
    for attempt in wrong:
        answer = _type_code(browser, csrf, attempt)
        assert answer.status_code == 400 and "no sign-in waits for this code" in answer.text
    limited = _type_code(browser, csrf, started["user_code"])  # even the right one, now
    assert limited.status_code == 429 and "too many wrong codes" in limited.text
    assert 0 < int(limited.headers["retry-after"]) <= dl.WRONG_CODE_WINDOW.total_seconds() + 1
    assert _decide(browser, csrf, started["user_code"], "approve").status_code == 429
    rejected = app.audit("device.user_code_rejected")
    assert [(actor, d["attempt"], d["limited"]) for _, actor, d in rejected] == [
        (carol, n, n == dl.WRONG_CODE_LIMIT) for n in range(1, dl.WRONG_CODE_LIMIT + 1)
    ]
    other, other_csrf = app.browser("dave")  # the limit is carol's, not the code's
    assert _type_code(other, other_csrf, started["user_code"]).status_code == 200


def test_guessing_a_code_is_hopeless() -> None:
    codes = {dl.new_codes().user_code for _ in range(2000)}
    assert len(codes) == 2000 and all(set(c) <= set(dl.USER_CODE_ALPHABET) for c in codes)
    space = len(dl.USER_CODE_ALPHABET) ** dl.USER_CODE_LENGTH
    guesses_per_day = dl.WRONG_CODE_LIMIT * (timedelta(days=1) / dl.WRONG_CODE_WINDOW)
    assert space > 2.5e10 and guesses_per_day / space < 1e-7  # per live code, per account


def test_starting_sign_ins_is_limited_per_address(app: App) -> None:
    for _ in range(dl.STARTS_PER_IP):
        app.start()
    refused = app.cli().post(START, json={"label": "one too many"})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["retry-after"]) <= dl.STARTS_WINDOW.total_seconds() + 1
    assert len(app.audit("device.requested")) == dl.STARTS_PER_IP
    app.shift(created_at=dl.STARTS_WINDOW)
    app.start()


def test_the_page_needs_a_session_and_its_csrf_token(app: App) -> None:
    app.add_user("carol")
    started = app.start()
    anonymous = app.cli().get("/device", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/device"
    browser, _csrf = app.browser("carol")
    for path, data in (("/device", {"user_code": started["user_code"]}),
                       ("/device/decision", {"user_code": started["user_code"],
                                             "decision": "approve"})):  # fmt: skip
        assert browser.post(path, data=data).status_code == 403
        assert browser.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
    token = _personal_token(app, "carol")
    bearer = app.cli().post(
        "/device/decision",
        headers={"Authorization": f"Bearer {token}"},
        data={"user_code": started["user_code"], "decision": "approve"},
    )
    assert bearer.status_code == 403  # a script holding a token cannot approve
    assert _error(app.poll(started["device_code"])) == "authorization_pending"


def test_a_deactivated_user_cannot_approve_and_an_approval_dies_with_them(app: App) -> None:
    carol = app.add_user("carol")
    first, second = app.start("first"), app.start("second")
    browser, csrf = app.browser("carol")
    assert _decide(browser, csrf, first["user_code"], "approve").status_code == 200
    with transaction(app.sessions) as session:
        user = session.get(User, carol)
        assert user is not None
        user.active = False
    assert _error(app.poll(first["device_code"])) == "access_denied"
    assert app.audit("token.created") == []
    assert [d for a, _, d in app.audit("device.refused")] == [
        {"reason": "the approving user is deactivated"}]  # fmt: skip
    assert _decide(browser, csrf, second["user_code"], "approve").status_code in (401, 403)
    actor = audit.Actor("user", carol, "web")
    with pytest.raises(Forbidden, match="deactivated"):
        device_approval.decide(app.sessions, carol, second["user_code"], True, actor)
    assert _error(app.poll(second["device_code"])) == "authorization_pending"


def test_the_old_attack_a_link_made_by_someone_else_yields_nothing(app: App) -> None:
    """The attacker makes a secret, puts its hash in a sign-in link and sends it to carol,
    who is signed in. The old route stored that hash as carol's token on one click."""
    app.add_user("carol")
    secret = f"gf_pat_{secrets.token_urlsafe(32)}"
    link = {"h": hashlib.sha256(secret.encode()).hexdigest(), "p": secret[:12],
            "n": "carol's laptop", "t": str(int(time.time()))}  # fmt: skip
    browser, csrf = app.browser("carol")
    assert browser.get("/cli-login", params=link, follow_redirects=False).status_code == 404
    assert browser.post("/cli-login", data={**link, "csrf_token": csrf}).status_code == 404
    stolen = app.cli().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert stolen.status_code == 401

    # Today's version of the lure: the attacker starts a sign-in and sends carol a link
    # to the page with the code in it. The page reads nothing from its URL and decides
    # nothing without the code typed and a CSRF token, so the attacker's poll stays pending.
    attacker = app.start("carol's laptop")
    for lure in (f"/device?user_code={attacker['user_code']}",
                 f"/device?code={attacker['user_code']}"):  # fmt: skip
        page = browser.get(lure)
        assert page.status_code == 200 and attacker["user_code"] not in page.text
    cross_site = browser.post(
        "/device/decision", data={"user_code": attacker["user_code"], "decision": "approve"}
    )
    assert cross_site.status_code == 403
    assert _error(app.poll(attacker["device_code"])) == "authorization_pending"
    assert app.audit("token.created") == []


def _personal_token(app: App, username: str) -> str:
    browser, csrf = app.browser(username)
    made = browser.post("/api/v1/me/tokens", json={"name": "script"},
                        headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


# -- Chromium types the code a real `grantflow login --browser` shows ---------------------

CHROMIUM = "/usr/bin/chromium"
GRANTFLOW = str(Path(sys.executable).with_name("grantflow"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    port = free_loopback_port()
    server = LiveServer(url=f"http://127.0.0.1:{port}", port=port,
                        db_url=f"sqlite:///{tmp_path}/grantflow.db", tmp=tmp_path,
                        extra_env={"GRANTFLOW_COOKIE_SECURE": "false",
                                   "GRANTFLOW_BASE_URL": f"http://127.0.0.1:{port}"})  # fmt: skip
    server.start()
    engine = build_engine(server.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.add(User(username="carol", display_name="Carol", role="member",
                             password_hash=passwords.hash_password(PASSWORD)))  # fmt: skip
    finally:
        engine.dispose()
    try:
        yield server
    finally:
        server.stop_all()


def _read_code(proc: subprocess.Popen[str]) -> tuple[str, list[str]]:
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, f"the CLI ended early ({proc.wait(10)}): {''.join(lines)}"
        lines.append(line)
        if found := CODE.search(line):
            return found.group(1), lines
    raise AssertionError(f"no code from the CLI: {''.join(lines)}")


@pytest.mark.slow
def test_a_person_types_the_code_in_chromium_and_the_cli_is_signed_in(
    live: LiveServer, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make test does)")
    from playwright.sync_api import expect, sync_playwright

    home = tmp_path / "config"
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "COLUMNS": "1000"}
    env.pop("GRANTFLOW_TOKEN", None)
    argv = [GRANTFLOW, "login", "--url", live.url, "--browser", "--no-open", "--timeout", "3m"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    visited: list[str] = []
    try:
        code, printed = _read_code(proc)
        assert f"{live.url}/device" in "".join(printed)
        assert not any(code in line and "http" in line for line in printed)  # never in a URL
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            page = chromium.new_context().new_page()
            page.on("request", lambda request: visited.append(request.url))
            page.goto(f"{live.url}/device")
            page.get_by_label("Username").fill("carol")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_label("Code from the terminal").fill(code.lower())
            page.get_by_role("button", name="Continue").click()
            expect(page.locator("#device-code")).to_have_text(code, timeout=15_000)
            expect(page.locator("#device-ip")).to_contain_text("127.0.0.1")
            expect(page.locator("#device-agent")).to_contain_text("grantflow-cli/")
            expect(page.locator("#device-label")).to_contain_text("@")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "device-sign-in-confirm.png"), full_page=True)
            page.get_by_role("button", name="Approve").click()
            expect(page.locator("#device-done")).to_contain_text("is now signed in as carol",
                                                                 timeout=15_000)  # fmt: skip
            chromium.close()
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "as carol (member)" in out
    stored = home / "grantflow" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    secret = re.search(r'"token": "([^"]+)"', stored.read_text())
    assert secret and secret.group(1).startswith("gf_pat_")
    assert not [url for url in visited if code in url.upper() or secret.group(1) in url]
