"""`grantflow config check` reports every problem of a configuration, with the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GRANTFLOW_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "grantflow.cli.main", "config", "check"],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        check=False,
    )


def test_every_problem_is_reported(tmp_path: Path) -> None:
    result = _check(
        GRANTFLOW_DATABASE_URL=f"sqlite:///{tmp_path}/gf.db",
        GRANTFLOW_OIDC_ISSUER="https://idp.example.com",
        GRANTFLOW_TEMPLATE_URL="http://bucket.example.com/t.yaml",
        GRANTFLOW_ADMIN_TOKEN="short",
        GRANTFLOW_BASE_URL="https://grantflow.example.com",
        GRANTFLOW_COOKIE_SECURE="false",
    )
    assert result.returncode == 1
    out = result.stdout
    for setting in ("GRANTFLOW_OIDC_*", "GRANTFLOW_TEMPLATE_URL", "GRANTFLOW_ADMIN_TOKEN",
                    "GRANTFLOW_COOKIE_SECURE", "GRANTFLOW_DATABASE_URL"):  # fmt: skip
        assert setting in out, out
    assert "3 error(s)" in out and "short" not in out.replace("shorter", "")


def test_invalid_values_are_all_named() -> None:
    result = _check(GRANTFLOW_PORT="http", GRANTFLOW_LOG_LEVEL="loud")
    assert result.returncode == 1
    assert "GRANTFLOW_PORT" in result.stdout and "GRANTFLOW_LOG_LEVEL" in result.stdout


def test_a_good_configuration_passes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/gf.db"
    subprocess.run(
        [sys.executable, "-m", "grantflow.cli.main", "db", "upgrade"],
        check=True,
        capture_output=True,
        env={**os.environ, "GRANTFLOW_DATABASE_URL": db},
    )
    result = _check(GRANTFLOW_DATABASE_URL=db)
    assert result.returncode == 0, result.stdout
    assert "reachable, schema at" in result.stdout
