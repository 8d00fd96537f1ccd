"""Grants that run together share their existence reads (moto server, calls counted with a
botocore ``before-call`` hook on the factory's clients).

The guarantee under test is the old one: an assignment that existed before Grantflow
granted it is never revoked — now also when its existence was learnt from a read made for
several grants at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from grantflow.aws.assignment_reads import (
    AssignmentReads,
    PairRead,
    PrincipalRead,
    existing,
    plan_reads,
)
from grantflow.aws.grants import GrantSettings, apply_assignment_grant, apply_revoke
from grantflow.aws.identity_center import IdentityCenter, Waiter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    Assignment,
    GrantHandle,
    RevokeStatus,
)
from tests.aws.grants.conftest import ACCOUNT, OTHER_ACCOUNT, Directory

PS_A, PS_B = "arn:ps/a", "arn:ps/b"


def test_reads_cover_every_assignment_with_the_fewest_calls() -> None:
    # three users of one (account, permission set): one ListAccountAssignments
    same_pair = [Assignment("1", PS_A, user) for user in ("u1", "u2", "u3")]
    assert plan_reads(same_pair) == [PairRead("1", PS_A)]
    # one user across three pairs: one ListAccountAssignmentsForPrincipal
    one_user = [
        Assignment("1", PS_A, "u1"),
        Assignment("2", PS_A, "u1"),
        Assignment("1", PS_B, "u1"),
    ]
    assert plan_reads(one_user) == [PrincipalRead("u1")]
    # a user in one account only: the principal read is filtered to that account
    assert plan_reads([Assignment("1", PS_A, "u1"), Assignment("1", PS_B, "u1")]) == [
        PrincipalRead("u1", "1")
    ]
    # mixed: each assignment is covered exactly by some read
    mixed = [*same_pair, *one_user, Assignment("3", PS_B, "u9")]
    reads = plan_reads(mixed)
    assert len(reads) == 3
    for item in mixed:
        assert any(
            (isinstance(r, PairRead) and (r.account_id, r.permission_set_arn) == item[:2])
            or (isinstance(r, PrincipalRead) and r.principal_id == item.principal_id)
            for r in reads
        )


def _spec(d: Directory, user: str, account: str = ACCOUNT) -> AccountAssignmentSpec:
    return AccountAssignmentSpec(
        instance_arn=d.instance_arn,
        identity_store_id=d.identity_store_id,
        principal_id=user,
        account_id=account,
        permission_set_arn=d.permission_set_arn,
    )


def _until(joined: Callable[[], int], expected: int) -> None:
    """A round's gathering: until ``expected`` assignments were asked about (60 s at most)."""
    deadline = time.monotonic() + 60
    while joined() < expected and time.monotonic() < deadline:
        time.sleep(0.01)


def _create_outside_grantflow(d: Directory, user: str, account: str = ACCOUNT) -> None:
    d.sso.create_account_assignment(
        InstanceArn=d.instance_arn, TargetId=account, TargetType="AWS_ACCOUNT",
        PermissionSetArn=d.permission_set_arn, PrincipalType="USER", PrincipalId=user,
    )  # fmt: skip


def _ops(d: Directory, before: dict[tuple[str, str], int]) -> Counter[str]:
    after = d.factory.calls.counts()
    return Counter({op: n - before.get((svc, op), 0) for (svc, op), n in after.items() if n})


def test_grants_together_share_one_read_and_keep_pre_existing_access(
    directory: Directory,
) -> None:
    d = directory
    alice, bob, carol = d.users
    _create_outside_grantflow(d, bob)  # bob had this access before Grantflow
    specs = [_spec(d, alice), _spec(d, bob), _spec(d, carol)]
    settings = GrantSettings(
        waiter=Waiter(timeout=30.0, interval=0.05),
        reads=AssignmentReads(gather=lambda joined: _until(joined, len(specs))),
    )
    limiter = IdentityCenterLimiter()
    reported: dict[str, bool] = {}
    lock = threading.Lock()

    def grant(spec: AccountAssignmentSpec) -> GrantHandle:
        def report(pre: bool) -> None:
            with lock:
                reported[spec.principal_id] = pre

        return apply_assignment_grant(
            d.factory, spec, limiter, settings=settings, report_pre_existing=report
        )

    before = d.factory.calls.counts()
    with ThreadPoolExecutor(len(specs)) as pool:
        handles = list(pool.map(grant, specs))
    grant_calls = _ops(d, before)
    # one ListAccountAssignments answered all three; bob's assignment was not created again
    assert grant_calls == Counter({"ListAccountAssignments": 1, "CreateAccountAssignment": 2})
    assert reported == {alice: False, bob: True, carol: False}
    assert [h.pre_existing for h in handles] == [False, True, False]
    assert sorted(a.principal_id for a in d.assignments(ACCOUNT, d.permission_set_arn)) == sorted(
        [alice, bob, carol]
    )  # one row each: nothing duplicated

    before = d.factory.calls.counts()
    outcomes = [apply_revoke(d.factory, h, False, limiter, settings=settings) for h in handles]
    assert [o.status for o in outcomes] == [
        RevokeStatus.REVOKED,
        RevokeStatus.KEPT_PRE_EXISTING,
        RevokeStatus.REVOKED,
    ]
    assert _ops(d, before) == Counter({"DeleteAccountAssignment": 2})  # no read before a delete
    remaining = d.assignments(ACCOUNT, d.permission_set_arn)
    assert [a.principal_id for a in remaining] == [bob]  # the access that existed before


def test_a_retry_keeps_what_the_first_attempt_learnt(directory: Directory) -> None:
    """A first attempt created the assignment, then its job was lost: the retry finds it and
    must not take it for access that existed before (known_pre_existing=False)."""
    d = directory
    alice = d.users[0]
    limiter = IdentityCenterLimiter()
    settings = GrantSettings(reads=AssignmentReads(gather_seconds=0))
    first = apply_assignment_grant(d.factory, _spec(d, alice), limiter, settings=settings)
    assert first.pre_existing is False
    retry_spec = _spec(d, alice).model_copy(update={"known_pre_existing": False})
    reported: list[bool] = []
    retry = apply_assignment_grant(
        d.factory, retry_spec, limiter, settings=settings, report_pre_existing=reported.append
    )
    assert retry.pre_existing is False and reported == []  # already known: not reported again
    assert len(d.assignments(ACCOUNT, d.permission_set_arn)) == 1
    assert apply_revoke(d.factory, retry, False, limiter).status is RevokeStatus.REVOKED
    assert d.assignments(ACCOUNT, d.permission_set_arn) == []


def test_a_revoke_of_an_assignment_already_gone_is_already_absent(directory: Directory) -> None:
    d = directory
    limiter = IdentityCenterLimiter()
    settings = GrantSettings(reads=AssignmentReads(gather_seconds=0))
    handle = apply_assignment_grant(d.factory, _spec(d, d.users[0]), limiter, settings=settings)
    d.sso.delete_account_assignment(
        InstanceArn=d.instance_arn, TargetId=ACCOUNT, TargetType="AWS_ACCOUNT",
        PermissionSetArn=d.permission_set_arn, PrincipalType="USER", PrincipalId=d.users[0],
    )  # fmt: skip
    outcome = apply_revoke(d.factory, handle, False, limiter)
    assert outcome.status is RevokeStatus.ALREADY_ABSENT
    assert outcome.plan.render() == ["nothing to do: the assignment is already absent"]


def test_principal_reads_find_pre_existing_access_in_other_accounts(directory: Directory) -> None:
    d = directory
    alice = d.users[0]
    _create_outside_grantflow(d, alice, OTHER_ACCOUNT)
    ic = IdentityCenter(factory=d.factory, instance_arn=d.instance_arn)
    wanted = [
        Assignment(ACCOUNT, d.permission_set_arn, alice),
        Assignment(OTHER_ACCOUNT, d.permission_set_arn, alice),
    ]
    assert plan_reads(wanted) == [PrincipalRead(alice)]
    before = d.factory.calls.counts()
    assert existing(ic, wanted) == {Assignment(OTHER_ACCOUNT, d.permission_set_arn, alice)}
    assert _ops(d, before) == Counter({"ListAccountAssignmentsForPrincipal": 1})
