"""`grantflow config check` reports every problem of a configuration, with the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD_TOKEN = "gf_pat_Xr4vQm9LtZ2wK7bN1pY5sD8fH3jC6gE0uA"


def _check(cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GRANTFLOW_")}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "grantflow.cli.main", "config", "check"],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _upgraded(tmp_path: Path) -> str:
    db = f"sqlite:///{tmp_path}/gf.db"
    subprocess.run(
        [sys.executable, "-m", "grantflow.cli.main", "db", "upgrade"],
        check=True,
        capture_output=True,
        env={**os.environ, "GRANTFLOW_DATABASE_URL": db},
    )
    return db


def _lines(result: subprocess.CompletedProcess[str], setting: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if f" {setting}:" in line]


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
    for setting in ("GRANTFLOW_OIDC_CLIENT_ID", "GRANTFLOW_TEMPLATE_URL", "GRANTFLOW_ADMIN_TOKEN",
                    "GRANTFLOW_COOKIE_SECURE", "GRANTFLOW_DATABASE_URL"):  # fmt: skip
        assert setting in out, out
    assert "3 error(s)" in out and "short" not in out.replace("shorter", "")


def test_invalid_values_are_all_named() -> None:
    result = _check(GRANTFLOW_PORT="http", GRANTFLOW_LOG_LEVEL="loud")
    assert result.returncode == 1
    assert "GRANTFLOW_PORT" in result.stdout and "GRANTFLOW_LOG_LEVEL" in result.stdout


def test_a_good_configuration_passes(tmp_path: Path) -> None:
    result = _check(GRANTFLOW_DATABASE_URL=_upgraded(tmp_path), GRANTFLOW_ADMIN_TOKEN=GOOD_TOKEN)
    assert result.returncode == 0, result.stdout
    assert "reachable, schema at" in result.stdout


def test_check_creates_no_database(tmp_path: Path) -> None:
    """The default URL is ./grantflow.db: checking it must not make it."""
    result = _check(cwd=tmp_path)
    assert list(tmp_path.iterdir()) == [], result.stdout
    (line,) = _lines(result, "GRANTFLOW_DATABASE_URL")[-1:]
    assert "does not exist yet" in line, result.stdout


def test_weakened_single_sign_on_and_a_guessable_admin_token_are_flagged(tmp_path: Path) -> None:
    db = _upgraded(tmp_path)
    result = _check(
        GRANTFLOW_DATABASE_URL=db,
        GRANTFLOW_OIDC_ISSUER="https://idp.example.com",
        GRANTFLOW_OIDC_CLIENT_ID="grantflow",
        GRANTFLOW_OIDC_CLIENT_SECRET="s3cret-from-the-idp",
        GRANTFLOW_OIDC_REQUIRE_VERIFIED_EMAIL="false",
        GRANTFLOW_OIDC_AUTO_CREATE="true",
        GRANTFLOW_ADMIN_TOKEN="Grantflow-Admin-Token-2024-Grantflow-Admin",
    )
    assert result.returncode == 1, result.stdout
    assert [line.split()[0] for line in _lines(result, "GRANTFLOW_ADMIN_TOKEN")] == ["error"]
    for setting in ("GRANTFLOW_OIDC_REQUIRE_VERIFIED_EMAIL", "GRANTFLOW_OIDC_AUTO_CREATE"):
        assert [line.split()[0] for line in _lines(result, setting)] == ["warning"], setting
    assert "1 error(s)" in result.stdout
    for weak in ("a" * 40, "abcdefghijklmnopqrstuvwxyz0123456789", "token-" * 6):
        weak_result = _check(GRANTFLOW_DATABASE_URL=db, GRANTFLOW_ADMIN_TOKEN=weak)
        assert weak_result.returncode == 1, (weak, weak_result.stdout)


def test_a_client_without_a_secret_is_what_serve_runs(tmp_path: Path) -> None:
    """`serve` runs a public client (PKCE, no secret) and refuses an issuer without a client
    id; the check says the same."""
    from grantflow.services.auth.oidc_client import OidcConfig
    from grantflow.settings import Settings

    public = {"GRANTFLOW_OIDC_ISSUER": "https://idp.example.com"}
    with_id = {**public, "GRANTFLOW_OIDC_CLIENT_ID": "grantflow"}
    db = _upgraded(tmp_path)
    result = _check(GRANTFLOW_DATABASE_URL=db, GRANTFLOW_ADMIN_TOKEN=GOOD_TOKEN, **with_id)
    assert result.returncode == 0, result.stdout
    assert [line.split()[0] for line in _lines(result, "GRANTFLOW_OIDC_CLIENT_SECRET")] == ["ok"]
    config = OidcConfig.from_settings(Settings(oidc_issuer=public["GRANTFLOW_OIDC_ISSUER"],
                                               oidc_client_id="grantflow"))  # fmt: skip
    assert config is not None and config.client_secret is None

    missing = _check(GRANTFLOW_DATABASE_URL=db, GRANTFLOW_ADMIN_TOKEN=GOOD_TOKEN, **public)
    assert missing.returncode == 1
    assert "GRANTFLOW_OIDC_CLIENT_ID is required" in missing.stdout
    with pytest.raises(ValueError, match="GRANTFLOW_OIDC_CLIENT_ID is required"):
        OidcConfig.from_settings(Settings(oidc_issuer=public["GRANTFLOW_OIDC_ISSUER"]))
