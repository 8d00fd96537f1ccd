"""`grantflow login --browser` (the device authorization grant): the poll loop against scripted
answers, then a real CLI process, a real server and a person typing the code in a browser
session (httpx with the session cookie, exactly the requests a browser sends).
tests/security/test_device_login.py holds the server's side and a Chromium run."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from grantflow.cli import browser_login
from grantflow.demo.moto_server import free_loopback_port
from grantflow.services.auth import passwords
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User
from tests.fixtures.live import LiveServer

GRANTFLOW = str(Path(sys.executable).with_name("grantflow"))
PASSWORD = "correct horse battery staple"
CODE = re.compile(r"\b([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})\b")
STARTED = browser_login.Started("gf_dev_x", "BCDF-GHJK", expires_in=600, interval=5)


class Clock:
    """Fake time: `sleep` moves `now`; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _scripted(*answers: tuple[int, dict[str, Any]]) -> httpx.Client:
    """A client that gets ``answers`` in order, one a request."""
    queue = list(answers)

    def handle(_request: httpx.Request) -> httpx.Response:
        status, body = queue.pop(0)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://gf")


def _pending(code: str = "authorization_pending", **extra: object) -> tuple[int, dict[str, Any]]:
    return 400, {"error": {"code": code, "message": code, **extra}}


def test_polls_at_the_interval_and_slows_down_when_told() -> None:
    clock = Clock()
    http = _scripted(_pending(), _pending("slow_down", interval=10), _pending(),
                        (200, {"access_token": "gf_pat_secret"}))  # fmt: skip
    with closing(http):
        token = browser_login.poll(http, STARTED, 600, clock.sleep, lambda: clock.now)
    assert token == "gf_pat_secret"
    assert clock.sleeps == [5, 5, 10, 10]  # 5 s until told to slow down, 10 s after


def test_slow_down_adds_five_seconds_even_when_the_server_names_no_interval() -> None:
    clock = Clock()
    http = _scripted(_pending("slow_down"), _pending("slow_down"),
                        (200, {"access_token": "t"}))  # fmt: skip
    with closing(http):
        browser_login.poll(http, STARTED, 600, clock.sleep, lambda: clock.now)
    assert clock.sleeps == [5, 10, 15]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_pending("access_denied"), "denied in the browser"),
        (_pending("expired_token"), "the code expired"),
        (_pending("invalid_grant"), "the sign-in failed"),
        ((500, {"error": {"code": "internal", "message": "boom"}}), "HTTP 500: boom"),
    ],
)
def test_a_refused_sign_in_ends_the_command(
    answer: tuple[int, dict[str, Any]], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock()
    http = _scripted(answer)
    with closing(http), pytest.raises(typer.Exit) as ended:
        browser_login.poll(http, STARTED, 600, clock.sleep, lambda: clock.now)
    assert ended.value.exit_code == 1
    assert message in capsys.readouterr().err


def test_waiting_ends_at_the_deadline(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    http = _scripted(*[_pending()] * 3)
    with closing(http), pytest.raises(typer.Exit):
        browser_login.poll(http, STARTED, 12, clock.sleep, lambda: clock.now)
    assert clock.sleeps == [5, 5, 2]  # the last wait is cut to the deadline
    assert "nobody approved the sign-in within 12s" in capsys.readouterr().err


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("browser-login")
    port = free_loopback_port()
    live = LiveServer(url=f"http://127.0.0.1:{port}", port=port,
                      db_url=f"sqlite:///{tmp}/grantflow.db", tmp=tmp,
                      extra_env={"GRANTFLOW_COOKIE_SECURE": "false"})  # fmt: skip
    live.start()
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.add(User(username="carol", display_name="Carol", role="member", active=True,
                             password_hash=passwords.hash_password(PASSWORD)))  # fmt: skip
    finally:
        engine.dispose()
    try:
        yield live
    finally:
        live.stop_all()


def _browser(server: LiveServer) -> tuple[httpx.Client, str]:
    """A signed-in browser: its cookie jar and the session's CSRF token."""
    browser = httpx.Client(base_url=server.url, timeout=30)
    signed_in = browser.post("/auth/login", json={"username": "carol", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    return browser, str(signed_in.json()["csrf_token"])


def _login(server: LiveServer, home: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "COLUMNS": "1000"}
    env.pop("GRANTFLOW_TOKEN", None)
    argv = [GRANTFLOW, "login", "--url", server.url, "--browser", "--no-open", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip


def _page_and_code(proc: subprocess.Popen[str]) -> tuple[str, str]:
    assert proc.stderr is not None
    page = code = None
    deadline = time.monotonic() + 60
    while (page is None or code is None) and time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, f"the CLI ended early: {proc.wait(10)}"
        if found := re.search(r"(http://\S+/device)\b", line):
            page = found.group(1)
        if found := CODE.search(line):
            code = found.group(1)
    assert page and code
    return page, code


def _decide(browser: httpx.Client, csrf: str, code: str, decision: str) -> httpx.Response:
    shown = browser.post("/device", data={"user_code": code, "csrf_token": csrf})
    assert shown.status_code == 200 and code in shown.text, shown.text
    return browser.post(
        "/device/decision", data={"user_code": code, "decision": decision, "csrf_token": csrf}
    )


def test_typing_the_code_and_approving_signs_the_cli_in(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "config"
    proc = _login(server, home, "--timeout", "2m")
    try:
        page, code = _page_and_code(proc)
        assert page == f"{server.url}/device"  # the fixed page: no code, no secret in it
        browser, csrf = _browser(server)
        with closing(browser):
            approved = _decide(browser, csrf, code, "approve")
            assert approved.status_code == 200 and "is now signed in as" in approved.text
            out, err = proc.communicate(timeout=60)
            tokens = browser.get("/api/v1/me/tokens").json()  # minted at the CLI's next poll
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "signed in to" in out and "as carol (member)" in out
    stored = home / "grantflow" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    secret = re.search(r'"token": "([^"]+)"', stored.read_text())
    assert secret and secret.group(1).startswith("gf_pat_")
    (token,) = [t for t in tokens if t["name"].startswith("CLI: ")]
    assert token["expires_at"] and secret.group(1).startswith(token["prefix"])
    env = {**os.environ, "XDG_CONFIG_HOME": str(home)}
    env.pop("GRANTFLOW_TOKEN", None)
    env.pop("GRANTFLOW_URL", None)
    used = subprocess.run([GRANTFLOW, "requests", "list", "-o", "json"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert (used.returncode, used.stdout.strip()) == (0, "[]"), used.stderr


def test_a_denied_sign_in_ends_with_exit_1(server: LiveServer, tmp_path: Path) -> None:
    proc = _login(server, tmp_path / "config", "--timeout", "2m")
    try:
        _page, code = _page_and_code(proc)
        browser, csrf = _browser(server)
        with closing(browser):
            assert _decide(browser, csrf, code, "deny").status_code == 200
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "denied in the browser" in err
    assert not (tmp_path / "config" / "grantflow" / "credentials.json").exists()


def test_an_unapproved_sign_in_times_out_with_exit_1(server: LiveServer, tmp_path: Path) -> None:
    proc = _login(server, tmp_path / "config", "--timeout", "3s")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "nobody approved the sign-in within 3s" in err
    assert not (tmp_path / "config" / "grantflow" / "credentials.json").exists()
