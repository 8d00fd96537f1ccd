"""docs/configuration.md is generated from the code, and kept that way."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field
from typer.testing import CliRunner

from grantflow.cli import config_reference
from grantflow.cli.config_reference import REGENERATE, reference
from grantflow.cli.main import app
from grantflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"


def test_docs_configuration_md_is_the_generated_reference() -> None:
    assert DOC.read_text(encoding="utf-8") == reference(), (
        f"docs/configuration.md is out of date with the settings: run `{REGENERATE}` "
        "(a new setting needs a Field(description=...))"
    )


def test_every_setting_and_connector_option_is_documented() -> None:
    text = reference()
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name} has no description"
        assert f"| `GRANTFLOW_{name.upper()}` |" in text
    rows = {row[1]: row for row in config_reference.connector_rows()}
    assert rows["`--token`"][0] == "`GRANTFLOW_CONNECTOR_TOKEN`"
    assert rows["`--token`"][2] == "required"
    assert rows["`--concurrency`"][2] == "`4`"
    assert "`--install-completion`" not in rows
    assert all(row[3] for row in rows.values()), "every connector option needs help text"


def test_rows_show_type_bounds_and_defaults() -> None:
    rows = {row[0]: row for row in config_reference.settings_rows()}
    assert rows["`GRANTFLOW_PORT`"][1:3] == ("integer (≥ 1, ≤ 65535)", "`8000`")
    assert rows["`GRANTFLOW_ADMIN_TOKEN`"][1:3] == ("secret", "unset")
    assert rows["`GRANTFLOW_COOKIE_SECURE`"][1:3] == ("boolean", "`true`")
    assert rows["`GRANTFLOW_LOG_FORMAT`"][1:3] == ("json \\| console", "`json`")
    assert rows["`GRANTFLOW_TEMPLATE_URL`"][1:3] == ("string", "unset")
    assert rows["`GRANTFLOW_FORWARDED_ALLOW_IPS`"][1:3] == ("string (not empty)", "`127.0.0.1`")


def test_a_setting_without_description_fails_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class WithUndocumented(Settings):
        shiny_new_knob: int = Field(default=3)

    monkeypatch.setattr(config_reference, "Settings", WithUndocumented)
    with pytest.raises(ValueError, match="shiny_new_knob"):
        reference()


def test_the_cli_prints_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["config", "reference"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == reference()

    target = tmp_path / "configuration.md"
    stale = runner.invoke(app, ["config", "reference", "--check", "--path", str(target)])
    assert stale.exit_code == 1
    assert REGENERATE in stale.output

    written = runner.invoke(app, ["config", "reference", "--write", "--path", str(target)])
    assert written.exit_code == 0, written.output
    assert target.read_text(encoding="utf-8") == reference()
    fresh = runner.invoke(app, ["config", "reference", "--check", "--path", str(target)])
    assert fresh.exit_code == 0, fresh.output

    target.write_text(reference().replace("OIDC client id", "OIDC client"), encoding="utf-8")
    edited = runner.invoke(app, ["config", "reference", "--check", "--path", str(target)])
    assert edited.exit_code == 1


def test_the_cli_default_path_is_the_reference_path() -> None:
    from grantflow.cli import config as cli_config
    from grantflow.cli import config_reference

    assert cli_config.DOC_PATH == config_reference.DOC_PATH
