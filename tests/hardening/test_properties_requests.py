"""Properties of the access request state machine and of approval counting (hypothesis).

A rule-based machine drives one request with every event, in any order, and checks after
each step what ``domain/request_states.py`` promises: final states absorb, access can only
exist after an approval, the way out of access is revoking (with an end reason), and a
request that is not over can always be ended.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from grantflow.domain.flows import ApprovalMode, ApproverSet, without_principals
from grantflow.domain.request_states import (
    _MOVES,
    FINAL,
    LIVE,
    EndReason,
    Event,
    InvalidTransition,
    RequestState,
    Vote,
    approval_complete,
    end_reason_for,
    finish_revocation,
    may_decide,
    transition,
)

ENDED_BY_REVOCATION = {RequestState.EXPIRED, RequestState.REVOKED, RequestState.FAILED}


class RequestLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = RequestState.PENDING
        self.history: list[RequestState] = [self.state]
        self.end_reason: EndReason | None = None
        self.approved = False

    @rule(event=st.sampled_from(Event))
    def send(self, event: Event) -> None:
        before = self.state
        try:
            after = transition(before, event)
        except InvalidTransition as err:
            assert (before, event) not in _MOVES
            assert (err.state, err.event) == (before, event)
            return
        assert (before, event) in _MOVES
        if after is RequestState.REVOKING and self.end_reason is None:
            self.end_reason = end_reason_for(event)  # what services.access_requests.move does
        if event is Event.APPROVE:
            self.approved = True
        self.state = after
        self.history.append(after)

    @rule(reason=st.sampled_from(EndReason))
    def finish(self, reason: EndReason) -> None:
        try:
            after = finish_revocation(self.state, reason)
        except InvalidTransition:
            assert self.state is not RequestState.REVOKING
            return
        assert after.value == reason.value and after in FINAL
        self.state = after
        self.history.append(after)

    @precondition(lambda self: self.state is RequestState.REVOKING)
    @rule()
    def finish_with_recorded_reason(self) -> None:
        assert self.end_reason is not None
        self.state = finish_revocation(self.state, self.end_reason)
        self.history.append(self.state)

    @invariant()
    def final_states_absorb(self) -> None:
        firsts = [i for i, s in enumerate(self.history) if s in FINAL]
        if firsts:
            assert self.history[firsts[0] :] == [self.history[firsts[0]]] * (
                len(self.history) - firsts[0]
            )

    @invariant()
    def access_only_after_approval(self) -> None:
        if any(s in LIVE for s in self.history):
            assert self.approved
            first_live = next(i for i, s in enumerate(self.history) if s in LIVE)
            assert RequestState.APPROVED in self.history[:first_live]

    @invariant()
    def access_ends_only_through_revoking(self) -> None:
        for before, after in zip(self.history, self.history[1:], strict=False):
            if before in (RequestState.GRANTING, RequestState.GRANTED):
                assert after in LIVE
            if after in ENDED_BY_REVOCATION:
                # ... or it never had access: today's policy failed it before granting
                assert before is RequestState.REVOKING or (
                    after is RequestState.FAILED
                    and before in (RequestState.PENDING, RequestState.APPROVED)
                )

    @invariant()
    def revoking_has_an_end_reason(self) -> None:
        if RequestState.REVOKING in self.history:
            assert self.end_reason is not None

    @invariant()
    def an_open_request_can_always_be_ended(self) -> None:
        if self.state in FINAL:
            return
        if self.state is RequestState.REVOKING:
            assert finish_revocation(self.state, EndReason.REVOKED) is RequestState.REVOKED
        else:
            assert transition(self.state, Event.REVOKE) in {RequestState.CANCELLED,
                                                             RequestState.REVOKING}  # fmt: skip


TestRequestLifecycle = RequestLifecycle.TestCase
EXAMPLES = int(os.environ.get("GRANTFLOW_PROPERTY_EXAMPLES", "100"))  # make hardening: more
TestRequestLifecycle.settings = settings(
    max_examples=2 * EXAMPLES, stateful_step_count=30, deadline=None
)


@given(st.sampled_from(sorted(FINAL)), st.sampled_from(Event), st.sampled_from(EndReason))
def test_final_states_accept_nothing(state: RequestState, event: Event, reason: EndReason) -> None:
    for attempt in (lambda: transition(state, event), lambda: finish_revocation(state, reason)):
        try:
            attempt()
        except InvalidTransition:
            continue
        raise AssertionError(f"{state} moved")


def test_every_move_into_revoking_has_an_end_reason() -> None:
    into_revoking = {(s, e) for (s, e), after in _MOVES.items() if after is RequestState.REVOKING}
    assert into_revoking  # the table has such moves
    for _, event in into_revoking:
        assert end_reason_for(event) in EndReason


# ---- approvals ---------------------------------------------------------------------------

PEOPLE = [f"p{i}" for i in range(6)]
GROUPS = ["g1", "g2", "g3"]
principals = st.sampled_from([f"user:{p}" for p in PEOPLE] + [f"group:{g}" for g in GROUPS])
approver_sets = st.lists(
    st.builds(
        ApproverSet,
        label=st.just("set"),
        why=st.just("test"),
        principals=st.lists(principals, min_size=1, max_size=4, unique=True).map(tuple),
        required=st.integers(1, 3),
    ),
    min_size=1,
    max_size=3,
).map(tuple)
memberships = st.fixed_dictionaries(
    {p: st.frozensets(st.sampled_from(GROUPS), max_size=2) for p in PEOPLE}
)
votes = st.lists(st.tuples(st.sampled_from(PEOPLE), st.booleans()), max_size=8)


def _votes(raw: list[tuple[str, bool]], groups: dict[str, frozenset[str]]) -> list[Vote]:
    return [Vote(person, groups[person], approve) for person, approve in raw]


@given(approver_sets, memberships, votes, votes)
def test_more_approvals_never_undo_a_complete_approval(
    sets: tuple[ApproverSet, ...],
    groups: dict[str, frozenset[str]],
    first: list[tuple[str, bool]],
    more: list[tuple[str, bool]],
) -> None:
    for mode in (ApprovalMode.ANY, ApprovalMode.ALL):
        if approval_complete(mode, sets, _votes(first, groups)):
            assert approval_complete(mode, sets, _votes(first + more, groups))
    if approval_complete(ApprovalMode.ALL, sets, _votes(first, groups)):
        assert approval_complete(ApprovalMode.ANY, sets, _votes(first, groups))
    assert approval_complete(ApprovalMode.AUTO, sets, [])


@given(approver_sets, memberships, votes)
def test_rejections_and_outsiders_never_approve(
    sets: tuple[ApproverSet, ...], groups: dict[str, frozenset[str]], raw: list[tuple[str, bool]]
) -> None:
    rejections = [(p, False) for p, _ in raw]
    assert not approval_complete(ApprovalMode.ANY, sets, _votes(rejections, groups))
    outsiders = [
        (p, True) for p, _ in raw if not may_decide(p, groups[p], sets)
    ]  # people who may not decide
    assert not approval_complete(ApprovalMode.ANY, sets, _votes(outsiders, groups))


@given(approver_sets, memberships, st.sampled_from(PEOPLE), st.integers(1, 5))
def test_one_person_counts_once(
    sets: tuple[ApproverSet, ...], groups: dict[str, frozenset[str]], person: str, times: int
) -> None:
    """ "Approvals from ``required`` distinct people": the same approver repeated is one."""
    repeated = _votes([(person, True)] * times, groups)
    for approver_set in sets:
        once = approval_complete(ApprovalMode.ALL, (approver_set,), repeated[:1])
        assert approval_complete(ApprovalMode.ALL, (approver_set,), repeated) == once


@given(approver_sets, st.sampled_from(PEOPLE))
def test_a_requester_is_never_among_their_own_approvers(
    sets: tuple[ApproverSet, ...], requester: str
) -> None:
    cleaned = without_principals(sets, frozenset({f"user:{requester}"}))
    assert all(f"user:{requester}" not in s.principals for s in cleaned)
    assert [s.required for s in cleaned] == [s.required for s in sets]
    assert not may_decide(requester, frozenset(), cleaned)
