"""The `grantflow` command as a user runs it: help, version, and one-line errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from grantflow import __version__
from grantflow.cli.main import app

runner = CliRunner()


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "grantflow.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "db", "version", "connector", "cloudformation", "audit"):
        assert command in result.output
    for sub in (["serve", "--help"], ["db", "upgrade", "--help"], ["connector", "run", "--help"]):
        assert runner.invoke(app, sub).exit_code == 0


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.output.strip() == __version__


def test_cloudformation_prints_the_template() -> None:
    result = runner.invoke(app, ["cloudformation", "aws-organization"])
    assert result.exit_code == 0
    template = yaml.safe_load(result.output)
    assert "ManagementAccountRoleArnOutput" in template["Outputs"]
    assert runner.invoke(app, ["cloudformation", "gcp"]).exit_code == 2


def test_db_upgrade_creates_schema_and_prints_bootstrap_token_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"GRANTFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/gf.db"}
    first = _run("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "gf_pat_" in first.stdout
    second = _run("db", "upgrade", env=env)
    assert second.returncode == 0
    assert "gf_pat_" not in second.stdout


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_wrong_database_url_is_one_line() -> None:
    line = _one_line_error(_run("db", "upgrade", env={"GRANTFLOW_DATABASE_URL": "mysql://x/y"}))
    assert "GRANTFLOW_DATABASE_URL" in line and "unsupported" in line
    line = _one_line_error(_run("db", "upgrade", env={"GRANTFLOW_DATABASE_URL": "::nonsense"}))
    assert "GRANTFLOW_DATABASE_URL" in line


def test_unreachable_database_is_one_line() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"
    line = _one_line_error(_run("serve", env={"GRANTFLOW_DATABASE_URL": url}))
    assert "cannot reach database" in line and "GRANTFLOW_DATABASE_URL" in line


def test_port_in_use_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"GRANTFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/gf.db"}
        line = _one_line_error(_run("serve", "--port", str(port), env=env))
    assert f"127.0.0.1:{port}" in line and "--port" in line


def test_bad_setting_value_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"GRANTFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/gf.db", "GRANTFLOW_PORT": "http"}
    line = _one_line_error(_run("serve", env=env))
    assert "GRANTFLOW_PORT" in line
