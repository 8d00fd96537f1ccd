"""Configuration from the environment (prefix ``GRANTFLOW_``).

Nothing reads settings at import time: ``Settings()`` is built by the CLI or the app
factory and passed down explicitly.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SUPPORTED_DRIVERS = ("sqlite", "postgresql+psycopg")


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class WebhookTarget(BaseModel):
    """One webhook receiver; its secret signs every event (HMAC-SHA256)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str = Field(min_length=1, max_length=2048)
    secret: SecretStr = Field(min_length=16, description="At least 16 characters")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError("a webhook url must be an http:// or https:// URL")
        return value


class Settings(BaseSettings):
    """Every knob of a Grantflow deployment. See README "Configuration"."""

    model_config = SettingsConfigDict(env_prefix="GRANTFLOW_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./grantflow.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the HTTP server binds to")
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bootstrap admin API token; generated and printed once when unset",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000", description="Public URL users reach Grantflow at"
    )
    sync_interval_seconds: int = Field(
        default=300, ge=30, description="Default period between integration syncs"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = Field(default=LogFormat.JSON, description="json or console")
    template_url: str | None = Field(
        default=None,
        description="HTTPS URL where the CloudFormation template is published (quick-create)",
    )
    db_pool_size: int = Field(default=5, ge=1, description="PostgreSQL connection pool size")
    managed_connector: bool = Field(
        default=True, description="Run the managed connector inside the server process"
    )
    connector_lease_seconds: int = Field(
        default=60, ge=2, le=900, description="How long the managed connector holds a job lease"
    )
    connector_role_arn: str | None = Field(
        default=None,
        description="IAM role the managed connector assumes first (else it runs as the "
        "process's own AWS identity)",
    )

    # Web sign-in (sessions are server-side rows; see services/auth/sessions.py)
    session_max_age_seconds: int = Field(
        default=8 * 3600, ge=300, description="How long a web sign-in lasts before it expires"
    )
    cookie_secure: bool = Field(
        default=True,
        description="Mark session cookies Secure (HTTPS only); the loopback demo turns it off",
    )
    proxy_headers: bool = Field(
        default=True,
        description="Honour X-Forwarded-Proto and X-Forwarded-For from the trusted proxies in "
        "forwarded_allow_ips (client IP and https scheme behind a TLS-terminating proxy)",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Proxies whose X-Forwarded-* headers are trusted: comma-separated IPs or "
        'CIDR networks, or "*" for any (only when nothing but the proxy reaches the server)',
    )
    login_max_failures_per_user: int = Field(
        default=5,
        ge=1,
        description="Failed password sign-ins of a username per window before each address "
        "that failed for it waits before its next try (1 s, 2 s, 4 s …); never a lockout",
    )
    login_max_failures_per_ip: int = Field(
        default=20,
        ge=1,
        description="Failed password sign-ins per client address (IPv6: per /64) per window; "
        "more are refused until the window frees",
    )
    login_failure_window_seconds: int = Field(
        default=300, ge=10, description="Window over which failed sign-ins are counted"
    )
    login_max_delay_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="Longest wait between an address's tries at one username after failures",
    )
    oidc_issuer: str | None = Field(
        default=None, description="OIDC issuer URL; enables single sign-on when set"
    )
    oidc_client_id: str | None = Field(default=None, description="OIDC client id")
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="OIDC client secret (unset: a public client using PKCE only)"
    )
    oidc_scopes: str = Field(default="openid email profile", description="Scopes to request")
    oidc_auto_create: bool = Field(
        default=False,
        description="Create a member account for an OIDC identity that matches no user",
    )
    oidc_require_verified_email: bool = Field(
        default=True,
        description="Kept for old configurations; false is ignored (with a warning): a first "
        "sign-in links to an existing account only by a verified email",
    )

    # Notifications (notify/): each channel is on when configured; flows may narrow them
    smtp_host: str | None = Field(
        default=None, description="SMTP server for email notifications; unset: no email"
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP server port")
    smtp_username: str | None = Field(default=None, description="SMTP login (unset: no AUTH)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password")
    smtp_from: str = Field(
        default="Grantflow <grantflow@localhost>", description="From: of notification emails"
    )
    smtp_starttls: bool = Field(
        default=True,
        description="Upgrade the SMTP connection with STARTTLS (ignored with GRANTFLOW_SMTP_SSL)",
    )
    smtp_ssl: bool = Field(
        default=False, description="Connect to SMTP over TLS from the start (usually port 465)"
    )
    smtp_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of each SMTP connection and command"
    )
    webhooks: list[WebhookTarget] = Field(
        default_factory=list,
        description='JSON list of {"name", "url", "secret"}: signed JSON events are POSTed '
        "to each (flows may pick some by name)",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Timeout of each webhook POST"
    )
    notify_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Delivery attempts before a notification is failed"
    )

    # The audit anchor (domain/audit_chain.py, services/audit/audit_checkpoints.py): a key outside
    # the database for the chain's MACs, and signed checkpoints sent outside it
    data_dir: str = Field(
        default=".",
        min_length=1,
        description="Directory for files Grantflow makes itself: the audit key when none is "
        "configured (audit.key, mode 0600) and the default checkpoint file",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Secret (at least 32 characters) keying the audit chain's HMACs and "
        "signing its checkpoints; never stored in the database. Every replica needs the same "
        "one. Unset: GRANTFLOW_AUDIT_KEY_FILE, else <data_dir>/audit.key (serve makes it)",
    )
    audit_key_file: str | None = Field(
        default=None,
        description="File holding the audit key (e.g. a mounted secret), read at start",
    )
    audit_retired_keys: list[SecretStr] = Field(
        default_factory=list,
        description="JSON list of earlier audit keys: events and checkpoints they signed "
        "still verify after a rotation",
    )
    audit_checkpoint_interval_seconds: int = Field(
        default=60,
        ge=5,
        le=86_400,
        description="How often the scheduler signs a checkpoint of the audit chains (when they "
        "moved); events after the last checkpoint can be cut without detection",
    )
    audit_checkpoint_file: str | None = Field(
        default=None,
        description="Append-only JSON Lines file the checkpoints go to (unset: "
        "<data_dir>/audit-checkpoints.jsonl); keep it off the database host",
    )
    audit_checkpoint_s3_bucket: str | None = Field(
        default=None,
        description="S3 bucket (Object Lock enabled) each checkpoint is also written to, "
        "locked until its retention ends; credentials from the AWS default chain",
    )
    audit_checkpoint_s3_prefix: str = Field(
        default="grantflow/audit-checkpoints/", description="Key prefix of checkpoint objects"
    )
    audit_checkpoint_s3_lock_mode: str = Field(
        default="COMPLIANCE",
        pattern=r"^(COMPLIANCE|GOVERNANCE)$",
        description="Object Lock mode of checkpoint objects: COMPLIANCE or GOVERNANCE",
    )
    audit_checkpoint_s3_retention_days: int = Field(
        default=400, ge=1, le=36_500, description="Days each checkpoint object stays locked"
    )
    audit_checkpoint_webhooks: list[str] = Field(
        default_factory=list,
        description="JSON list of webhook names (from GRANTFLOW_WEBHOOKS) each checkpoint is "
        "also POSTed to, signed like notifications (event audit.checkpoint)",
    )

    # Slack (notify/slack.py, api/routes/slack.py): the bot token enables the channel, the
    # signing secret its Approve / Reject buttons
    slack_bot_token: SecretStr | None = Field(
        default=None, description="The Slack app's Bot User OAuth Token (xoxb-...)"
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="The Slack app's signing secret (verifies button clicks)"
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL"
    )
    slack_default_channel: str | None = Field(
        default=None,
        description="Channel for approval requests of flows that name none (e.g. #access)",
    )
    slack_replay_window_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="Oldest X-Slack-Request-Timestamp accepted on a button click, in seconds",
    )

    # Bounded inputs (api/body_limits.py, aws/cloudtrail.py): enforced before any work
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body accepted, checked as it streams in, before sign-in "
        "(413 above it); JSON bodies of the API are a few KB",
    )
    max_connector_report_bytes: int = Field(
        default=33_554_432,
        ge=1024,
        description="Largest job report (complete, fail, sync-batch) a connector may send with "
        "its valid token; a sync of 20,000 users, 2,000 groups and 5,000 accounts reports ~10 MB",
    )
    max_json_depth: int = Field(
        default=32,
        ge=2,
        le=200,
        description="Deepest nesting of arrays and objects accepted in a JSON body (422 deeper)",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="When set, /metrics requires Authorization: Bearer <this token> "
        "(at least 16 characters); unset: /metrics is open",
    )
    cloudtrail_max_object_bytes: int = Field(
        default=67_108_864,
        ge=1_048_576,
        description="Session audit: a CloudTrail log file that decompresses to more than this "
        "is skipped (reported to the admin) instead of read",
    )
    cloudtrail_max_records_per_object: int = Field(
        default=100_000,
        ge=1000,
        description="Session audit: a CloudTrail log file with more records than this is "
        "skipped (reported to the admin)",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        from sqlalchemy.engine import make_url  # loaded when a URL is checked, not by every CLI run
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as err:
            raise ValueError(f"not a database URL ({err})") from err
        if url.drivername == "postgresql":
            value = value.replace("postgresql://", "postgresql+psycopg://", 1)
            url = make_url(value)
        if url.drivername not in SUPPORTED_DRIVERS:
            raise ValueError(
                f"unsupported database driver {url.drivername!r}; use one of "
                + ", ".join(f"{d}://" for d in SUPPORTED_DRIVERS)
            )
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _secure_issuer(cls, value: str | None) -> str | None:
        if not value:
            return None
        url = urlsplit(value)
        loopback = url.hostname in {"localhost", "127.0.0.1", "::1"}
        if url.scheme != "https" and not (url.scheme == "http" and loopback):
            raise ValueError("the OIDC issuer must be an https:// URL (http only on loopback)")
        return value

    @field_validator("webhooks")
    @classmethod
    def _distinct_webhooks(cls, value: list[WebhookTarget]) -> list[WebhookTarget]:
        names = [w.name for w in value]
        if len(set(names)) != len(names):
            raise ValueError("two webhooks have the same name")
        return value

    @model_validator(mode="after")
    def _known_checkpoint_webhooks(self) -> Settings:
        names = {w.name for w in self.webhooks}
        unknown = [n for n in self.audit_checkpoint_webhooks if n not in names]
        if unknown:
            raise ValueError(
                f"GRANTFLOW_AUDIT_CHECKPOINT_WEBHOOKS names {', '.join(unknown)}, "
                "not in GRANTFLOW_WEBHOOKS"
            )
        return self

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",")]
        for item in items:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network (nor *)") from None
        return ",".join(items)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level
