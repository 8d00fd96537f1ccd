"""`grantflow config check` on the Slack settings: half a configuration is named, not hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from grantflow.services.runtime.config_check import Level, check


def _slack_findings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> set[tuple]:
    monkeypatch.setenv("GRANTFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'gf.db'}")
    for name in ("BOT_TOKEN", "SIGNING_SECRET", "API_URL"):
        monkeypatch.delenv(f"GRANTFLOW_SLACK_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(f"GRANTFLOW_SLACK_{name.upper()}", value)
    return {(f.level, f.setting) for f in check() if f.setting.startswith("GRANTFLOW_SLACK")}


def test_slack_settings_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def findings(**env: str) -> set[tuple]:
        return _slack_findings(tmp_path, monkeypatch, **env)

    assert findings() == set()
    assert findings(bot_token="xoxb-1", signing_secret="s") == set()
    assert findings(signing_secret="s") == {(Level.ERROR, "GRANTFLOW_SLACK_BOT_TOKEN")}
    assert findings(bot_token="xoxb-1") == {(Level.WARNING, "GRANTFLOW_SLACK_SIGNING_SECRET")}
    assert findings(bot_token="xoxp-user", signing_secret="s") == {
        (Level.WARNING, "GRANTFLOW_SLACK_BOT_TOKEN")}  # fmt: skip
    assert findings(api_url="http://slack.internal/api/") == {
        (Level.ERROR, "GRANTFLOW_SLACK_API_URL")}  # fmt: skip
    assert findings(api_url="http://127.0.0.1:9999/api/") == set()
