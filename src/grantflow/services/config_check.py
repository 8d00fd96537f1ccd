"""`grantflow config check`: every problem of a configuration, not just the first one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import ValidationError

from grantflow.settings import Settings
from grantflow.store.db import DatabaseUnavailable, build_engine, check_connection
from grantflow.store.migrate import current_revision

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    OK = "ok"


@dataclass(frozen=True)
class Finding:
    level: Level
    setting: str
    message: str


def _settings_findings(err: ValidationError) -> list[Finding]:
    out = []
    for e in err.errors():
        name = "GRANTFLOW_" + ".".join(str(p) for p in e.get("loc", ())).upper()
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(Finding(Level.ERROR, name, message))
    return out


def _coherence(settings: Settings) -> list[Finding]:
    out = []
    oidc = [settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret]
    if any(oidc) and not all(oidc):
        out.append(
            Finding(
                Level.ERROR,
                "GRANTFLOW_OIDC_*",
                "OIDC needs issuer, client id and client secret together",
            )
        )
    base = urlsplit(settings.base_url)
    if base.scheme == "https" and not settings.cookie_secure:
        out.append(
            Finding(
                Level.WARNING,
                "GRANTFLOW_COOKIE_SECURE",
                "served over https but session cookies are not marked Secure",
            )
        )
    if base.scheme == "http" and base.hostname not in ("127.0.0.1", "localhost", "::1"):
        out.append(
            Finding(
                Level.WARNING,
                "GRANTFLOW_BASE_URL",
                "plain http on a non-loopback address: put TLS in front",
            )
        )
    if settings.proxy_headers and "*" in settings.forwarded_allow_ips.split(","):
        out.append(
            Finding(
                Level.WARNING,
                "GRANTFLOW_FORWARDED_ALLOW_IPS",
                "* trusts X-Forwarded-For from anyone: a client that reaches the server directly "
                "picks its own IP (per-IP sign-in limits); list the proxy's addresses or CIDRs",
            )
        )
    if settings.template_url and urlsplit(settings.template_url).scheme != "https":
        out.append(
            Finding(
                Level.ERROR,
                "GRANTFLOW_TEMPLATE_URL",
                "must be an https URL (CloudFormation quick-create reads it)",
            )
        )
    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    if token is not None and len(token) < 32:
        out.append(
            Finding(
                Level.ERROR,
                "GRANTFLOW_ADMIN_TOKEN",
                "shorter than 32 characters: use a random secret",
            )
        )
    if settings.database_url.startswith("sqlite"):
        out.append(
            Finding(
                Level.WARNING,
                "GRANTFLOW_DATABASE_URL",
                "SQLite is for one process; use PostgreSQL for production and replicas",
            )
        )
    return out


def _slack(settings: Settings) -> list[Finding]:
    token, secret = settings.slack_bot_token, settings.slack_signing_secret
    out = []
    if secret is not None and token is None:
        why = "the signing secret is set but no bot token: button clicks cannot be answered"
        out.append(Finding(Level.ERROR, "GRANTFLOW_SLACK_BOT_TOKEN", why))
    if token is not None and secret is None:
        why = "no signing secret: Slack messages carry a link but no Approve / Reject buttons"
        out.append(Finding(Level.WARNING, "GRANTFLOW_SLACK_SIGNING_SECRET", why))
    if token is not None and not token.get_secret_value().startswith("xoxb-"):
        why = "not a bot token (xoxb-…): use the app's Bot User OAuth Token"
        out.append(Finding(Level.WARNING, "GRANTFLOW_SLACK_BOT_TOKEN", why))
    api = urlsplit(settings.slack_api_url)
    if api.scheme != "https" and not (api.scheme == "http" and api.hostname in _LOOPBACK):
        why = "must be an https URL (http only on loopback)"
        out.append(Finding(Level.ERROR, "GRANTFLOW_SLACK_API_URL", why))
    return out


def _database(settings: Settings) -> list[Finding]:
    engine = build_engine(settings.database_url, settings.db_pool_size)
    try:
        check_connection(engine)
        revision = current_revision(engine)
    except DatabaseUnavailable as err:
        return [Finding(Level.ERROR, "GRANTFLOW_DATABASE_URL", str(err))]
    finally:
        engine.dispose()
    if revision is None:
        return [
            Finding(
                Level.WARNING,
                "GRANTFLOW_DATABASE_URL",
                "reachable but empty: run `grantflow db upgrade` (serve does it too)",
            )
        ]
    return [Finding(Level.OK, "GRANTFLOW_DATABASE_URL", f"reachable, schema at {revision}")]


def check() -> list[Finding]:
    try:
        settings = Settings()
    except ValidationError as err:
        return _settings_findings(err)
    return _coherence(settings) + _slack(settings) + _database(settings)
