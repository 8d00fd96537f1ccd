"""Browser-approved sign-in for the CLI (a device-style flow without server-side state).

The CLI makes a personal token's secret itself and shows the user a link carrying only the
secret's SHA-256 hash (useless without the secret), the token's display prefix, a label for
the machine and when the sign-in started. The user opens the link, signs in to the web console
(password or SSO) and approves; the server then stores that hash as a personal API token of
the user, and the CLI, which polls ``/api/v1/me`` with its secret, is signed in.

Nothing secret and nothing pending is kept on the server. Both sides derive the same short
confirmation code from the hash, so the user can check that the page is about the terminal in
front of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

TOKEN_PREFIX = "gf_pat"  # noqa: S105 - services.tokens.PERSONAL_PREFIX, not a secret
LINK_TTL_SECONDS = 600
CLOCK_SKEW_SECONDS = 60
TOKEN_LIFETIME = timedelta(days=30)
LABEL_MAX = 64

_HASH = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(re.escape(TOKEN_PREFIX) + r"_[A-Za-z0-9_-]{1,8}")


class LinkError(ValueError):
    """The sign-in link is malformed or too old."""


@dataclass(frozen=True, slots=True)
class CliLoginLink:
    token_hash: str
    prefix: str
    label: str
    started_at: int

    def query(self) -> dict[str, str]:
        """The link's query parameters (what `parse_link` reads back)."""
        return {"h": self.token_hash, "p": self.prefix, "n": self.label,
                "t": str(self.started_at)}  # fmt: skip


def confirmation_code(token_hash: str) -> str:
    """``ABCD-1234``: shown by the CLI and by the approval page for the same sign-in."""
    head = token_hash[:8].upper()
    return f"{head[:4]}-{head[4:]}"


def clean_label(label: str) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in label)
    return " ".join(printable.split())[:LABEL_MAX] or "unnamed machine"


def parse_link(h: str, p: str, n: str, t: str, now: float) -> CliLoginLink:
    """The sign-in a link describes; `LinkError` says what is wrong with it."""
    if not _HASH.fullmatch(h) or not _PREFIX.fullmatch(p):
        raise LinkError("this sign-in link is incomplete or damaged; copy it again from the "
                        "terminal")  # fmt: skip
    try:
        started = int(t)
    except ValueError:
        raise LinkError("this sign-in link has no valid start time") from None
    if started > now + CLOCK_SKEW_SECONDS:
        raise LinkError("this sign-in link starts in the future; check the clocks")
    if started < now - LINK_TTL_SECONDS:
        raise LinkError(f"this sign-in link has expired (after {LINK_TTL_SECONDS // 60} "
                        "minutes); run `grantflow login --browser` again")  # fmt: skip
    return CliLoginLink(h, p, clean_label(n), started)
