"""`grantflow config check`: every problem of a configuration, not just the first one.

It agrees with `serve` (single sign-on is read by the same ``OidcConfig.from_settings``) and
changes nothing: an SQLite file that does not exist yet is reported, not created.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from grantflow.services.audit import audit_keys
from grantflow.services.auth.oidc_client import OidcConfig
from grantflow.services.auth.oidc_login import risky_settings
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


# Words people type into secrets: the long ones in any case, the short ones in lower case
# (so that a random token, which holds some five letters by chance, is not flagged).
_WEAK_WORDS = ("password", "passw0rd", "changeme", "secret", "grantflow", "letmein", "qwerty",
               "example", "default")  # fmt: skip
_WEAK_SHORT = ("admin", "token", "test", "demo")
MIN_SECRET_BITS = 80  # character entropy x length; a random hex of 32 characters scores ~115


def weak_secret(secret: str) -> str | None:
    """Why a secret that should be random looks guessable, or None. A heuristic: character
    entropy times length, repetition (it compresses, or repeats its trigrams) and words that
    people type; a random token of 32 characters or more passes all of them."""
    if len(secret) < 32:
        return "shorter than 32 characters: use a random secret"
    lowered = secret.lower()
    word = next((w for w in _WEAK_WORDS if w in lowered), None)
    word = word or next((w for w in _WEAK_SHORT if w in secret), None)
    if word is not None:
        return f"contains {word!r}: use a random secret (e.g. `openssl rand -base64 32`)"
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    trigrams = [secret[i : i + 3] for i in range(len(secret) - 2)]
    repeats = 1 - len(set(trigrams)) / len(trigrams)
    squeezed = len(zlib.compress(secret.encode("utf-8"), 9)) < len(secret) * 0.75
    steps = [ord(b) - ord(a) for a, b in itertools.pairwise(secret)]
    sequence = max(steps.count(1), steps.count(-1)) > len(steps) / 2  # abcdef…, 987…
    if per_char * len(secret) < MIN_SECRET_BITS or repeats > 0.25 or squeezed or sequence:
        return "low entropy (few distinct characters or repeated parts): use a random secret"
    return None


def _oidc(settings: Settings) -> list[Finding]:
    """What `serve` makes of the single sign-on settings, and what weakens it."""
    try:
        config = OidcConfig.from_settings(settings)
    except ValueError as err:
        return [Finding(Level.ERROR, "GRANTFLOW_OIDC_CLIENT_ID", str(err))]
    if config is None:
        given = {"GRANTFLOW_OIDC_CLIENT_ID": settings.oidc_client_id,
                 "GRANTFLOW_OIDC_CLIENT_SECRET": settings.oidc_client_secret}  # fmt: skip
        stray = [name for name, value in given.items() if value]
        why = "ignored: single sign-on is off without GRANTFLOW_OIDC_ISSUER"
        return [Finding(Level.WARNING, name, why) for name in stray]
    out = [Finding(Level.WARNING, name, why) for name, why in risky_settings(settings)]
    if config.client_secret is None:
        why = ("no client secret: a public client (PKCE only), as `serve` runs it; register "
               "the client as public at the identity provider, or set the secret")  # fmt: skip
        out.append(Finding(Level.OK, "GRANTFLOW_OIDC_CLIENT_SECRET", why))
    return out


def _coherence(settings: Settings) -> list[Finding]:
    out = _oidc(settings)
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
    weakness = weak_secret(token) if token is not None else None
    if weakness is not None:
        out.append(Finding(Level.ERROR, "GRANTFLOW_ADMIN_TOKEN", weakness))
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


def _audit(settings: Settings) -> list[Finding]:
    """The audit key lives outside the database, the same in every replica."""
    try:
        source = audit_keys.load(settings).source
    except audit_keys.AuditKeyError as err:
        return [Finding(Level.ERROR, "GRANTFLOW_AUDIT_KEY", str(err))]
    if source is None:
        why = (f"no audit key: `serve` will generate {audit_keys.default_key_path(settings)}; "
               "set one from your secret store instead, the same for every replica")  # fmt: skip
        return [Finding(Level.WARNING, "GRANTFLOW_AUDIT_KEY", why)]
    out = []
    if source == str(audit_keys.default_key_path(settings)):
        why = f"the audit key is the generated {source}: move it to your secret store"
        out.append(Finding(Level.WARNING, "GRANTFLOW_AUDIT_KEY", why))
    if source != "GRANTFLOW_AUDIT_KEY" and audit_keys.too_open(Path(source)):
        out.append(Finding(Level.WARNING, "GRANTFLOW_AUDIT_KEY_FILE",
                           f"{source} is readable by group or others: chmod 600"))  # fmt: skip
    return out


def _sqlite_file(database_url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _database(settings: Settings) -> list[Finding]:
    path = _sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        if not path.parent.is_dir():
            why = f"the directory of {path} does not exist"
            return [Finding(Level.ERROR, "GRANTFLOW_DATABASE_URL", why)]
        why = f"{path} does not exist yet: `grantflow db upgrade` (or serve) creates it"
        return [Finding(Level.WARNING, "GRANTFLOW_DATABASE_URL", why)]
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
    return _coherence(settings) + _slack(settings) + _audit(settings) + _database(settings)
