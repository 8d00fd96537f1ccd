"""Which Grantflow user an OIDC identity is: pure rules over the ID token's claims.

An external identity is the pair (issuer, ``sub``): ``sub`` is the only claim an issuer
promises never to reassign. Names (``preferred_username``) are chosen by whoever controls the
identity and emails can be unverified, so neither ever decides who someone *is* once bound.

1. **Bound**: an identity already linked to a user signs in as that user, and only that user.
2. **First sign-in**: an unbound identity is linked to an existing user only by an email the
   issuer vouches for (``email_verified`` true), to exactly one live user, who has no identity
   of this issuer yet, and who is not an account an admin must link by hand: the bootstrap
   admin, an admin, or a user with a local password (`link_refusal`).
3. **Auto-create** (when enabled): an identity that matches nobody becomes a new member bound
   to it; never under a username someone already has, never with an unverified email, and
   never when its verified email belongs to an account that rule 2 refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SUBJECT_MAX = 255  # OIDC Core 2: sub is at most 255 ASCII characters


class LinkRefusal(StrEnum):
    """Why an identity's first sign-in may not be linked to the user its email names."""

    AMBIGUOUS_EMAIL = "ambiguous_email"
    BOOTSTRAP_ADMIN = "bootstrap_admin"
    ADMIN_ACCOUNT = "admin_account"
    LOCAL_PASSWORD = "local_password"  # noqa: S105 - a reason, not a secret
    ALREADY_LINKED = "already_linked"


REFUSAL_TEXT = {
    LinkRefusal.AMBIGUOUS_EMAIL: "more than one account has this email",
    LinkRefusal.BOOTSTRAP_ADMIN: "the bootstrap admin is linked by an admin only",
    LinkRefusal.ADMIN_ACCOUNT: "admin accounts are linked by an admin only",
    LinkRefusal.LOCAL_PASSWORD: "accounts with a local password are linked by an admin only",
    LinkRefusal.ALREADY_LINKED: "the account is linked to another identity of this issuer",
}


@dataclass(frozen=True, slots=True)
class OidcClaims:
    """The claims that matter, read defensively (an issuer may send any JSON)."""

    subject: str
    email: str | None
    email_verified: bool
    preferred_username: str | None
    name: str | None

    @property
    def verified_email(self) -> str | None:
        """The email, normalized, only when the issuer vouches for it."""
        return self.email.strip().lower() if self.email and self.email_verified else None


def _text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def read_claims(raw: dict[str, Any]) -> OidcClaims:
    """The claims of a validated ID token; ``ValueError`` when ``sub`` is unusable."""
    subject = raw.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > SUBJECT_MAX:
        raise ValueError("the ID token's sub claim is missing, not a string or too long")
    return OidcClaims(
        subject=subject,
        email=_text(raw, "email"),
        email_verified=raw.get("email_verified") is True,
        preferred_username=_text(raw, "preferred_username"),
        name=_text(raw, "name"),
    )


@dataclass(frozen=True, slots=True)
class LinkCandidate:
    """The one live user a verified email names, as the rules need to see them."""

    role: str
    has_password: bool
    is_bootstrap_admin: bool
    has_identity_of_issuer: bool


def link_refusal(candidate: LinkCandidate) -> LinkRefusal | None:
    """None when a first sign-in may link to ``candidate`` by verified email."""
    if candidate.is_bootstrap_admin:
        return LinkRefusal.BOOTSTRAP_ADMIN
    if candidate.role == "admin":
        return LinkRefusal.ADMIN_ACCOUNT
    if candidate.has_password:
        return LinkRefusal.LOCAL_PASSWORD
    if candidate.has_identity_of_issuer:
        return LinkRefusal.ALREADY_LINKED
    return None


def new_username(claims: OidcClaims) -> str | None:
    """The username an auto-created account asks for: preferred_username, else the verified
    email, else nothing (the caller refuses rather than invent a name)."""
    return claims.preferred_username or claims.verified_email
