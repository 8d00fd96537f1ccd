"""Bearer secrets: how they are made, how they are stored (hashed), how they are compared."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A fresh secret. ``plaintext`` is shown once and never stored."""

    plaintext: str
    token_hash: str
    prefix: str


def hash_token(plaintext: str) -> str:
    """SHA-256 of a high-entropy token: fast lookup, useless to whoever reads the table."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def issue_token(kind_prefix: str) -> IssuedToken:
    plaintext = f"{kind_prefix}_{secrets.token_urlsafe(TOKEN_BYTES)}"
    return IssuedToken(
        plaintext=plaintext,
        token_hash=hash_token(plaintext),
        prefix=plaintext[: len(kind_prefix) + 5],
    )


def token_matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(plaintext), stored_hash)
