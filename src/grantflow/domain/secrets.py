"""Bearer secrets: how they are made, how they are stored (hashed), how they are compared.

A token reads ``<kind>_<public id>_<secret>``: the public id (8 letters and digits) is what
lists show to tell tokens apart (``prefix``, ``<kind>_<public id>``); it adds nothing to and
takes nothing from the secret, which is 32 random bytes on its own. No stored or shown prefix
is ever a piece of the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

TOKEN_BYTES = 32
PUBLIC_ID_LENGTH = 8
PUBLIC_PREFIX_MIN_LENGTH = 14  # a kind of 5 or more, a separator, the public id
_PUBLIC_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A fresh secret. ``plaintext`` is shown once and never stored."""

    plaintext: str
    token_hash: str
    prefix: str


def hash_token(plaintext: str) -> str:
    """SHA-256 of a high-entropy token: fast lookup, useless to whoever reads the table."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def public_id() -> str:
    """A random label for a token or row: identifies it, proves nothing."""
    return "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))


def issue_token(kind_prefix: str) -> IssuedToken:
    prefix = f"{kind_prefix}_{public_id()}"
    plaintext = f"{prefix}_{secrets.token_urlsafe(TOKEN_BYTES)}"
    return IssuedToken(plaintext=plaintext, token_hash=hash_token(plaintext), prefix=prefix)


def is_public_prefix(prefix: str) -> bool:
    """Whether a stored prefix is a public label (this scheme's ``<kind>_<public id>``, or a
    label given to an older token) rather than the first characters of an older secret."""
    # older prefixes were 10 to 12 characters, shorter than any public one
    pattern = rf"[a-z_]{{5,}}[_~][A-Za-z0-9]{{{PUBLIC_ID_LENGTH}}}"
    return re.fullmatch(pattern, prefix) is not None


def token_matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(plaintext), stored_hash)
