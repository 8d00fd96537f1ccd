"""The grant wire format and the desired-vs-actual diff (pure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    Assignment,
    CreateAccountAssignment,
    GrantHandle,
    GrantKind,
    GroupMembershipSpec,
    Noop,
    Plan,
    PooledPermissionSetSpec,
    diff,
    parse_grant_spec,
)

BASE = {
    "instance_arn": "arn:aws:sso:::instance/ssoins-1",
    "identity_store_id": "d-1",
    "principal_id": "u-1",
}


def test_specs_round_trip_through_json_by_kind() -> None:
    specs = [
        AccountAssignmentSpec(**BASE, account_id="111122223333", permission_set_arn="ps"),
        GroupMembershipSpec(**BASE, group_id="g-1"),
        PooledPermissionSetSpec(
            **BASE,
            resource_type="s3-bucket",
            resource_arn="arn:aws:s3:::b",
            resource_id="b",
            account_id="111122223333",
            permission="read-only",
        ),
    ]
    for spec in specs:
        assert parse_grant_spec(spec.model_dump(mode="json")) == spec


def test_spec_validation() -> None:
    with pytest.raises(ValidationError):
        parse_grant_spec({**BASE, "kind": "account_assignment", "account_id": "12"})
    with pytest.raises(ValidationError):
        parse_grant_spec({**BASE, "kind": "nonsense"})
    with pytest.raises(ValidationError):
        GroupMembershipSpec(**BASE, group_id="g", surprise=1)  # type: ignore[call-arg]


def test_handle_needs_the_fields_of_its_kind() -> None:
    with pytest.raises(ValidationError, match="group_id"):
        GrantHandle(kind=GrantKind.GROUP_MEMBERSHIP, pre_existing=False, **BASE)
    with pytest.raises(ValidationError, match="permission_set_name"):
        GrantHandle(
            kind=GrantKind.POOLED_PERMISSION_SET,
            pre_existing=False,
            assignment=Assignment("111122223333", "ps", "u-1"),
            **BASE,
        )
    handle = GrantHandle(
        kind=GrantKind.ACCOUNT_ASSIGNMENT,
        pre_existing=True,
        assignment=Assignment("111122223333", "ps", "u-1"),
        **BASE,
    )
    assert GrantHandle.model_validate_json(handle.model_dump_json()) == handle


def test_plan_renders_and_knows_noops() -> None:
    plan = Plan(
        steps=(
            CreateAccountAssignment(
                account_id="111122223333", permission_set="ps", principal_id="u"
            ),
            Noop(reason="x"),
        )
    )
    assert plan.render() == ["assign ps to user u in 111122223333", "nothing to do: x"]
    assert not plan.is_noop and len(plan.changes) == 1
    assert Plan(steps=(Noop(reason="x"),)).is_noop
    assert Plan.model_validate_json(plan.model_dump_json()) == plan


def test_diff_desired_against_actual() -> None:
    a, b, c = (Assignment("111122223333", "ps", user) for user in ("a", "b", "c"))
    assert diff({a, b}, {b, c}) == (frozenset({a}), frozenset({c}))
    assert diff([], []) == (frozenset(), frozenset())
    assert diff([a, a], {a}) == (frozenset(), frozenset())
