"""Identity Center's asynchrony emulated over moto (GRANTFLOW_EMULATE_IC_ASYNC): operations stay
IN_PROGRESS on the emulator's clock, some end FAILED, and moto's state stays truthful: a failed
create leaves no assignment, a failed delete leaves it in place. Then Grantflow's grant and
revoke, and the connector's grant job, through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from grantflow.aws import emulated_async
from grantflow.aws.emulated_async import AsyncEmulator, AsyncSpec, EmulationRefused
from grantflow.aws.grants import GrantSettings, apply_grant, apply_revoke
from grantflow.aws.identity_center import OperationFailed, Waiter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory, ClientSettings
from grantflow.connector.handlers import JobContext, JobFailure, grant
from grantflow.connector.shared import Shared
from grantflow.domain.connector_jobs import GrantPayload
from grantflow.domain.grant_specs import AccountAssignmentSpec, Assignment, RevokeStatus
from grantflow.domain.jobs import JobState, after_failure
from grantflow.store.types import utcnow
from tests.aws.grants.conftest import ACCOUNT, Directory, FakeClock

_DESCRIBE_CREATION = ("sso-admin", "DescribeAccountAssignmentCreationStatus")

# --- the spec ------------------------------------------------------------------------------


def test_spec_parses() -> None:
    spec = AsyncSpec.parse("in_progress=2s,failed=0.05,seed=7")
    assert (spec.in_progress, spec.failed, spec.seed) == (2.0, 0.05, 7)
    assert spec.conflicts and spec.provisioning and spec.stats is None
    assert AsyncSpec.parse("in_progress=500ms").in_progress == 0.5
    assert AsyncSpec.parse("in_progress=1m, failed=1").in_progress == 60.0
    assert AsyncSpec.parse("in_progress=3").in_progress == 3.0
    off = AsyncSpec.parse("conflicts=off,provisioning=false,stats=/tmp/x.json")
    assert (off.conflicts, off.provisioning, str(off.stats)) == (False, False, "/tmp/x.json")
    assert AsyncSpec.parse("lost=0.1").lost == 0.1 and AsyncSpec.parse("failed=0").lost == 0.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("in_progress=fast", "not a duration"),
        ("in_progress=2h", "not a duration"),
        ("in_progress=2 s s", "not a duration"),
        ("in_progress=2000m", "at most 1h"),
        ("failed=1.5", "within 0..1"),
        ("failed=-0.1", "within 0..1"),
        ("failed=some", "not a number"),
        ("lost=2", "lost must be within 0..1"),
        ("lost=x", "lost='x' is not a number"),
        ("seed=x", "not an integer"),
        ("conflicts=maybe", "on or off"),
        ("colour=red", "unknown key 'colour'"),
        ("in_progress", "not key=value"),
        ("failed=0.1,failed=0.2", "given twice"),
    ],
)
def test_spec_errors_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(EmulationRefused, match=says) as caught:
        AsyncSpec.parse(text)
    assert emulated_async.ENV_VAR in str(caught.value)


# --- refused unless pointed at an emulator -------------------------------------------------


def test_refused_for_a_client_talking_to_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSO_ADMIN"):
        monkeypatch.delenv(key, raising=False)
    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1"
    )
    emulator = AsyncEmulator(AsyncSpec.parse("in_progress=1s"), background=False)
    factory = ClientFactory(session, settings=ClientSettings(emulated_async=emulator))
    with pytest.raises(EmulationRefused, match=r"amazonaws\.com"):
        factory.client("sso-admin")
    factory.client("sts")  # only sso-admin clients are hooked


def test_refused_from_the_environment_without_an_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(emulated_async.ENV_VAR, "in_progress=2s")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with pytest.raises(EmulationRefused, match="never runs against AWS"):
        ClientFactory.from_environment()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://sso.us-east-1.amazonaws.com")
    with pytest.raises(EmulationRefused):
        emulated_async.from_environment()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    found = emulated_async.from_environment()
    assert found is not None and found.spec.in_progress == 2.0
    monkeypatch.setenv(emulated_async.ENV_VAR, "in_progress=2s,failed=7")
    with pytest.raises(EmulationRefused, match=r"within 0\.\.1"):
        emulated_async.from_environment()
    monkeypatch.delenv(emulated_async.ENV_VAR)
    assert emulated_async.from_environment() is None


# --- the emulated operations against moto --------------------------------------------------


Emulated = Callable[..., tuple[AsyncEmulator, BaseClient, FakeClock]]


@pytest.fixture
def emulated(boto_session: boto3.Session) -> Emulated:
    """An sso-admin client with the emulation on a fake clock (no background thread)."""

    def make(spec: str = "in_progress=2s") -> tuple[AsyncEmulator, BaseClient, FakeClock]:
        clock = FakeClock()
        emulator = AsyncEmulator(AsyncSpec.parse(spec), clock=clock, background=False)
        factory = ClientFactory(boto_session, settings=ClientSettings(emulated_async=emulator))
        return emulator, factory.client("sso-admin"), clock

    return make


def _params(d: Directory, user: str) -> dict[str, str]:
    return {
        "InstanceArn": d.instance_arn,
        "TargetId": ACCOUNT,
        "TargetType": "AWS_ACCOUNT",
        "PermissionSetArn": d.permission_set_arn,
        "PrincipalType": "USER",
        "PrincipalId": user,
    }


def _creation(sso: BaseClient, d: Directory, request_id: str) -> dict[str, Any]:
    status: dict[str, Any] = sso.describe_account_assignment_creation_status(
        InstanceArn=d.instance_arn, AccountAssignmentCreationRequestId=request_id
    )["AccountAssignmentCreationStatus"]
    return status


def _deletion(sso: BaseClient, d: Directory, request_id: str) -> dict[str, Any]:
    status: dict[str, Any] = sso.describe_account_assignment_deletion_status(
        InstanceArn=d.instance_arn, AccountAssignmentDeletionRequestId=request_id
    )["AccountAssignmentDeletionStatus"]
    return status


def test_create_stays_in_progress_then_succeeds(directory: Directory, emulated: Emulated) -> None:
    emulator, sso, clock = emulated("in_progress=2s")
    user = directory.users[0]
    started = sso.create_account_assignment(**_params(directory, user))
    status = started["AccountAssignmentCreationStatus"]
    assert status["Status"] == "IN_PROGRESS" and "FailureReason" not in status
    assert status["PrincipalId"] == user and status["TargetId"] == ACCOUNT
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []  # not yet
    clock.now = 1.9
    assert _creation(sso, directory, status["RequestId"])["Status"] == "IN_PROGRESS"
    assert emulator.in_flight() == 1
    clock.now = 2.0
    assert _creation(sso, directory, status["RequestId"])["Status"] == "SUCCEEDED"
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == [
        Assignment(ACCOUNT, directory.permission_set_arn, user)
    ]
    listed = sso.list_account_assignment_creation_status(InstanceArn=directory.instance_arn)
    assert [(r["RequestId"], r["Status"]) for r in listed["AccountAssignmentsCreationStatus"]] == [
        (status["RequestId"], "SUCCEEDED")
    ]
    in_progress = sso.list_account_assignment_creation_status(
        InstanceArn=directory.instance_arn, Filter={"Status": "IN_PROGRESS"}
    )
    assert in_progress["AccountAssignmentsCreationStatus"] == []
    assert emulator.in_flight() == 0 and emulator.counts["create_succeeded"] == 1


def test_an_operation_in_progress_conflicts_and_lists_page(
    directory: Directory, emulated: Emulated
) -> None:
    _, sso, clock = emulated("in_progress=2s")
    for user in directory.users:
        sso.create_account_assignment(**_params(directory, user))
    with pytest.raises(ClientError) as caught:
        sso.create_account_assignment(**_params(directory, directory.users[0]))
    assert caught.value.response["Error"]["Code"] == "ConflictException"
    pages = sso.get_paginator("list_account_assignment_creation_status").paginate(
        InstanceArn=directory.instance_arn,
        Filter={"Status": "IN_PROGRESS"},
        PaginationConfig={"PageSize": 2},
    )
    sizes = [len(page["AccountAssignmentsCreationStatus"]) for page in pages]
    assert sizes == [2, 1]
    clock.now = 2.0
    sso.create_account_assignment(**_params(directory, directory.users[0]))  # no conflict now


def test_a_failed_create_leaves_no_assignment(directory: Directory, emulated: Emulated) -> None:
    _, sso, clock = emulated("in_progress=1s,failed=1")
    started = sso.create_account_assignment(**_params(directory, directory.users[0]))
    request_id = started["AccountAssignmentCreationStatus"]["RequestId"]
    clock.now = 5.0
    status = _creation(sso, directory, request_id)
    assert status["Status"] == "FAILED"
    assert status["FailureReason"] in emulated_async._REASONS["create"]
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []


def test_a_failed_delete_leaves_the_assignment(directory: Directory, emulated: Emulated) -> None:
    user = directory.users[0]
    directory.sso.create_account_assignment(**_params(directory, user))
    _, sso, clock = emulated("in_progress=1s,failed=1")
    started = sso.delete_account_assignment(**_params(directory, user))
    request_id = started["AccountAssignmentDeletionStatus"]["RequestId"]
    assert started["AccountAssignmentDeletionStatus"]["Status"] == "IN_PROGRESS"
    clock.now = 1.0
    status = _deletion(sso, directory, request_id)
    assert (status["Status"], status["FailureReason"]) == ("FAILED", emulated_async.INTERNAL_ERROR)
    assert len(directory.assignments(ACCOUNT, directory.permission_set_arn)) == 1


def test_delete_succeeds_later_and_an_absent_one_is_not_found(
    directory: Directory, emulated: Emulated
) -> None:
    user = directory.users[0]
    _, sso, clock = emulated("in_progress=1s")
    with pytest.raises(ClientError) as caught:
        sso.delete_account_assignment(**_params(directory, user))
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    directory.sso.create_account_assignment(**_params(directory, user))
    started = sso.delete_account_assignment(**_params(directory, user))
    assert len(directory.assignments(ACCOUNT, directory.permission_set_arn)) == 1  # still there
    clock.now = 1.0
    request_id = started["AccountAssignmentDeletionStatus"]["RequestId"]
    assert _deletion(sso, directory, request_id)["Status"] == "SUCCEEDED"
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []
    listed = sso.list_account_assignment_deletion_status(InstanceArn=directory.instance_arn)
    assert [r["Status"] for r in listed["AccountAssignmentsDeletionStatus"]] == ["SUCCEEDED"]


def test_provisioning_stays_in_progress(directory: Directory, emulated: Emulated) -> None:
    _, sso, clock = emulated("in_progress=1s")
    started = sso.provision_permission_set(
        InstanceArn=directory.instance_arn,
        PermissionSetArn=directory.permission_set_arn,
        TargetType="AWS_ACCOUNT",
        TargetId=ACCOUNT,
    )["PermissionSetProvisioningStatus"]
    assert started["Status"] == "IN_PROGRESS" and started["AccountId"] == ACCOUNT

    def status() -> str:
        found: str = sso.describe_permission_set_provisioning_status(
            InstanceArn=directory.instance_arn, ProvisionPermissionSetRequestId=started["RequestId"]
        )["PermissionSetProvisioningStatus"]["Status"]
        return found

    assert status() == "IN_PROGRESS"
    clock.now = 1.0
    assert status() == "SUCCEEDED"


# --- Grantflow through it ------------------------------------------------------------------


def _spec(d: Directory, user: str) -> AccountAssignmentSpec:
    return AccountAssignmentSpec(
        instance_arn=d.instance_arn,
        identity_store_id=d.identity_store_id,
        principal_id=user,
        account_id=ACCOUNT,
        permission_set_arn=d.permission_set_arn,
    )


def _factory_and_settings(
    boto_session: boto3.Session, spec: str
) -> tuple[AsyncEmulator, ClientFactory, GrantSettings]:
    clock = FakeClock()
    emulator = AsyncEmulator(AsyncSpec.parse(spec), clock=clock, background=False)
    factory = ClientFactory(boto_session, settings=ClientSettings(emulated_async=emulator))
    waiter = Waiter(timeout=60.0, interval=0.5, clock=clock, sleep=clock.sleep)
    return emulator, factory, GrantSettings(waiter=waiter)


def test_grant_and_revoke_poll_until_done(
    directory: Directory, boto_session: boto3.Session
) -> None:
    emulator, factory, settings = _factory_and_settings(boto_session, "in_progress=2s")
    user = directory.users[0]
    limiter = IdentityCenterLimiter()
    handle = apply_grant(factory, _spec(directory, user), limiter, settings=settings)
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == [handle.assignment]
    assert emulator.counts["create_succeeded"] == 1 and emulator.counts["status_reads"] >= 1
    outcome = apply_revoke(factory, handle, False, limiter, settings=settings)
    assert outcome.status is RevokeStatus.REVOKED
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []
    assert emulator.counts["delete_succeeded"] == 1


def test_the_board_learns_how_long_operations_take(
    directory: Directory, boto_session: boto3.Session
) -> None:
    """A fresh board looks after its interval (0.5 s), then every gap (0.25 s), until the
    2-s operation is done; what it saw moves its first look towards 2 s, so the next grants
    are looked at fewer times."""
    emulator, factory, settings = _factory_and_settings(boto_session, "in_progress=2s")
    limiter = IdentityCenterLimiter()
    polls: list[int] = []
    for user in directory.users:
        before = factory.calls.counts().get(_DESCRIBE_CREATION, 0)
        apply_grant(factory, _spec(directory, user), limiter, settings=settings)
        polls.append(factory.calls.counts().get(_DESCRIBE_CREATION, 0) - before)
    assert emulator.counts["create_succeeded"] == len(directory.users)
    assert polls == [7, 3, 2]  # 0.5, 0.75 … 2.0; then a learnt first look and fewer rechecks


def test_a_failed_grant_raises_and_leaves_nothing(
    directory: Directory, boto_session: boto3.Session
) -> None:
    _, factory, settings = _factory_and_settings(boto_session, "in_progress=1s,failed=1")
    with pytest.raises(OperationFailed) as caught:
        apply_grant(factory, _spec(directory, directory.users[1]), IdentityCenterLimiter(),
                    settings=settings)  # fmt: skip
    assert caught.value.failure_reason in emulated_async._REASONS["create"]
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []


def _seed_failing_first_then_succeeding() -> int:
    for seed in range(1000):
        probe = AsyncEmulator(AsyncSpec(failed=0.5, seed=seed), background=False)
        if probe.will_fail("create", 1)[0] and not probe.will_fail("create", 2)[0]:
            return seed
    raise AssertionError("no such seed")


def test_the_grant_job_retries_a_failed_operation(
    directory: Directory, boto_session: boto3.Session
) -> None:
    """The connector reports a FAILED operation as retryable; the job is queued again and its
    second attempt grants. The grant is never reported as done while it failed."""
    seed = _seed_failing_first_then_succeeding()
    emulator, factory, settings = _factory_and_settings(
        boto_session, f"in_progress=1s,failed=0.5,seed={seed}"
    )
    shared = Shared(factory, grant_settings=settings)
    seen: list[bool] = []
    ctx = JobContext(connector_id="gfc-test", aws=factory, shared=shared,
                     report_pre_existing=seen.append)  # fmt: skip
    payload: dict[str, Any] = {
        "grant_id": "g-1",
        "management_role_arn": "arn:aws:iam::123456789012:role/grantflow-management",
        "spec": _spec(directory, directory.users[2]).model_dump(mode="json"),
        "tuple_key": "t",
    }
    with pytest.raises(JobFailure) as caught:
        grant(ctx, GrantPayload.model_validate(payload))
    assert caught.value.retryable and "failed" in caught.value.message
    assert directory.assignments(ACCOUNT, directory.permission_set_arn) == []
    retry = after_failure(1, 8, caught.value.retryable, utcnow(), caught.value.message)
    assert retry.state is JobState.QUEUED
    payload["spec"] = {**payload["spec"], "known_pre_existing": seen[0]}  # as the server does
    result = grant(ctx, GrantPayload.model_validate(payload))
    assert result.handle["pre_existing"] is False
    assert len(directory.assignments(ACCOUNT, directory.permission_set_arn)) == 1
    assert (emulator.counts["create_failed"], emulator.counts["create_succeeded"]) == (1, 1)


def test_a_create_of_an_existing_assignment_is_counted(
    directory: Directory, emulated: Emulated
) -> None:
    """Identity Center keeps one copy; moto would keep two: the emulator counts such creates
    (Grantflow should never send one) and still sends them, so the hardening runs see them."""
    user = directory.users[0]
    directory.sso.create_account_assignment(**_params(directory, user))
    emulator, sso, clock = emulated("in_progress=1s")
    started = sso.create_account_assignment(**_params(directory, user))
    clock.now = 1.0
    request_id = started["AccountAssignmentCreationStatus"]["RequestId"]
    assert _creation(sso, directory, request_id)["Status"] == "SUCCEEDED"
    assert emulator.counts["create_of_existing"] == 1
    assert len(directory.assignments(ACCOUNT, directory.permission_set_arn)) == 2
