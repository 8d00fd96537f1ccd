"""Which Identity Center (identity store) user a Grantflow user is, for granting in AWS.

Grantflow grants AWS access to an *identity store user*, so every person who may receive a grant
must be mapped to exactly one. The rules, in order:

1. **username**: the identity store user whose ``UserName`` equals the Grantflow username,
   compared case-insensitively;
2. **email**: else the identity store user whose email equals the Grantflow user's email,
   compared case-insensitively.

A step that finds more than one candidate is *ambiguous* and does not fall through: guessing
would grant AWS access to the wrong person. A user with no match, or an ambiguous one, *cannot
receive AWS grants*; the result carries the reason, in words an admin can act on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class MatchedBy(StrEnum):
    OWNER = "owner"  # the identity store created the Grantflow user
    USERNAME = "username"
    EMAIL = "email"


class UnmatchedReason(StrEnum):
    NO_IDENTITY_STORE_USER = "no_identity_store_user"
    AMBIGUOUS_USERNAME = "ambiguous_username"
    AMBIGUOUS_EMAIL = "ambiguous_email"
    PRINCIPAL_TAKEN = "principal_taken"


@dataclass(frozen=True, slots=True)
class IdentityStoreUser:
    identity_store_user_id: str
    username: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class GrantflowUser:
    id: str
    username: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Matched:
    user_id: str
    identity_store_user_id: str
    matched_by: MatchedBy


@dataclass(frozen=True, slots=True)
class CannotReceiveGrants:
    """The user has no (unambiguous) identity store user: AWS grants are impossible."""

    user_id: str
    reason: UnmatchedReason
    detail: str


MatchResult = Matched | CannotReceiveGrants


def _key(value: str | None) -> str | None:
    text = (value or "").strip().casefold()
    return text or None


@dataclass(frozen=True, slots=True)
class IdentityStoreIndex:
    """Identity store users by case-folded username and email."""

    by_username: Mapping[str, tuple[str, ...]]
    by_email: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, users: Iterable[IdentityStoreUser]) -> IdentityStoreIndex:
        by_username: dict[str, list[str]] = defaultdict(list)
        by_email: dict[str, list[str]] = defaultdict(list)
        for user in users:
            if (name := _key(user.username)) is not None:
                by_username[name].append(user.identity_store_user_id)
            if (email := _key(user.email)) is not None:
                by_email[email].append(user.identity_store_user_id)
        return cls(
            by_username={k: tuple(sorted(set(v))) for k, v in by_username.items()},
            by_email={k: tuple(sorted(set(v))) for k, v in by_email.items()},
        )


def match_user(user: GrantflowUser, index: IdentityStoreIndex) -> MatchResult:
    """The identity store user ``user`` maps to, or why there is none."""
    name = _key(user.username)
    by_name = index.by_username.get(name, ()) if name else ()
    if len(by_name) == 1:
        return Matched(user.id, by_name[0], MatchedBy.USERNAME)
    if len(by_name) > 1:
        return CannotReceiveGrants(
            user.id,
            UnmatchedReason.AMBIGUOUS_USERNAME,
            f"{len(by_name)} identity store users have the username {user.username!r}",
        )
    email = _key(user.email)
    by_email = index.by_email.get(email, ()) if email else ()
    if len(by_email) == 1:
        return Matched(user.id, by_email[0], MatchedBy.EMAIL)
    if len(by_email) > 1:
        return CannotReceiveGrants(
            user.id,
            UnmatchedReason.AMBIGUOUS_EMAIL,
            f"{len(by_email)} identity store users have the email {user.email!r}; "
            "give the Grantflow user the username of one of them",
        )
    wanted = f"username {user.username!r}" + (f" or email {user.email!r}" if email else "")
    return CannotReceiveGrants(
        user.id,
        UnmatchedReason.NO_IDENTITY_STORE_USER,
        f"no identity store user has the {wanted}; create the user in IAM Identity Center "
        "(or provision it from your IdP) and sync again",
    )


def match_users(
    users: Iterable[GrantflowUser], store_users: Iterable[IdentityStoreUser]
) -> dict[str, MatchResult]:
    """One result per Grantflow user id."""
    index = IdentityStoreIndex.build(store_users)
    return {user.id: match_user(user, index) for user in users}


def link_principals(
    principals: Iterable[IdentityStoreUser],
    users: Iterable[GrantflowUser],
    owned: Mapping[str, str],
) -> dict[str, Matched]:
    """Which Grantflow user each principal of *one* identity store is: principal id -> link.

    ``owned`` maps a principal id to the user its store created (that link always stands).
    Every other user is matched by ``match_user``; a principal claimed by one user through its
    username wins over claims through the email, and a principal claimed by several users on
    the same rule (or already owned) is linked to none of them: a person has at most one
    principal per store and a principal is at most one person.
    """
    store = list(principals)
    index = IdentityStoreIndex.build(store)
    links = {pid: Matched(uid, pid, MatchedBy.OWNER) for pid, uid in owned.items()}
    owners = set(owned.values())
    claims: dict[str, dict[MatchedBy, list[str]]] = defaultdict(lambda: defaultdict(list))
    for user in users:
        if user.id in owners:
            continue
        found = match_user(user, index)
        if isinstance(found, Matched) and found.identity_store_user_id not in links:
            claims[found.identity_store_user_id][found.matched_by].append(user.id)
    for pid, by_rule in claims.items():
        for rule in (MatchedBy.USERNAME, MatchedBy.EMAIL):
            claimants = by_rule.get(rule, [])
            if claimants:
                if len(claimants) == 1:
                    links[pid] = Matched(claimants[0], pid, rule)
                break
    return links


def unlinked_reason(
    user: GrantflowUser, principals: Iterable[IdentityStoreUser]
) -> CannotReceiveGrants:
    """Why ``user``, linked to no principal of a store, has none there."""
    found = match_user(user, IdentityStoreIndex.build(principals))
    if isinstance(found, CannotReceiveGrants):
        return found
    return CannotReceiveGrants(
        user.id,
        UnmatchedReason.PRINCIPAL_TAKEN,
        f"the identity store user matching {found.matched_by.value} is already another "
        "Grantflow user's (or claimed by several); an identity store user is one person",
    )
