"""Today's policy for a request made yesterday. Pure rules.

A request is checked against its flow when it is submitted; flows, integrations and people
change while it waits for approval or holds access. ``recheck`` answers, at a later step
(approve, start granting, extend), whether the request's own flow, its integration and its
requester still allow it — and if not, why, in words an approver or requester understands.

The checks run in this order, so that the most lasting reason is the one reported (a problem
that may clear by itself, an integration in error, comes last):

1. the integration exists and is enabled;
2. the flow exists and is enabled;
3. the requester's account is active and the flow still names them as a requestor;
4. every requested resource still exists, is still in the flow's scope, and the flow still
   offers the permission on its type;
5. the request's duration is within the flow's maximum;
6. the integration is not in error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from grantflow.domain.flows import (
    FlowView,
    RequesterView,
    ResourceView,
    in_scope,
    requestor_matches,
)

INTEGRATION_ERROR_STATUS = "error"


class Check(StrEnum):
    """Which rule a request no longer passes (recorded in the audit event)."""

    INTEGRATION_DELETED = "integration_deleted"
    INTEGRATION_DISABLED = "integration_disabled"
    FLOW_DELETED = "flow_deleted"
    FLOW_DISABLED = "flow_disabled"
    FLOW_MOVED = "flow_moved"
    REQUESTER_INACTIVE = "requester_inactive"
    NOT_A_REQUESTOR = "not_a_requestor"
    RESOURCE_GONE = "resource_gone"
    OUT_OF_SCOPE = "out_of_scope"
    PERMISSION_WITHDRAWN = "permission_withdrawn"
    DURATION_TOO_LONG = "duration_too_long"
    INTEGRATION_ERROR = "integration_error"
    ACCOUNT_INACTIVE = "account_inactive"  # the account was suspended or closed


# Problems about the requester themselves (a 403 when the requester is the one asking).
REQUESTER_CHECKS = frozenset({Check.REQUESTER_INACTIVE, Check.NOT_A_REQUESTOR})


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    check: Check
    message: str

    @property
    def transient(self) -> bool:
        """Whether it may clear without anyone changing the policy (the next good sync)."""
        return self.check is Check.INTEGRATION_ERROR

    @property
    def about_requester(self) -> bool:
        return self.check in REQUESTER_CHECKS


@dataclass(frozen=True, slots=True)
class IntegrationState:
    id: str
    name: str
    enabled: bool
    status: str
    status_message: str | None = None


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request asked for, as stored when it was submitted."""

    integration_id: str
    resource_type: str
    permission: str
    duration_seconds: int
    requester_name: str


def recheck(
    request: RequestFacts,
    flow: FlowView | None,
    integration: IntegrationState | None,
    requester: RequesterView,
    resources: Sequence[ResourceView | None],
) -> PolicyProblem | None:
    """None when the request is still allowed, else the first problem (see the module doc).

    ``flow`` and ``integration`` are None when deleted; ``flow.enabled`` is the flow's own
    flag; a resource is None when it no longer exists.
    """
    return (
        _integration_problem(integration)
        or _flow_problem(request, flow)
        or _requester_problem(request, flow, requester)
        or _resource_problem(request, flow, resources)
        or _duration_problem(request, flow)
        or _integration_health(integration)
    )


def _integration_problem(integration: IntegrationState | None) -> PolicyProblem | None:
    if integration is None:
        return PolicyProblem(Check.INTEGRATION_DELETED, "the integration of this request was "
                             "deleted")  # fmt: skip
    if not integration.enabled:
        return PolicyProblem(Check.INTEGRATION_DISABLED,
                             f"integration {integration.name!r} is disabled")  # fmt: skip
    return None


def _flow_problem(request: RequestFacts, flow: FlowView | None) -> PolicyProblem | None:
    if flow is None:
        return PolicyProblem(Check.FLOW_DELETED, "the access flow that allowed this request "
                             "was deleted")  # fmt: skip
    if not flow.enabled:
        return PolicyProblem(Check.FLOW_DISABLED, f"access flow {flow.name!r} is disabled")
    if flow.integration_id != request.integration_id:
        return PolicyProblem(Check.FLOW_MOVED, f"access flow {flow.name!r} is now for another "
                             "integration")  # fmt: skip
    return None


def _requester_problem(
    request: RequestFacts, flow: FlowView | None, requester: RequesterView
) -> PolicyProblem | None:
    if not requester.active:
        return PolicyProblem(Check.REQUESTER_INACTIVE, f"{request.requester_name}'s account "
                             "is deactivated")  # fmt: skip
    if flow is not None and not requestor_matches(flow.definition.requestors, requester):
        return PolicyProblem(Check.NOT_A_REQUESTOR, f"access flow {flow.name!r} no longer "
                             f"lists {request.requester_name} as a requestor")  # fmt: skip
    return None


def _resource_problem(
    request: RequestFacts, flow: FlowView | None, resources: Sequence[ResourceView | None]
) -> PolicyProblem | None:
    if flow is None:
        return None
    if any(r is None for r in resources) or not resources:
        return PolicyProblem(Check.RESOURCE_GONE, "a requested resource no longer exists in "
                             "the integration (removed since the request was made)")  # fmt: skip
    for resource in resources:
        assert resource is not None
        problem = in_scope(flow.definition.scope, resource)
        if problem:
            return PolicyProblem(Check.OUT_OF_SCOPE, f"access flow {flow.name!r} no longer "
                                 f"covers {resource.aws_id}: it {problem}")  # fmt: skip
    offered = flow.definition.permissions.get(request.resource_type, [])
    if request.permission not in offered:
        now = ", ".join(offered) or "nothing"
        return PolicyProblem(Check.PERMISSION_WITHDRAWN, f"access flow {flow.name!r} no "
                             f"longer offers {request.permission} on {request.resource_type} "
                             f"(it offers {now})")  # fmt: skip
    return None


def _duration_problem(request: RequestFacts, flow: FlowView | None) -> PolicyProblem | None:
    if flow is None:
        return None
    limit = flow.definition.max_duration_seconds
    if request.duration_seconds > limit:
        return PolicyProblem(Check.DURATION_TOO_LONG, f"access flow {flow.name!r} now allows "
                             f"at most {limit} seconds; this request is for "
                             f"{request.duration_seconds}")  # fmt: skip
    return None


def _integration_health(integration: IntegrationState | None) -> PolicyProblem | None:
    if integration is not None and integration.status == INTEGRATION_ERROR_STATUS:
        detail = f" ({integration.status_message})" if integration.status_message else ""
        return PolicyProblem(Check.INTEGRATION_ERROR, f"integration {integration.name!r} is in "
                             f"error{detail}; try again once it is healthy")  # fmt: skip
    return None
