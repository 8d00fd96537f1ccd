"""Password hashing for local users: argon2id (argon2-cffi), never anything weaker.

``verify`` answers a plain bool and never raises on a malformed hash, so a sign-in can treat
"no such user", "no password" and "wrong password" alike. ``dummy_verify`` spends the same
time as a real check, for callers that have no hash to check against.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_DUMMY_PASSWORD = "grantflow-dummy-password-for-timing"  # noqa: S105 (hashed, never accepted)


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(_DUMMY_PASSWORD)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def dummy_verify(password: str) -> None:
    """Burn one argon2 verification, so an unknown user costs what a known one does."""
    verify(_dummy_hash(), password)
