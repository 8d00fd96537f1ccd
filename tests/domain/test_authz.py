"""The one authorization policy, tested mostly on what it must refuse."""

from __future__ import annotations

import pytest

from grantflow.domain.authz import Principal, PrincipalKind, Requirement, Role, authorize

ADMIN = Principal(PrincipalKind.USER, "u-admin", Role.ADMIN)
MEMBER = Principal(PrincipalKind.USER, "u-member", Role.MEMBER)
INACTIVE_ADMIN = Principal(PrincipalKind.USER, "u-gone", Role.ADMIN, active=False)
CONNECTOR_A = Principal(PrincipalKind.CONNECTOR, "gfc-a")
SCIM = Principal(PrincipalKind.SCIM, "scim-1")

CASES = [
    # principal, requirement, owner, expected status
    (None, Requirement.USER, None, 401),
    (None, Requirement.ADMIN, None, 401),
    (None, Requirement.CONNECTOR, "gfc-a", 401),
    (None, Requirement.SCIM, None, 401),
    (INACTIVE_ADMIN, Requirement.ADMIN, None, 401),
    (INACTIVE_ADMIN, Requirement.USER, None, 401),
    (MEMBER, Requirement.ADMIN, None, 403),
    (MEMBER, Requirement.CONNECTOR, "gfc-a", 403),
    (MEMBER, Requirement.SCIM, None, 403),
    (ADMIN, Requirement.CONNECTOR, "gfc-a", 403),
    (ADMIN, Requirement.SCIM, None, 403),
    (CONNECTOR_A, Requirement.USER, None, 403),
    (CONNECTOR_A, Requirement.ADMIN, None, 403),
    (CONNECTOR_A, Requirement.SCIM, None, 403),
    (CONNECTOR_A, Requirement.CONNECTOR, "gfc-b", 403),
    (SCIM, Requirement.USER, None, 403),
    (SCIM, Requirement.ADMIN, None, 403),
    (SCIM, Requirement.CONNECTOR, "gfc-a", 403),
    (MEMBER, Requirement.USER, None, 200),
    (ADMIN, Requirement.USER, None, 200),
    (ADMIN, Requirement.ADMIN, None, 200),
    (CONNECTOR_A, Requirement.CONNECTOR, "gfc-a", 200),
    (SCIM, Requirement.SCIM, None, 200),
]


@pytest.mark.parametrize(("principal", "requirement", "owner", "expected"), CASES)
def test_policy(
    principal: Principal | None, requirement: Requirement, owner: str | None, expected: int
) -> None:
    decision = authorize(principal, requirement, owner_id=owner)
    assert decision.status == expected
    assert decision.allowed is (expected == 200)
    if not decision.allowed:
        assert decision.reason


def test_user_without_role_is_refused() -> None:
    nobody = Principal(PrincipalKind.USER, "u-x", None)
    assert authorize(nobody, Requirement.USER).status == 403
    assert authorize(nobody, Requirement.ADMIN).status == 403
