"""The access request state machine. Only ``transition`` moves a request.

    pending ──approve──▶ approved ──start──▶ granting ──granted──▶ granted
       │                    │                   │                    │ expire / revoke
       ├─reject─▶ rejected  ├─cancel─▶ cancelled │ fail/revoke         ▼
       ├─cancel─▶ cancelled └─policy─▶ failed    └──────────────▶ revoking ──done──▶ expired
       └─policy─▶ failed                                                     │      revoked
                                                                             │      failed
Revoking is the only way out of a state where access may exist: a request whose grant failed
half-way still revokes what it did before it ends ``failed``. A request that today's policy
no longer allows (``policy_failed``: its flow or integration deleted or disabled, its
requester no longer eligible; see ``domain.request_policy``) ends ``failed`` before any
access exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from grantflow.domain import patterns
from grantflow.domain.flows import ApprovalMode, ApproverSet


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    GRANTING = "granting"
    GRANTED = "granted"
    REVOKING = "revoking"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Event(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    START_GRANT = "start_grant"
    GRANTED = "granted"
    GRANT_FAILED = "grant_failed"
    EXPIRE = "expire"
    REVOKE = "revoke"
    EXTEND = "extend"
    REVOKED = "revoked"
    POLICY_FAILED = "policy_failed"  # the flow, integration or requester no longer allow it


class EndReason(StrEnum):
    EXPIRED = "expired"
    REVOKED = "revoked"
    FAILED = "failed"


FINAL = frozenset(
    {RequestState.EXPIRED, RequestState.REVOKED, RequestState.REJECTED,
     RequestState.CANCELLED, RequestState.FAILED}
)  # fmt: skip
LIVE = frozenset({RequestState.GRANTING, RequestState.GRANTED, RequestState.REVOKING})

_MOVES: dict[tuple[RequestState, Event], RequestState] = {
    (RequestState.PENDING, Event.APPROVE): RequestState.APPROVED,
    (RequestState.PENDING, Event.REJECT): RequestState.REJECTED,
    (RequestState.PENDING, Event.CANCEL): RequestState.CANCELLED,
    (RequestState.PENDING, Event.REVOKE): RequestState.CANCELLED,
    (RequestState.APPROVED, Event.START_GRANT): RequestState.GRANTING,
    (RequestState.APPROVED, Event.CANCEL): RequestState.CANCELLED,
    (RequestState.APPROVED, Event.REVOKE): RequestState.CANCELLED,
    (RequestState.PENDING, Event.POLICY_FAILED): RequestState.FAILED,
    (RequestState.APPROVED, Event.POLICY_FAILED): RequestState.FAILED,
    (RequestState.GRANTING, Event.GRANTED): RequestState.GRANTED,
    (RequestState.GRANTING, Event.GRANT_FAILED): RequestState.REVOKING,
    (RequestState.GRANTING, Event.REVOKE): RequestState.REVOKING,
    (RequestState.GRANTED, Event.EXPIRE): RequestState.REVOKING,
    (RequestState.GRANTED, Event.REVOKE): RequestState.REVOKING,
    (RequestState.GRANTED, Event.EXTEND): RequestState.GRANTED,
}


class InvalidTransition(ValueError):
    def __init__(self, state: RequestState, event: Event) -> None:
        super().__init__(f"a {state.value} request cannot {event.value.replace('_', ' ')}")
        self.state = state
        self.event = event


def transition(state: RequestState, event: Event) -> RequestState:
    if (state, event) in _MOVES:
        return _MOVES[(state, event)]
    if state is RequestState.REVOKING and event is Event.REVOKED:
        raise InvalidTransition(state, event)  # use finish_revocation: it needs the reason
    raise InvalidTransition(state, event)


def finish_revocation(state: RequestState, reason: EndReason) -> RequestState:
    if state is not RequestState.REVOKING:
        raise InvalidTransition(state, Event.REVOKED)
    return RequestState(reason.value)


def end_reason_for(event: Event) -> EndReason:
    return {
        Event.EXPIRE: EndReason.EXPIRED,
        Event.REVOKE: EndReason.REVOKED,
        Event.GRANT_FAILED: EndReason.FAILED,
    }[event]


# ---- approvals -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vote:
    approver_id: str
    approver_groups: frozenset[str]
    approve: bool
    # Who the approver is: Grantflow users that share a principal or an email are one person,
    # and a person counts once however many of their accounts vote. Defaults to approver_id.
    person: str | None = None


def may_decide(user_id: str, user_groups: frozenset[str], sets: Iterable[ApproverSet]) -> bool:
    refs = {f"user:{user_id}"} | {f"group:{g}" for g in user_groups}
    return names_any(refs, sets)


def names_any(refs: set[str] | frozenset[str], sets: Iterable[ApproverSet]) -> bool:
    """One of the approver sets names one of ``refs`` (``user:<id>``, ``group:<id>``)."""
    return any(refs.intersection(s.principals) for s in sets)


def _satisfied(approver_set: ApproverSet, votes: Iterable[Vote]) -> bool:
    approvers: set[str] = set()  # distinct people: one person's repeated vote counts once
    for vote in votes:
        refs = {f"user:{vote.approver_id}"} | {f"group:{g}" for g in vote.approver_groups}
        if vote.approve and refs.intersection(approver_set.principals):
            approvers.add(vote.person or vote.approver_id)
    return len(approvers) >= approver_set.required


def approval_complete(mode: ApprovalMode, sets: tuple[ApproverSet, ...], votes: list[Vote]) -> bool:
    if mode is ApprovalMode.AUTO:
        return True
    results = [_satisfied(s, votes) for s in sets]
    return all(results) if mode is ApprovalMode.ALL else any(results)


def justification_problem(text: str, required: bool, pattern: str | None) -> str | None:
    """What is wrong with a justification, if anything. The flow's pattern is matched by RE2,
    in time linear in the text (``domain.patterns``), whatever the pattern."""
    if required and not text.strip():
        return "a justification is required"
    if pattern:
        try:
            matched = patterns.matches(pattern, text)
        except patterns.PatternError as err:  # saved before patterns were RE2-checked
            return (f"this access flow's justification_pattern {pattern!r} cannot be checked "
                    f"safely: {err}; ask an admin to change it")  # fmt: skip
        if not matched:
            return f"the justification must match {pattern!r} (e.g. a ticket id)"
    return None
