"""Mapping Grantflow users to identity store users: username first, then email."""

from __future__ import annotations

from grantflow.domain.identity_matching import (
    CannotReceiveGrants,
    GrantflowUser,
    IdentityStoreUser,
    Matched,
    MatchedBy,
    UnmatchedReason,
    match_users,
)

STORE = [
    IdentityStoreUser("is-alice", "Alice", "alice@example.com"),
    IdentityStoreUser("is-bob", "bob.smith", "Bob@Example.com"),
    IdentityStoreUser("is-shared-1", "ops1", "ops@example.com"),
    IdentityStoreUser("is-shared-2", "ops2", "OPS@example.com"),
]


def test_username_case_insensitive_wins_over_email() -> None:
    result = match_users([GrantflowUser("u1", "alice", "someone-else@example.com")], STORE)
    assert result["u1"] == Matched("u1", "is-alice", MatchedBy.USERNAME)


def test_email_case_insensitive_when_username_does_not_match() -> None:
    result = match_users([GrantflowUser("u2", "bsmith", "bob@example.COM")], STORE)
    assert result["u2"] == Matched("u2", "is-bob", MatchedBy.EMAIL)


def test_no_match_cannot_receive_grants_with_reason() -> None:
    result = match_users([GrantflowUser("u3", "carol", "carol@example.com")], STORE)["u3"]
    assert isinstance(result, CannotReceiveGrants)
    assert result.reason is UnmatchedReason.NO_IDENTITY_STORE_USER
    assert "carol" in result.detail and "carol@example.com" in result.detail


def test_ambiguous_email_is_not_guessed() -> None:
    result = match_users([GrantflowUser("u4", "ops", "ops@example.com")], STORE)["u4"]
    assert isinstance(result, CannotReceiveGrants)
    assert result.reason is UnmatchedReason.AMBIGUOUS_EMAIL


def test_ambiguous_username_does_not_fall_through_to_email() -> None:
    store = [
        IdentityStoreUser("a", "dup", None),
        IdentityStoreUser("b", "DUP", None),
        IdentityStoreUser("c", "other", "dup@example.com"),
    ]
    result = match_users([GrantflowUser("u5", "dup", "dup@example.com")], store)["u5"]
    assert isinstance(result, CannotReceiveGrants)
    assert result.reason is UnmatchedReason.AMBIGUOUS_USERNAME


def test_user_without_email_and_empty_store() -> None:
    result = match_users([GrantflowUser("u6", "dave", None)], [])["u6"]
    assert isinstance(result, CannotReceiveGrants)
    assert "email" not in result.detail.split(";")[0]
