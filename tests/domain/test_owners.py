"""Resource Owner lookup for each attribute kind, its case rules and no-match."""

from __future__ import annotations

import pytest

from grantflow.domain.integration_config import OwnerAttribute, ResourceOwner
from grantflow.domain.owners import (
    DirectoryView,
    GroupView,
    NoOwner,
    Owners,
    UserView,
    resolve_owners,
)

VIEW = DirectoryView(
    users=(
        UserView("u1", "alice", "Alice@Example.com", attributes={"department": "Platform"}),
        UserView("u2", "bob", "bob@example.com", attributes={"Department": " Platform "}),
        UserView("u3", "carol", None, attributes={"department": "platform"}),
        UserView(
            "u4", "dave", "dave@example.com", active=False, attributes={"department": "Platform"}
        ),
        UserView("u5", "erin", None, attributes={"_scim": {"department": "Platform"}}),
    ),
    groups=(GroupView("g1", "Platform-Admins"), GroupView("g2", "data")),
)

GROUP = ResourceOwner(tag_key="owner", attribute=OwnerAttribute.GROUP_NAME)
EMAIL = ResourceOwner(tag_key="owner", attribute=OwnerAttribute.USER_EMAIL)
USERNAME = ResourceOwner(tag_key="owner", attribute=OwnerAttribute.USERNAME)
DEPARTMENT = ResourceOwner(
    tag_key="owner", attribute=OwnerAttribute.USER_ATTRIBUTE, attribute_name="department"
)


def test_group_name_is_case_insensitive() -> None:
    assert resolve_owners("platform-admins", GROUP, VIEW) == Owners(group_ids=frozenset({"g1"}))


def test_user_email_is_case_insensitive_and_trimmed() -> None:
    assert resolve_owners("  alice@example.COM ", EMAIL, VIEW) == Owners(user_ids=frozenset({"u1"}))


def test_username_is_case_insensitive() -> None:
    assert resolve_owners("BOB", USERNAME, VIEW) == Owners(user_ids=frozenset({"u2"}))


def test_attribute_value_is_exact_after_trimming() -> None:
    # u2's value has surrounding spaces and a differently cased key: still a match;
    # u3's value differs in case: not a match; u4 is deactivated; u5 only has reserved keys.
    assert resolve_owners("Platform", DEPARTMENT, VIEW) == Owners(user_ids=frozenset({"u1", "u2"}))
    assert resolve_owners("platform", DEPARTMENT, VIEW) == Owners(user_ids=frozenset({"u3"}))


@pytest.mark.parametrize(
    ("value", "attr", "words"),
    [
        ("nobody", GROUP, "no group"),
        ("x@example.com", EMAIL, "user email"),
        ("zed", USERNAME, "username"),
        ("Finance", DEPARTMENT, "'department'"),
        ("dave@example.com", EMAIL, "no active user"),
        ("   ", GROUP, "missing or empty"),
        (None, USERNAME, "missing or empty"),
    ],
)
def test_no_match_is_a_typed_reason(value: str | None, attr: ResourceOwner, words: str) -> None:
    result = resolve_owners(value, attr, VIEW)
    assert isinstance(result, NoOwner)
    assert words in result.reason


@pytest.mark.parametrize("name", [None, "", "  "])
def test_user_attribute_needs_a_name(name: str | None) -> None:
    with pytest.raises(ValueError, match="attribute_name is required"):
        ResourceOwner(tag_key="owner", attribute=OwnerAttribute.USER_ATTRIBUTE, attribute_name=name)
