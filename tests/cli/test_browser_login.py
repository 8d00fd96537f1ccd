"""`grantflow login --browser`: a real CLI process, a real server, a person approving in a
browser session (httpx with the session cookie, exactly the requests a browser sends)."""

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

import httpx
import pytest

from grantflow.demo.moto_server import free_loopback_port
from grantflow.domain.cli_login import (
    TOKEN_PREFIX,
    LinkError,
    clean_label,
    confirmation_code,
    parse_link,
)
from grantflow.services import passwords
from grantflow.services.tokens import PERSONAL_PREFIX
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User
from tests.fixtures.live import LiveServer

GRANTFLOW = str(Path(sys.executable).with_name("grantflow"))
PASSWORD = "correct horse battery staple"
HASH = "ab12cd34" + "0" * 56
NOW = 1_800_000_000.0


def test_the_prefix_is_the_personal_tokens_prefix() -> None:
    assert TOKEN_PREFIX == PERSONAL_PREFIX


def test_a_link_reads_back_and_its_code_comes_from_the_hash() -> None:
    link = parse_link(HASH, "gf_pat_Ab-1", "ann@laptop", str(int(NOW) - 30), NOW)
    assert (link.token_hash, link.prefix, link.label) == (HASH, "gf_pat_Ab-1", "ann@laptop")
    assert parse_link(**dict(zip("hpnt", link.query().values(), strict=True)), now=NOW) == link
    assert confirmation_code(HASH) == "AB12-CD34"


@pytest.mark.parametrize(
    ("h", "p", "t", "problem"),
    [
        (HASH[:-1], "gf_pat_Ab1", str(int(NOW)), "incomplete or damaged"),
        (HASH.upper(), "gf_pat_Ab1", str(int(NOW)), "incomplete or damaged"),
        (HASH, "gf_scim_Ab1", str(int(NOW)), "incomplete or damaged"),
        (HASH, "gf_pat_Ab1", "yesterday", "no valid start time"),
        (HASH, "gf_pat_Ab1", str(int(NOW) - 601), "expired"),
        (HASH, "gf_pat_Ab1", str(int(NOW) + 120), "in the future"),
    ],
)
def test_bad_links_say_what_is_wrong(h: str, p: str, t: str, problem: str) -> None:
    with pytest.raises(LinkError, match=problem):
        parse_link(h, p, "laptop", t, NOW)


def test_labels_are_printable_and_short() -> None:
    assert clean_label("ann@\x1b[31mlaptop\n") == "ann@ [31mlaptop"
    assert clean_label("") == "unnamed machine"
    assert len(clean_label("x" * 500)) == 64


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


def _link_and_code(proc: subprocess.Popen[str]) -> tuple[str, str]:
    assert proc.stderr is not None
    link = code = None
    deadline = time.monotonic() + 60
    while (link is None or code is None) and time.monotonic() < deadline:
        line = proc.stderr.readline()
        assert line, f"the CLI ended early: {proc.wait(10)}"
        if "/cli-login?" in line:
            link = line.strip()
        if found := re.search(r"code ([0-9A-F]{4}-[0-9A-F]{4})", line):
            code = found.group(1)
    assert link and code
    return link, code


def _form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


def test_approving_in_the_browser_signs_the_cli_in(server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "config"
    proc = _login(server, home, "--timeout", "2m")
    try:
        link, code = _link_and_code(proc)
        path = link.removeprefix(server.url)
        with httpx.Client(base_url=server.url) as anonymous:
            away = anonymous.get(path)
        assert away.status_code == 303 and away.headers["location"].startswith("/login?next=")
        browser, csrf = _browser(server)
        with closing(browser):
            page = browser.get(path)
            assert page.status_code == 200, page.text
            assert code in page.text and "carol" in page.text
            form = _form_fields(page.text)
            assert form["csrf_token"] == csrf and form["h"] in path
            forged = browser.post("/cli-login", data={**form, "csrf_token": "wrong"})
            assert forged.status_code == 403
            approved = browser.post("/cli-login", data=form)
            assert approved.status_code == 200, approved.text
            assert "is now signed in as" in approved.text
            again = browser.post("/cli-login", data=form)
            assert again.status_code == 409 and "already used" in again.text
            tokens = browser.get("/api/v1/me/tokens").json()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "signed in to" in out and "as carol (member)" in out
    stored = home / "grantflow" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    secret = re.search(r'"token": "([^"]+)"', stored.read_text())
    assert secret and secret.group(1).startswith("gf_pat_")
    assert secret.group(1) not in link  # only the hash ever left the terminal
    (token,) = [t for t in tokens if t["name"].startswith("CLI: ")]
    assert token["expires_at"] and secret.group(1).startswith(token["prefix"])
    env = {**os.environ, "XDG_CONFIG_HOME": str(home)}
    env.pop("GRANTFLOW_TOKEN", None)
    env.pop("GRANTFLOW_URL", None)
    used = subprocess.run([GRANTFLOW, "requests", "list", "-o", "json"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert (used.returncode, used.stdout.strip()) == (0, "[]"), used.stderr


def test_an_unapproved_sign_in_times_out_with_exit_1(server: LiveServer, tmp_path: Path) -> None:
    proc = _login(server, tmp_path / "config", "--timeout", "3s")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "nobody approved the sign-in within 3s" in err
    assert not (tmp_path / "config" / "grantflow" / "credentials.json").exists()


def test_a_stale_or_damaged_link_is_refused_on_the_page(server: LiveServer) -> None:
    browser, csrf = _browser(server)
    old = {"h": HASH, "p": "gf_pat_Ab1", "n": "laptop", "t": str(int(time.time()) - 3600)}
    with closing(browser):
        before = browser.get("/api/v1/me/tokens").json()
        stale = browser.get("/cli-login", params=old)
        assert stale.status_code == 400 and "expired" in stale.text
        posted = browser.post("/cli-login", data={**old, "csrf_token": csrf})
        assert posted.status_code == 400 and "expired" in posted.text
        damaged = browser.get(
            "/cli-login", params={**old, "h": "nothex", "t": str(int(time.time()))}
        )
        assert damaged.status_code == 400 and "damaged" in damaged.text
        assert browser.get("/api/v1/me/tokens").json() == before
