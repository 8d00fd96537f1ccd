"""Session cut statements: what they deny (evaluated with IAM's documented condition
semantics, see policy_conditions.py), how they merge into an inline policy, and the size rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from grantflow.domain import session_cuts as cuts
from grantflow.domain.session_cuts import CutEntry, PolicyTooLarge, PolicyUnreadable
from tests.domain.policy_conditions import _like, denied

A, B = "111122223333", "444455556666"
T0 = datetime(2026, 12, 3, 19, 30, 5, tzinfo=UTC)
ROLE_ID = "AROAEXAMPLEROLEID1234"


def _ctx(user: str, issued: datetime, account: str = A) -> dict[str, str]:
    return {
        "aws:userid": f"{ROLE_ID}:{user}",
        "aws:PrincipalAccount": account,
        "aws:TokenIssueTime": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_the_cut_denies_the_users_sessions_issued_before_it_and_nothing_else() -> None:
    statements = cuts.statements([CutEntry(A, T0, "alice"), CutEntry(A, T0, "bob")])
    assert len(statements) == 1  # one window: the users share a statement
    before, after = T0 - timedelta(seconds=1), T0 + timedelta(seconds=1)
    assert denied(statements, _ctx("alice", before))
    assert denied(statements, _ctx("bob", before))
    assert not denied(statements, _ctx("alice", T0))  # DateLessThan: at the cut is not before
    assert not denied(statements, _ctx("alice", after))  # signed in again after the cut
    assert not denied(statements, _ctx("carol", before))  # another user
    assert not denied(statements, _ctx("xalice", before))  # a name that ends like hers
    assert not denied(statements, _ctx("alice", before, account=B))  # another account
    no_time = {k: v for k, v in _ctx("alice", before).items() if k != "aws:TokenIssueTime"}
    assert not denied(statements, no_time)  # a request without the key: not matched


def test_wildcard_characters_in_a_user_name_are_literal() -> None:
    statements = cuts.statements([CutEntry(A, T0, "a*e?$x")])
    [pattern] = statements[0]["Condition"]["StringLike"]["aws:userid"]  # type: ignore[index]
    assert pattern == "*:a${*}e${?}${$}x"
    before = T0 - timedelta(minutes=5)
    assert denied(statements, _ctx("a*e?$x", before))
    assert not denied(statements, _ctx("abe!$x", before))
    assert not denied(statements, _ctx("alice?$x", before))


def test_the_evaluator_follows_the_documented_wildcards() -> None:
    assert _like("*:alice", "AROA1:alice") and not _like("*:alice", "AROA1:alice2")
    assert _like("a?c", "abc") and not _like("a?c", "ac")
    assert _like("x${*}", "x*") and not _like("x${*}", "xy")


def test_cut_time_rounds_up_to_a_whole_second_in_utc() -> None:
    assert cuts.cut_time(T0) == T0
    assert cuts.cut_time(T0 + timedelta(microseconds=1)) == T0 + timedelta(seconds=1)
    naive = datetime(2026, 12, 3, 19, 30, 5, 500)
    assert cuts.cut_time(naive) == T0 + timedelta(seconds=1)


@pytest.mark.parametrize(("text", "seconds"), [("PT1H", 3600), ("PT12H", 43200),
                                               ("PT1H30M", 5400), (None, 3600)])  # fmt: skip
def test_session_durations(text: str | None, seconds: int) -> None:
    assert cuts.session_seconds(text) == seconds


def test_a_session_duration_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a session duration"):
        cuts.session_seconds("P1D")


ORG_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "Theirs", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})  # fmt: skip


def _sids(policy: str | None) -> list[str]:
    assert policy is not None
    return [s.get("Sid", "") for s in json.loads(policy)["Statement"]]


def test_merge_keeps_the_organizations_statements_and_replaces_only_ours() -> None:
    first = cuts.merge(ORG_POLICY, [CutEntry(A, T0, "alice")])
    assert _sids(first.policy) == ["Theirs", cuts.sid_for(A, T0)]
    later = T0 + timedelta(minutes=3)
    second = cuts.merge(first.policy or "", [CutEntry(A, later, "bob")])
    assert _sids(second.policy) == ["Theirs", cuts.sid_for(A, later)]
    lifted = cuts.merge(second.policy or "", [])
    assert json.loads(lifted.policy or "") == json.loads(ORG_POLICY)


def test_merge_is_idempotent_and_order_free() -> None:
    entries = [CutEntry(B, T0, "carol"), CutEntry(A, T0, "bob"), CutEntry(A, T0, "alice")]
    once = cuts.merge("", entries)
    again = cuts.merge(once.policy or "", list(reversed(entries)))
    assert once.policy == again.policy


def test_lifting_the_last_cut_of_a_set_without_a_policy_deletes_the_policy() -> None:
    with_cut = cuts.merge("", [CutEntry(A, T0, "alice")])
    assert cuts.merge(with_cut.policy or "", []).policy is None


def test_an_unreadable_policy_is_never_overwritten() -> None:
    with pytest.raises(PolicyUnreadable):
        cuts.merge("{not json", [CutEntry(A, T0, "alice")])


def _many(count: int, account: str = A, step: timedelta = timedelta(minutes=1)) -> list[CutEntry]:
    return [CutEntry(account, T0 + i * step, f"user{i:04d}@example.com") for i in range(count)]


def test_too_many_windows_are_coalesced_to_the_later_time_until_the_policy_fits() -> None:
    entries = _many(60)
    separate = cuts.policy_size(cuts.canonical({"Statement": cuts.statements(entries)}))
    assert separate > cuts.POLICY_MAX_CHARS  # 60 statements do not fit
    merged = cuts.merge(ORG_POLICY, entries)
    assert merged.coalesced and merged.size <= cuts.POLICY_MAX_CHARS
    # every user is still cut, never later than asked: a window only moves to a later time
    by_user = {e.user_name: e.not_before for e in merged.entries}
    assert set(by_user) == {e.user_name for e in entries}
    assert all(by_user[e.user_name] >= e.not_before for e in entries)
    statements = cuts.cut_statements_of(merged.policy or "")
    for entry in entries:
        issued = entry.not_before - timedelta(seconds=1)
        assert denied(statements, _ctx(entry.user_name, issued))


def test_the_limit_is_reported_when_even_one_statement_per_account_does_not_fit() -> None:
    entries = [CutEntry(A, T0, f"a-very-long-user-name-{i:05d}@example.com") for i in range(400)]
    with pytest.raises(PolicyTooLarge, match="over the limit of 10,240") as caught:
        cuts.merge(ORG_POLICY, entries)
    assert caught.value.size > caught.value.limit == cuts.POLICY_MAX_CHARS


def test_keep_cuts_puts_the_cuts_back_into_a_rewritten_pooled_policy() -> None:
    pooled = cuts.canonical({"Version": "2012-10-17", "Statement": [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": ["arn:aws:s3:::b"]}]})  # fmt: skip
    current = cuts.merge(pooled, [CutEntry(A, T0, "alice")]).policy or ""
    assert _sids(cuts.keep_cuts(pooled, current)) == ["ListBucket", cuts.sid_for(A, T0)]
    assert cuts.keep_cuts(pooled, pooled) == pooled
