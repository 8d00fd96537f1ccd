"""Re-checking a request against today's flow, integration and requester: each refusal, the
order that picks the most lasting reason, and the one case that passes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from grantflow.domain.flows import FlowDefinition, FlowView, RequesterView, ResourceView
from grantflow.domain.request_policy import (
    Check,
    IntegrationState,
    PolicyProblem,
    RequestFacts,
    recheck,
)

REQUEST = RequestFacts("i1", "aws-account", "ReadOnly", 3600, "alice")
INTEGRATION = IntegrationState("i1", "Org", enabled=True, status="active")
ALICE = RequesterView("u-alice", frozenset({"g-dev"}))
ACCOUNT = ResourceView("r1", "i1", "aws-account", "111111111111", "111111111111",
                       ("r-root", "ou-prod"), {"env": "prod"}, ())  # fmt: skip


def _flow(enabled: bool = True, integration_id: str = "i1", **changes: Any) -> FlowView:
    definition: dict[str, Any] = {
        "requestors": {"group_ids": ["g-dev"]},
        "scope": {"resource_types": ["aws-account"]},
        "permissions": {"aws-account": ["ReadOnly", "Admin"]},
        "approval": {"mode": "any", "groups": [{"kind": "users", "user_ids": ["u-bob"]}]},
        "max_duration_seconds": 3600,
        "default_duration_seconds": 600,
    }
    definition.update(changes)
    return FlowView("f1", "dev read-only", enabled, integration_id,
                    FlowDefinition.model_validate(definition))  # fmt: skip


def _check(
    flow: FlowView | None = None,
    integration: IntegrationState | None = INTEGRATION,
    requester: RequesterView = ALICE,
    resources: tuple[ResourceView | None, ...] = (ACCOUNT,),
    request: RequestFacts = REQUEST,
    no_flow: bool = False,
) -> PolicyProblem | None:
    return recheck(request, None if no_flow else (flow or _flow()), integration, requester,
                   resources)  # fmt: skip


def test_an_unchanged_policy_passes() -> None:
    assert _check() is None


@pytest.mark.parametrize(
    ("kwargs", "check", "words"),
    [
        ({"integration": None}, Check.INTEGRATION_DELETED, "integration of this request was "
                                                            "deleted"),
        ({"integration": replace(INTEGRATION, enabled=False)}, Check.INTEGRATION_DISABLED,
         "integration 'Org' is disabled"),
        ({"no_flow": True}, Check.FLOW_DELETED, "access flow that allowed this request was "
                                                "deleted"),
        ({"flow": _flow(enabled=False)}, Check.FLOW_DISABLED, "'dev read-only' is disabled"),
        ({"flow": _flow(integration_id="i2")}, Check.FLOW_MOVED, "another integration"),
        ({"requester": replace(ALICE, active=False)}, Check.REQUESTER_INACTIVE,
         "alice's account is deactivated"),
        ({"requester": replace(ALICE, group_ids=frozenset())}, Check.NOT_A_REQUESTOR,
         "no longer lists alice as a requestor"),
        ({"resources": (ACCOUNT, None)}, Check.RESOURCE_GONE, "no longer exists"),
        ({"resources": ()}, Check.RESOURCE_GONE, "no longer exists"),
        ({"flow": _flow(scope={"resource_types": ["aws-account"],
                               "exclude_account_ids": ["111111111111"]})},
         Check.OUT_OF_SCOPE, "no longer covers 111111111111: it excludes account"),
        ({"flow": _flow(permissions={"aws-account": ["Admin"]})}, Check.PERMISSION_WITHDRAWN,
         "no longer offers ReadOnly on aws-account (it offers Admin)"),
        ({"flow": _flow(max_duration_seconds=1800)}, Check.DURATION_TOO_LONG,
         "now allows at most 1800 seconds; this request is for 3600"),
        ({"integration": replace(INTEGRATION, status="error", status_message="AccessDenied")},
         Check.INTEGRATION_ERROR, "'Org' is in error (AccessDenied); try again"),
    ],
)  # fmt: skip
def test_each_refusal_names_its_reason(kwargs: dict[str, Any], check: Check, words: str) -> None:
    problem = _check(**kwargs)
    assert problem is not None
    assert (problem.check, words in problem.message) == (check, True), problem.message


def test_a_requestor_by_attribute_or_everyone_still_passes() -> None:
    by_attribute = _flow(requestors={"attribute": {"name": "team", "value": "dev"}})
    someone = RequesterView("u-carol", frozenset(), {"team": "dev"})
    assert _check(flow=by_attribute, requester=someone) is None
    assert _check(flow=_flow(requestors={"everyone": True}),
                  requester=RequesterView("u-dan")) is None  # fmt: skip


def test_only_an_integration_in_error_is_transient() -> None:
    error = _check(integration=replace(INTEGRATION, status="error"))
    disabled = _check(flow=_flow(enabled=False))
    assert error is not None and error.transient
    assert disabled is not None and not disabled.transient


def test_problems_about_the_requester_are_marked() -> None:
    gone = _check(requester=replace(ALICE, group_ids=frozenset()))
    longer = _check(flow=_flow(max_duration_seconds=1800))
    assert gone is not None and gone.about_requester
    assert longer is not None and not longer.about_requester


def test_the_lasting_reason_wins_over_an_integration_in_error() -> None:
    broken = replace(INTEGRATION, status="error")
    problem = _check(no_flow=True, integration=broken)
    assert problem is not None and problem.check is Check.FLOW_DELETED


def test_a_disabled_integration_is_reported_before_its_flow() -> None:
    off = replace(INTEGRATION, enabled=False)
    problem = _check(flow=_flow(enabled=False), integration=off)
    assert problem is not None and problem.check is Check.INTEGRATION_DISABLED


def test_a_duration_at_the_maximum_passes() -> None:
    assert _check(flow=_flow(max_duration_seconds=3600)) is None
