"""Channels come from settings; without any, the notification duties do not run at all."""

from __future__ import annotations

from grantflow.metrics import Metrics
from grantflow.notify.registry import build_channels, configured_names
from grantflow.services.runtime import scheduler
from grantflow.services.runtime.workers import Workers
from tests.fixtures.api import make_settings
from tests.notify.notify_support import SECRET

HOOK = {"name": "siem", "url": "https://hooks.example.com/x", "secret": SECRET}


def _loops(**settings: object) -> set[str]:
    workers = Workers()
    config = make_settings("sqlite://", **settings)
    scheduler.install_notifications(workers, None, Metrics(), config)  # type: ignore[arg-type]
    return {loop.name for loop in workers.loops}


def test_no_channel_configured_means_no_notification_duties() -> None:
    assert build_channels(make_settings("sqlite://")) == []
    assert configured_names(make_settings("sqlite://")) == []
    assert _loops() == set()


def test_each_configured_channel_is_built_and_the_duties_run() -> None:
    settings = make_settings("sqlite://", smtp_host="smtp.example.com", webhooks=[HOOK])
    assert [c.name for c in build_channels(settings)] == ["email", "webhook"]
    assert configured_names(settings) == ["email", "webhook"]
    assert _loops(webhooks=[HOOK]) == {"notify-produce", "notify-deliver"}
    slack = make_settings("sqlite://", slack_bot_token="xoxb-test")
    assert "slack" in configured_names(slack)
    assert [c.name for c in build_channels(slack)] == ["slack"]
