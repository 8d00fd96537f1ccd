"""CLI sign-in by the OAuth 2.0 device authorization grant (RFC 8628), the pure part.

The CLI asks the server for a sign-in: it gets a *device code* (a high-entropy secret it keeps
and polls with) and a short *user code*. The person opens the fixed page `VERIFICATION_PATH`
in a browser where they are signed in and *types* the user code; the page shows where and when
the sign-in started and offers Approve or Deny. The first poll after an approval gets a
personal API token, once. Nothing reusable ever travels in a URL, and no page acts on a code
it did not see typed: a link somebody else made leads nowhere.

Codes are stored as digests, expire after `EXPIRES_IN` and are single-use. User codes come
from an alphabet without vowels or look-alike characters, so they read aloud well and never
spell words; wrong codes are counted per person (`WRONG_CODE_LIMIT` in `WRONG_CODE_WINDOW`),
which makes guessing one in the 20^8 space hopeless.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

VERIFICATION_PATH = "/device"
DEVICE_CODE_PREFIX = "gf_dev"
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
EXPIRES_IN = timedelta(minutes=10)
INTERVAL_SECONDS = 5
SLOW_DOWN_STEP_SECONDS = 5  # RFC 8628 §3.5: each slow_down adds 5 s to the interval
MAX_INTERVAL_SECONDS = 60
TOKEN_LIFETIME = timedelta(days=30)
LABEL_MAX = 64
# Sign-ins one client IP may start, and wrong codes one person may type, per window.
STARTS_PER_IP = 10
STARTS_WINDOW = timedelta(minutes=10)
WRONG_CODE_LIMIT = 5
WRONG_CODE_WINDOW = timedelta(minutes=15)
RETAIN_AFTER_EXPIRY = timedelta(days=1)  # expired rows kept this long, then purged


class Status(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    USED = "used"


class PollOutcome(enum.StrEnum):
    """What a poll with a device code gets; all but ISSUE are RFC 8628 error codes."""

    ISSUE = "issue"
    PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"
    DENIED = "access_denied"
    EXPIRED = "expired_token"
    SPENT = "invalid_grant"


@dataclass(frozen=True, slots=True)
class NewCodes:
    """A sign-in's secrets, shown once to the CLI; the server keeps their digests."""

    device_code: str
    user_code: str  # canonical: 8 letters, no dash

    @property
    def device_code_hash(self) -> str:
        return device_code_digest(self.device_code)

    @property
    def user_code_hash(self) -> str:
        return user_code_digest(self.user_code)


def new_codes() -> NewCodes:
    user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
    return NewCodes(f"{DEVICE_CODE_PREFIX}_{secrets.token_urlsafe(32)}", user_code)


def device_code_digest(device_code: str) -> str:
    return hashlib.sha256(f"device-code:{device_code}".encode()).hexdigest()


def user_code_digest(user_code: str) -> str:
    """Digest of a canonical user code (see `normalize_user_code`)."""
    return hashlib.sha256(f"user-code:{user_code}".encode()).hexdigest()


def display_user_code(user_code: str) -> str:
    """``BCDF-GHJK``: how the CLI shows a code."""
    half = USER_CODE_LENGTH // 2
    return f"{user_code[:half]}-{user_code[half:]}"


def normalize_user_code(typed: str) -> str | None:
    """The canonical code a person typed (any case, spaces or dashes), or None when it
    cannot be a code at all."""
    letters = "".join(ch for ch in typed.upper() if ch not in " -\t")
    if len(letters) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in letters):
        return None
    return letters


def clean_label(label: str) -> str:
    """A printable one-line label for the machine, at most `LABEL_MAX` characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in label)
    return " ".join(printable.split())[:LABEL_MAX] or "unnamed machine"


def poll_outcome(
    status: Status,
    expires_at: datetime,
    last_polled_at: datetime | None,
    interval_seconds: int,
    now: datetime,
) -> PollOutcome:
    """What a poll gets, in RFC 8628 order: a spent or refused sign-in says so, an expired
    one expires, a client polling faster than its interval is slowed down, and only an
    approved one yields the token."""
    if status is Status.USED:
        return PollOutcome.SPENT
    if status is Status.DENIED:
        return PollOutcome.DENIED
    if now >= expires_at:
        return PollOutcome.EXPIRED
    if last_polled_at is not None and now - last_polled_at < timedelta(seconds=interval_seconds):
        return PollOutcome.SLOW_DOWN
    if status is Status.APPROVED:
        return PollOutcome.ISSUE
    return PollOutcome.PENDING


def slowed(interval_seconds: int) -> int:
    """The interval after a ``slow_down``: 5 s longer, up to `MAX_INTERVAL_SECONDS`."""
    return min(interval_seconds + SLOW_DOWN_STEP_SECONDS,
               max(interval_seconds, MAX_INTERVAL_SECONDS))  # fmt: skip


def retry_after_seconds(oldest_in_window: datetime, window: timedelta, now: datetime) -> int:
    """Seconds until the oldest counted attempt leaves the window (at least 1)."""
    return max(1, int((oldest_in_window + window - now).total_seconds()) + 1)
