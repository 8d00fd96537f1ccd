"""What the channels are built from, as protocols.

``grantflow.settings.Settings`` has every field named here, so the deployment's settings are
passed as they are; ``notify`` itself imports only ``domain`` (an import-linter contract), and
a channel can be built in a test from any object of this shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Secret(Protocol):
    """A secret that is not printed (pydantic's ``SecretStr``)."""

    def get_secret_value(self) -> str: ...


class WebhookTargetConfig(Protocol):
    """One webhook receiver; its secret signs every event."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def secret(self) -> Secret: ...


class SmtpConfig(Protocol):
    @property
    def smtp_host(self) -> str | None: ...
    @property
    def smtp_port(self) -> int: ...
    @property
    def smtp_username(self) -> str | None: ...
    @property
    def smtp_password(self) -> Secret | None: ...
    @property
    def smtp_from(self) -> str: ...
    @property
    def smtp_starttls(self) -> bool: ...
    @property
    def smtp_ssl(self) -> bool: ...
    @property
    def smtp_timeout_seconds(self) -> float: ...


class SlackConfig(Protocol):
    @property
    def slack_bot_token(self) -> Secret | None: ...
    @property
    def slack_signing_secret(self) -> Secret | None: ...
    @property
    def slack_api_url(self) -> str: ...
    @property
    def slack_default_channel(self) -> str | None: ...


class WebhooksConfig(Protocol):
    @property
    def webhooks(self) -> Sequence[WebhookTargetConfig]: ...
    @property
    def webhook_timeout_seconds(self) -> float: ...


class ChannelsConfig(SmtpConfig, SlackConfig, WebhooksConfig, Protocol):
    """Everything ``notify.registry`` builds the configured channels from."""
