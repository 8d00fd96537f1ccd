"""`grantflow login` against a running server: the token is checked, kept 0600, used, forgotten."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.live import LiveServer


def _cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "XDG_CONFIG_HOME": str(home), **env}
    full.pop("GRANTFLOW_TOKEN", None)
    full.pop("GRANTFLOW_URL", None)
    argv = [sys.executable, "-m", "grantflow.cli.main", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=120, check=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_login_keeps_a_private_token_and_logout_forgets_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    home = tmp_path / "config"
    bad = _cli("login", "--url", live_server.url, "--token", "gf_pat_wrong", home=home)
    assert bad.returncode == 1 and "401" in bad.stderr
    ok = _cli("login", "--url", live_server.url, "--token", live_server.admin_token, home=home)
    assert ok.returncode == 0, ok.stderr
    stored = home / "grantflow" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    listed = _cli("integrations", "list", home=home)
    assert listed.returncode == 0, listed.stderr
    assert live_server.admin_token not in listed.stdout + listed.stderr
    assert _cli("logout", home=home).returncode == 0
    assert not stored.exists()
    after = _cli("integrations", "list", home=home)
    assert after.returncode == 2 and "not signed in" in after.stderr
