"""The channels a deployment has configured, built from settings (nothing at import time)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from grantflow.notify.base import Channel
from grantflow.notify.config import ChannelsConfig
from grantflow.notify.email import EmailChannel
from grantflow.notify.webhook import WebhookChannel


def _slack(settings: ChannelsConfig) -> Channel | None:
    """The Slack channel when its module exists and its settings enable it."""
    try:
        module: Any = importlib.import_module("grantflow.notify.slack")
    except ModuleNotFoundError as err:
        if err.name != "grantflow.notify.slack":
            raise
        return None
    channel: Channel | None = module.SlackChannel.from_settings(settings)
    return channel


def build_channels(settings: ChannelsConfig) -> list[Channel]:
    channels: list[Channel] = []
    email = EmailChannel.from_settings(settings)
    if email is not None:
        channels.append(email)
    slack = _slack(settings)
    if slack is not None:
        channels.append(slack)
    if settings.webhooks:
        channels.append(WebhookChannel(settings.webhooks, settings.webhook_timeout_seconds))
    return channels


def by_name(channels: Sequence[Channel]) -> dict[str, Channel]:
    return {c.name: c for c in channels}


def configured_names(settings: ChannelsConfig) -> list[str]:
    """The channels ``build_channels`` would make, by name (nothing is connected)."""
    names = [EmailChannel.name] if settings.smtp_host else []
    if _slack(settings) is not None:
        names.append("slack")
    if settings.webhooks:
        names.append(WebhookChannel.name)
    return names
