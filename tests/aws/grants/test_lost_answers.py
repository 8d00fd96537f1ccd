"""Account-assignment operations AWS is still working on when Grantflow decides again.

The hardening runs (``make hardening``: fault injection with the emulated asynchrony) ended
with duplicate CreateAccountAssignment for a tuple and assignments left in AWS. Pinned cause:
botocore calls *every* ``before-send`` handler, so an attempt the fault injector failed (500,
throttle, ...) still started an operation in the emulator — exactly a request AWS did while its
answer was lost. botocore sent it again, got ``ConflictException``, and ``create_assignment``
then looked (absent: still IN_PROGRESS) and created again; when the first operation landed
between that look and the create, there were two copies (moto keeps both; one delete leaves
one). Two fixes, each tested here on moto with the emulator on a fake clock:

* the class, in Grantflow: before deciding after ``ConflictException`` (create or delete) or a
  delete's ``ResourceNotFoundException``, the tuple's operations in progress are found with
  the status APIs and waited for (identity_center._wait_out); the emulator's ``lost`` key
  loses answers on purpose so that the hardening runs keep exercising it;
* the harness: an attempt the fault injector failed never reaches the emulator.

Each test below fails on the code before the fix (checked by running it against
``git show HEAD~:src/grantflow/aws/identity_center.py`` resp. ``emulated_async.py``).
"""

from __future__ import annotations

import boto3
import pytest

from grantflow.aws.emulated_async import AsyncEmulator, AsyncSpec
from grantflow.aws.faults import FaultInjector, FaultSpec
from grantflow.aws.grants import GrantSettings, apply_grant, apply_revoke
from grantflow.aws.identity_center import Waiter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory, ClientSettings
from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    Assignment,
    GrantHandle,
    GrantKind,
    RevokeStatus,
)
from tests.aws.grants.conftest import ACCOUNT, Directory, FakeClock


def _seed(first_lost: bool, kind: str = "create") -> int:
    """A seed whose first ``kind`` answer is lost (or not) and whose next ones are not."""
    for seed in range(10_000):
        probe = AsyncEmulator(AsyncSpec(lost=0.5, seed=seed), background=False)
        if probe.answer_lost(kind, 1) == first_lost and not any(
            probe.answer_lost(k, n) for k in ("create", "delete") for n in range(2, 6)
        ):
            if kind == "create" and probe.answer_lost("delete", 1):
                continue
            return seed
    raise AssertionError("no such seed")


def _setup(
    boto_session: boto3.Session, spec: str, faults: FaultInjector | None = None
) -> tuple[AsyncEmulator, ClientFactory, GrantSettings]:
    clock = FakeClock()
    emulator = AsyncEmulator(AsyncSpec.parse(spec), clock=clock, background=False)
    settings = ClientSettings(emulated_async=emulator, faults=faults)
    factory = ClientFactory(boto_session, settings=settings)
    waiter = Waiter(timeout=60.0, interval=0.5, clock=clock, sleep=clock.sleep)
    return emulator, factory, GrantSettings(waiter=waiter)


def _spec(d: Directory, user: str) -> AccountAssignmentSpec:
    return AccountAssignmentSpec(instance_arn=d.instance_arn, identity_store_id=d.identity_store_id,
                                 principal_id=user, account_id=ACCOUNT,
                                 permission_set_arn=d.permission_set_arn)  # fmt: skip


def test_a_create_whose_answer_was_lost_makes_one_assignment(
    directory: Directory, boto_session: boto3.Session
) -> None:
    """The old loop created again once the lost create had landed: two copies."""
    emulator, factory, settings = _setup(
        boto_session, f"in_progress=2s,lost=0.5,seed={_seed(True)}"
    )
    user = directory.users[0]
    handle = apply_grant(factory, _spec(directory, user), IdentityCenterLimiter(),
                         settings=settings)  # fmt: skip
    assert emulator.counts["answers_lost"] == 1 and emulator.counts["conflicts"] >= 1
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == [
        Assignment(ACCOUNT, directory.permission_set_arn, user)
    ]
    assert emulator.counts["create_started"] == 1
    assert emulator.counts["create_of_existing"] == 0
    # the revoke then leaves nothing behind
    outcome = apply_revoke(factory, handle, False, IdentityCenterLimiter(), settings=settings)
    assert outcome.status is RevokeStatus.REVOKED
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []


def test_a_revoke_waits_for_a_create_still_in_progress(
    directory: Directory, boto_session: boto3.Session
) -> None:
    """A create of the tuple is in progress (another process's, or one whose job died) and
    AWS answers the delete ResourceNotFound: the old revoke said "already absent" and the
    create landed after it, leaving the access in AWS."""
    emulator, factory, settings = _setup(boto_session, "in_progress=2s,conflicts=off")
    user = directory.users[1]
    spec = _spec(directory, user)
    other = factory.client("sso-admin")  # the same emulated Identity Center, nothing waits
    other.create_account_assignment(InstanceArn=directory.instance_arn, TargetId=ACCOUNT,
                                    TargetType="AWS_ACCOUNT",
                                    PermissionSetArn=directory.permission_set_arn,
                                    PrincipalType="USER", PrincipalId=user)  # fmt: skip
    assert emulator.in_flight() == 1
    assignment = Assignment(ACCOUNT, directory.permission_set_arn, user)
    handle = GrantHandle(kind=GrantKind.ACCOUNT_ASSIGNMENT, instance_arn=spec.instance_arn,
                         identity_store_id=spec.identity_store_id, principal_id=user,
                         pre_existing=False, assignment=assignment)  # fmt: skip
    revoked = apply_revoke(factory, handle, False, IdentityCenterLimiter(), settings=settings)
    assert revoked.status is RevokeStatus.REVOKED
    emulator.apply_due()
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []
    assert (emulator.counts["create_succeeded"], emulator.counts["delete_succeeded"]) == (1, 1)


@pytest.mark.parametrize("kind", ["500", "throttle", "conflict"])
def test_an_attempt_the_fault_injector_failed_starts_nothing(
    directory: Directory, boto_session: boto3.Session, kind: str
) -> None:
    """The harness bug: every before-send handler runs, so a failed attempt used to start an
    emulated operation (a lost answer nobody asked for)."""
    faults = FaultInjector(FaultSpec(rate=1.0, kinds=(kind,), services=frozenset({"sso-admin"})))
    emulator, factory, _ = _setup(boto_session, "in_progress=2s", faults)
    sso = factory.client("sso-admin")
    with pytest.raises(Exception, match=kind.title()[:4] if kind != "500" else "Internal"):
        sso.create_account_assignment(InstanceArn=directory.instance_arn, TargetId=ACCOUNT,
                                      TargetType="AWS_ACCOUNT",
                                      PermissionSetArn=directory.permission_set_arn,
                                      PrincipalType="USER",
                                      PrincipalId=directory.users[2])  # fmt: skip
    assert emulator.counts["create_started"] == 0 and emulator.in_flight() == 0
    assert faults.faults[kind] >= 1
