"""Shared status rounds for account assignment operations, with botocore's Stubber.

moto 5.2.5 answers every assignment operation ``SUCCEEDED`` at once and implements neither
``ListAccountAssignmentCreationStatus`` nor ``ListAccountAssignmentDeletionStatus``: the
IN_PROGRESS rounds are tested here on the real response shapes (the Stubber validates every
response against the service model), each test pinning the exact calls a round makes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from grantflow.aws import identity_center as ic_api
from grantflow.aws.assignment_reads import AssignmentReads
from grantflow.aws.assignment_status import CREATION, DELETION, StatusBoard, poll_once
from grantflow.aws.grants import GrantSettings, apply_assignment_grant
from grantflow.aws.identity_center import IdentityCenter, OperationFailed, Waiter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.domain.grant_specs import AccountAssignmentSpec, Assignment
from tests.aws.grants.conftest import FakeClock

INSTANCE = "arn:aws:sso:::instance/ssoins-7223a3b4c5d6e7f8"
PS = "arn:aws:sso:::permissionSet/ssoins-7223a3b4c5d6e7f8/ps-0123456789abcdef"
ACCOUNT = "111122223333"
USERS = (
    "906715a4e2-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
    "906715a4e2-1b1c2d3e-4f50-6172-8394-a5b6c7d8e9f1",
    "906715a4e2-2b1c2d3e-4f50-6172-8394-a5b6c7d8e9f2",
)
REQUESTS = (
    "0f3b6c1e-8c3a-4f65-9a5d-2b7e4c9d1a00",
    "0f3b6c1e-8c3a-4f65-9a5d-2b7e4c9d1a01",
    "0f3b6c1e-8c3a-4f65-9a5d-2b7e4c9d1a02",
)
CREATED = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
Stubbed = tuple[IdentityCenter, Stubber]


@pytest.fixture(scope="module")
def factory() -> ClientFactory:
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return ClientFactory(session)


def _ic(factory: ClientFactory, waiter: Waiter, board: StatusBoard | None = None) -> IdentityCenter:
    return IdentityCenter(
        factory=factory,
        instance_arn=INSTANCE,
        limiter=IdentityCenterLimiter(),
        waiter=waiter,
        statuses=board,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stubbed(factory: ClientFactory, clock: FakeClock) -> Iterator[Stubbed]:
    waiter = Waiter(timeout=30.0, interval=1.0, clock=clock, sleep=clock.sleep)
    with Stubber(factory.client("sso-admin")) as stubber:
        yield _ic(factory, waiter, StatusBoard()), stubber
        stubber.assert_no_pending_responses()


def _status(status: str, request: str, user: str = USERS[0], **extra: str) -> dict[str, object]:
    return {
        "Status": status,
        "RequestId": request,
        "TargetId": ACCOUNT,
        "TargetType": "AWS_ACCOUNT",
        "PermissionSetArn": PS,
        "PrincipalType": "USER",
        "PrincipalId": user,
        "CreatedDate": CREATED,
        **extra,
    }


def _list(stubber: Stubber, kind: str, status: str, *requests: str) -> None:
    operation = f"list_account_assignment_{kind}_status"
    key = (
        "AccountAssignmentsCreationStatus"
        if kind == "creation"
        else "AccountAssignmentsDeletionStatus"
    )
    stubber.add_response(
        operation,
        {key: [{"Status": status, "RequestId": r, "CreatedDate": CREATED} for r in requests]},
        {"InstanceArn": INSTANCE, "Filter": {"Status": status}, "MaxResults": 100},
    )


def _describe(stubber: Stubber, kind: str, status: str, request: str, **extra: str) -> None:
    key = (
        "AccountAssignmentCreationStatus"
        if kind == "creation"
        else "AccountAssignmentDeletionStatus"
    )
    param = (
        "AccountAssignmentCreationRequestId"
        if kind == "creation"
        else "AccountAssignmentDeletionRequestId"
    )
    stubber.add_response(
        f"describe_account_assignment_{kind}_status",
        {key: _status(status, request, **extra)},
        {"InstanceArn": INSTANCE, param: request},
    )


def test_one_list_call_answers_for_every_pending_request(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    seen = dict.fromkeys(REQUESTS, True)  # all listed IN_PROGRESS by an earlier round
    _list(stubber, "creation", "IN_PROGRESS", REQUESTS[2], "5b1e0d2c-7a3f-4e6b-9c8d-0a1b2c3d4e5f")
    _list(stubber, "creation", "FAILED", REQUESTS[1])
    _describe(stubber, "creation", "FAILED", REQUESTS[1], FailureReason="Access denied by IAM")
    found = poll_once(ic, CREATION, seen)
    assert found.listed == {REQUESTS[2]}
    assert found.finished[REQUESTS[0]]["Status"] == "SUCCEEDED"
    assert found.finished[REQUESTS[1]]["FailureReason"] == "Access denied by IAM"
    assert REQUESTS[2] not in found.finished


def test_a_request_never_listed_is_described_not_assumed_done(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _list(stubber, "deletion", "IN_PROGRESS", REQUESTS[0])
    _describe(stubber, "deletion", "IN_PROGRESS", REQUESTS[1])  # not listed yet: still going
    found = poll_once(ic, DELETION, {REQUESTS[0]: False, REQUESTS[1]: False})
    assert found.listed == {REQUESTS[0]}
    assert found.finished == {}


def test_a_single_pending_request_is_described(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _describe(stubber, "creation", "SUCCEEDED", REQUESTS[0])
    assert poll_once(ic, CREATION, {REQUESTS[0]: True}).finished[REQUESTS[0]]["Status"] == (
        "SUCCEEDED"
    )


def test_one_finished_request_is_described_instead_of_listing_failures(stubbed: Stubbed) -> None:
    ic, stubber = stubbed
    _list(stubber, "creation", "IN_PROGRESS", REQUESTS[1])
    _describe(stubber, "creation", "SUCCEEDED", REQUESTS[0])
    found = poll_once(ic, CREATION, {REQUESTS[0]: True, REQUESTS[1]: True})
    assert set(found.finished) == {REQUESTS[0]}


def _create(stubber: Stubber, user: str, request: str) -> None:
    stubber.add_response(
        "create_account_assignment",
        {"AccountAssignmentCreationStatus": _status("IN_PROGRESS", request, user)},
        {
            "InstanceArn": INSTANCE,
            "TargetId": ACCOUNT,
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": PS,
            "PrincipalType": "USER",
            "PrincipalId": user,
        },
    )


def test_a_create_waits_through_the_board(stubbed: Stubbed, clock: FakeClock) -> None:
    ic, stubber = stubbed
    _create(stubber, USERS[0], REQUESTS[0])
    _describe(stubber, "creation", "IN_PROGRESS", REQUESTS[0])
    _describe(stubber, "creation", "FAILED", REQUESTS[0], FailureReason="Internal failure")
    with pytest.raises(OperationFailed, match="Internal failure"):
        ic_api.create_assignment(ic, Assignment(ACCOUNT, PS, USERS[0]))
    # first look once the estimate (the interval, on a fresh board) has passed, the next
    # one a gap (half the interval) later
    assert clock.now == 1.5


def _wait_together(
    factory: ClientFactory, board: StatusBoard, requests: tuple[str, ...]
) -> dict[str, str | None]:
    """Wait for ``requests`` in one thread each; every thread registers before the first
    round (each one's first nap waits for the others), then a shared fake clock runs."""
    clock, lock = FakeClock(), threading.Lock()
    registered = threading.Barrier(len(requests), timeout=30)
    synced: set[int] = set()

    def sleep(seconds: float) -> None:
        if threading.get_ident() not in synced:
            synced.add(threading.get_ident())
            registered.wait()
        with lock:
            clock.now += seconds

    ic = _ic(factory, Waiter(timeout=30.0, interval=1.0, clock=clock, sleep=sleep), board)
    results: dict[str, str | None] = {}

    def wait(request: str) -> None:
        final = board.wait(ic, CREATION, request, deadline=30.0)
        results[request] = None if final is None else str(final["Status"])

    threads = [threading.Thread(target=wait, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_waiting_operations_share_each_round(factory: ClientFactory) -> None:
    board = StatusBoard()
    with Stubber(factory.client("sso-admin")) as stubber:
        _list(stubber, "creation", "IN_PROGRESS", *REQUESTS)  # round 1: all three listed
        _list(stubber, "creation", "IN_PROGRESS", REQUESTS[2])  # round 2: two finished
        _list(stubber, "creation", "FAILED")
        _describe(stubber, "creation", "SUCCEEDED", REQUESTS[2])  # round 3: the last one
        results = _wait_together(factory, board, REQUESTS)
        stubber.assert_no_pending_responses()
    assert results == dict.fromkeys(REQUESTS, "SUCCEEDED")
    assert board.rounds == 3  # 4 calls for 3 operations, instead of one Describe each a round


def test_a_throttled_round_is_tried_again(factory: ClientFactory) -> None:
    """A round that AWS throttles answers nothing: its operations stay waiting and the next
    round (a gap later) finds them finished."""
    board = StatusBoard()
    with Stubber(factory.client("sso-admin")) as stubber:
        stubber.add_client_error(
            "list_account_assignment_creation_status",
            "ThrottlingException",
            http_status_code=400,
        )
        _list(stubber, "creation", "IN_PROGRESS")  # the next round: both gone
        _list(stubber, "creation", "FAILED")
        results = _wait_together(factory, board, REQUESTS[:2])
        stubber.assert_no_pending_responses()
    assert results == dict.fromkeys(REQUESTS[:2], "SUCCEEDED")
    assert board.rounds == 2


def test_a_role_without_list_permission_goes_back_to_describing(factory: ClientFactory) -> None:
    board = StatusBoard()
    with Stubber(factory.client("sso-admin")) as stubber:
        stubber.add_client_error(
            "list_account_assignment_creation_status",
            "AccessDeniedException",
            http_status_code=400,
        )
        _describe(stubber, "creation", "SUCCEEDED", REQUESTS[0])
        _describe(stubber, "creation", "SUCCEEDED", REQUESTS[1])
        results = _wait_together(factory, board, REQUESTS[:2])
        stubber.assert_no_pending_responses()
    assert results == dict.fromkeys(REQUESTS[:2], "SUCCEEDED")


def _list_assignments(stubber: Stubber, *users: str) -> None:
    stubber.add_response(
        "list_account_assignments",
        {
            "AccountAssignments": [
                {
                    "AccountId": ACCOUNT,
                    "PermissionSetArn": PS,
                    "PrincipalType": "USER",
                    "PrincipalId": user,
                }
                for user in users
            ]
        },
        {"InstanceArn": INSTANCE, "AccountId": ACCOUNT, "PermissionSetArn": PS},
    )


def test_a_create_racing_another_create_is_ours_not_pre_existing(
    factory: ClientFactory, clock: FakeClock
) -> None:
    """The shared read found the assignment absent; meanwhile another create of the same tuple
    (another connector replica's grant) is in progress, so ours answers ConflictException.
    The grant waits, finds the assignment, and keeps what it saw before anything existed:
    not pre-existing — it is Grantflow's, and its revoke removes it (the control plane's
    reference counting keeps it while the other grant lives)."""
    waiter = Waiter(timeout=30.0, interval=1.0, clock=clock, sleep=clock.sleep)
    settings = GrantSettings(waiter=waiter, reads=AssignmentReads(gather_seconds=0))
    spec = AccountAssignmentSpec(
        instance_arn=INSTANCE,
        identity_store_id="d-9067abcdef",
        principal_id=USERS[0],
        account_id=ACCOUNT,
        permission_set_arn=PS,
    )
    reported: list[bool] = []
    with Stubber(factory.client("sso-admin")) as stubber:
        _list_assignments(stubber, USERS[1])  # the shared read: absent (another user's only)
        stubber.add_client_error(
            "create_account_assignment",
            service_error_code="ConflictException",
            service_message="Another operation is in progress for the same account assignment.",
            http_status_code=409,
        )
        _list_assignments(stubber, USERS[1], USERS[0])  # the other create has finished
        handle = apply_assignment_grant(
            factory,
            spec,
            IdentityCenterLimiter(),
            settings=settings,
            report_pre_existing=reported.append,
        )
        stubber.assert_no_pending_responses()
    assert reported == [False]  # reported before the create was tried
    assert handle.pre_existing is False
    assert handle.assignment == Assignment(ACCOUNT, PS, USERS[0])


class _CountingLimiter(IdentityCenterLimiter):
    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    def take(self, instance_arn: str) -> float:
        self.taken += 1
        return super().take(instance_arn)


def test_a_listing_takes_one_token_per_page_fetched(factory: ClientFactory) -> None:
    """The end of a listing is no call: a token taken for it would make every one-page
    listing (each status round's) cost two of Identity Center's 20 calls a second."""
    limiter = _CountingLimiter()
    ic = IdentityCenter(factory=factory, instance_arn=INSTANCE, limiter=limiter)
    with Stubber(factory.client("sso-admin")) as stubber:
        _list(stubber, "creation", "IN_PROGRESS", REQUESTS[0])
        _describe(stubber, "creation", "SUCCEEDED", REQUESTS[1])  # gone from the list
        found = poll_once(ic, CREATION, {REQUESTS[0]: True, REQUESTS[1]: True})
        stubber.assert_no_pending_responses()
    assert set(found.finished) == {REQUESTS[1]}
    assert limiter.taken == 2  # the list's one page and the Describe
