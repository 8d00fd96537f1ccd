"""The pure rules: audit events to notices, expiry warnings, approvers, per-flow channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from grantflow.domain.flows import FlowDefinition
from grantflow.domain.notifications import (
    Audience,
    FlowNotify,
    Planned,
    approver_user_ids,
    channel_options,
    expiry_dedupe,
    needs_expiry_warning,
    plan_for,
    unknown_webhooks,
)
from grantflow.notify.base import NoticeKind

K, A = NoticeKind, Audience


@pytest.mark.parametrize(
    ("action", "data", "auto", "expected"),
    [
        ("request.created", {}, False, Planned(K.APPROVAL_NEEDED, A.APPROVERS)),
        ("request.created", {}, True, None),
        ("request.approve", {"from": "pending", "to": "approved", "reason": "ok"}, False,
         Planned(K.APPROVED, A.REQUESTER, "ok")),
        ("request.approve", {"auto": True}, False, None),
        ("request.approve", {}, True, None),
        ("request.reject", {"reason": "no"}, False, Planned(K.REJECTED, A.REQUESTER, "no")),
        ("request.reject", {"reason": ""}, False, Planned(K.REJECTED, A.REQUESTER, None)),
        ("request.granted", {"expires_at": "x"}, True, Planned(K.GRANTED, A.REQUESTER)),
        ("request.grant_failed", {"error": "AccessDenied"}, False,
         Planned(K.FAILED, A.REQUESTER_AND_ADMINS, "AccessDenied")),
        ("request.revoke", {"from": "pending", "to": "cancelled", "reason": "no"}, False,
         Planned(K.ENDED, A.REQUESTER, "no")),
        ("request.revoke", {"from": "granted", "to": "revoking"}, False, None),
        ("request.expired", {}, False, Planned(K.ENDED, A.REQUESTER, "expired")),
        ("request.revoked", {}, False, Planned(K.ENDED, A.REQUESTER, "revoked")),
        ("request.cancel", {}, False, None),
        ("request.approval_recorded", {}, False, None),
        ("request.start_grant", {}, False, None),
        ("request.expire", {}, False, None),
        ("request.extend", {"seconds": 600}, False, None),
        ("request.failed", {}, False, None),  # already told at grant_failed
        ("request.policy_failed", {"from": "pending", "to": "failed", "reason": "flow gone"},
         False, Planned(K.FAILED, A.REQUESTER, "flow gone")),
        ("grant.granted", {"request_id": "r"}, False, None),
        ("integration.created", {}, False, None),
    ],
)  # fmt: skip
def test_plan_for(action: str, data: dict[str, Any], auto: bool, expected: Planned | None) -> None:
    assert plan_for(action, data, auto_approval=auto) == expected


def test_revoke_failures_are_told_once_per_grant_not_per_attempt() -> None:
    first = plan_for("grant.revoke_failed", {"grant_id": "g1", "error": "e1"}, auto_approval=False)
    again = plan_for("grant.revoke_failed", {"grant_id": "g1", "error": "e2"}, auto_approval=False)
    other = plan_for("grant.revoke_failed", {"grant_id": "g2", "error": "e1"}, auto_approval=False)
    assert first is not None and again is not None and other is not None
    assert (first.kind, first.audience) == (K.FAILED, A.REQUESTER_AND_ADMINS)
    assert first.dedupe == again.dedupe != other.dedupe


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("granted_ago", "ends_in", "expected"),
    [
        (60, 9, True),  # an hour-long grant, nine minutes left
        (60, 10, True),  # exactly ten minutes left
        (60, 11, False),  # too early
        (60, 0, False),  # already over: the expiry duty's business
        (60, -1, False),
        (4, 5, False),  # a 9-minute grant: "granted" already said when it ends
        (1, 10, True),  # 11 minutes in all
    ],
)
def test_needs_expiry_warning(granted_ago: int, ends_in: int, expected: bool) -> None:
    granted = NOW - timedelta(minutes=granted_ago)
    assert needs_expiry_warning(granted, NOW + timedelta(minutes=ends_in), NOW) is expected


def test_an_extension_moves_the_expiry_dedupe_key() -> None:
    end = NOW + timedelta(minutes=5)
    assert expiry_dedupe("r1", end) == expiry_dedupe("r1", end)
    assert expiry_dedupe("r1", end) != expiry_dedupe("r1", end + timedelta(hours=1))
    assert expiry_dedupe("r1", end) != expiry_dedupe("r2", end)


def test_approvers_expand_groups_and_never_include_the_requester() -> None:
    members = {"g-ops": {"u-carol", "u-alice"}, "g-empty": set()}
    principals = ["user:u-bob", "group:g-ops", "group:g-empty", "group:g-unknown", "user:u-alice"]
    assert approver_user_ids(principals, members, "u-alice") == {"u-bob", "u-carol"}
    assert approver_user_ids(["user:u-alice"], {}, "u-alice") == set()


def test_channel_options_follow_the_flow_else_the_deployment() -> None:
    assert channel_options(None, "email") == {}
    assert channel_options(None, "slack") == {}
    assert channel_options(None, "webhook") == {}
    off = FlowNotify(email=False, slack=False, webhooks=[])
    assert [channel_options(off, c) for c in ("email", "slack", "webhook")] == [None] * 3
    picked = FlowNotify.model_validate({"slack": {"channel": "#x"}, "webhooks": ["siem"]})
    assert channel_options(picked, "email") == {}  # unset: the deployment default
    assert channel_options(picked, "slack") == {"channel": "#x"}
    assert channel_options(picked, "webhook") == {"webhooks": ["siem"]}
    assert channel_options(FlowNotify(slack=True), "slack") == {}


def test_unknown_webhooks_and_duplicates() -> None:
    assert unknown_webhooks(FlowNotify(webhooks=["siem", "ops"]), {"siem"}) == ["ops"]
    assert unknown_webhooks(None, set()) == []
    with pytest.raises(ValidationError, match="named twice"):
        FlowNotify(webhooks=["siem", "siem"])
    with pytest.raises(ValidationError):
        FlowNotify.model_validate({"sms": True})


def _definition(**extra: Any) -> dict[str, Any]:
    return {
        "requestors": {"everyone": True},
        "scope": {"resource_types": ["aws-account"]},
        "permissions": {"aws-account": ["ReadOnlyAccess"]},
        "approval": {"mode": "auto"},
        **extra,
    }


def test_flow_definition_round_trips_its_notify_block_exactly() -> None:
    plain = FlowDefinition.model_validate(_definition())
    assert "notify" not in plain.model_dump(mode="json")  # old flows stay byte-for-byte equal
    block = {"email": True, "slack": {"channel": "#x", "dm": False}, "webhooks": ["siem"]}
    dumped = FlowDefinition.model_validate(_definition(notify=block)).model_dump(mode="json")
    assert dumped["notify"] == block
    assert FlowDefinition.model_validate(dumped).model_dump(mode="json") == dumped
