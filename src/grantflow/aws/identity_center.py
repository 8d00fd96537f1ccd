"""IAM Identity Center: account assignments and Grantflow's pooled permission sets.

Assignments and permission-set provisioning are asynchronous in AWS: each create/delete returns
a request whose status is polled until ``SUCCEEDED`` or ``FAILED``, always against a deadline.
Errors, besides the tree in :mod:`grantflow.aws.errors`::

    AwsError
    ├── OperationFailed            -- AWS reported FAILED (``failure_reason`` says why)
    ├── OperationTimedOut          -- still in progress (or conflicting) at the deadline
    └── QuotaExceeded
        └── PermissionSetQuotaExceeded -- creating one more would pass the configured maximum

Every call takes a token from the shared :class:`IdentityCenterLimiter`; every assignment
create/delete holds one of its in-flight slots until its status is final.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from botocore import xform_name
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from grantflow.aws import assignment_status, registry
from grantflow.aws.assignment_status import (
    CREATION,
    DELETION,
    IN_PROGRESS,
    StatusBoard,
    StatusKind,
    in_progress_on,
)
from grantflow.aws.errors import (
    AwsError,
    Conflict,
    NotFound,
    QuotaExceeded,
    translate,
)
from grantflow.aws.pooled_policies import SESSION_DURATION
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.aws.waiting import OperationTimedOut, Waiter
from grantflow.domain.grant_specs import Assignment

log = structlog.get_logger(__name__)

DEFAULT_MAX_PERMISSION_SETS = 500  # AWS's default quota per instance
MANAGED_TAGS = ({"Key": registry.MANAGED_TAG_KEY, "Value": registry.MANAGED_TAG_VALUE},)
USER = "USER"
_TARGET = {"TargetType": "AWS_ACCOUNT"}


class OperationFailed(AwsError):
    def __init__(self, message: str, *, action: str, failure_reason: str) -> None:
        super().__init__(message, action=action)
        self.failure_reason = failure_reason


class PermissionSetQuotaExceeded(QuotaExceeded):
    def __init__(self, message: str, *, count: int, maximum: int) -> None:
        super().__init__(message, action="sso:CreatePermissionSet")
        self.count = count
        self.maximum = maximum


class PermissionSetCache:
    """Permission set name → ARN per instance; thread safe; one per connector process.

    Loaded once per instance from ListPermissionSets + DescribePermissionSet; kept current by
    this process's own creates and deletes. Other writers are detected when AWS answers
    ``ConflictException`` (name taken) or ``ResourceNotFoundException`` (gone); callers then
    :meth:`forget` the instance and look again.
    """

    def __init__(self) -> None:
        self._names: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def names(self, instance_arn: str) -> dict[str, str] | None:
        with self._lock:
            found = self._names.get(instance_arn)
            return dict(found) if found is not None else None

    def load(self, instance_arn: str, names: dict[str, str]) -> None:
        with self._lock:
            self._names[instance_arn] = dict(names)

    def put(self, instance_arn: str, name: str, arn: str) -> None:
        with self._lock:
            self._names.setdefault(instance_arn, {})[name] = arn

    def remove(self, instance_arn: str, name: str) -> None:
        with self._lock:
            self._names.get(instance_arn, {}).pop(name, None)

    def forget(self, instance_arn: str) -> None:
        with self._lock:
            self._names.pop(instance_arn, None)


@dataclass(frozen=True)
class IdentityCenter:
    """One Identity Center instance as seen through one factory, with the shared limits."""

    factory: ClientFactory
    instance_arn: str
    identity_store_id: str = ""  # needed for group memberships only
    region: str | None = None
    limiter: IdentityCenterLimiter = field(default_factory=IdentityCenterLimiter)
    waiter: Waiter = field(default_factory=Waiter)
    cache: PermissionSetCache = field(default_factory=PermissionSetCache)
    max_permission_sets: int = DEFAULT_MAX_PERMISSION_SETS
    # Shared status rounds for assignment operations; None polls each request on its own.
    statuses: StatusBoard | None = None

    def client(self, service: str) -> BaseClient:
        return self.factory.client(service, region=self.region)

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One rate-limited call; botocore errors come out translated."""
        self.limiter.take(self.instance_arn)
        method = getattr(self.client(service), xform_name(operation))
        try:
            result: dict[str, Any] = method(**params)
        except (ClientError, BotoCoreError) as e:
            action = registry.operation_to_action(service, operation)
            raise translate(e, action=action, role_arn=self.factory.role_arn) from e
        return result

    def pages(self, service: str, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a paginated operation, one rate-limit token per page fetched (none
        for the end of the listing: botocore stops without a call after a page that names no
        next page, and a token taken for that would cost every listing a second one)."""
        paginator = self.client(service).get_paginator(xform_name(operation))
        pages = iter(paginator.paginate(**params))
        page: dict[str, Any] | None = None
        while page is None or page.get("NextToken"):
            self.limiter.take(self.instance_arn)
            try:
                page = next(pages)
            except StopIteration:
                return
            except (ClientError, BotoCoreError) as e:
                action = registry.operation_to_action(service, operation)
                raise translate(e, action=action, role_arn=self.factory.role_arn) from e
            yield page

    def sso(self, operation: str, **params: Any) -> dict[str, Any]:
        return self.call("sso-admin", operation, InstanceArn=self.instance_arn, **params)


# --- asynchronous status polling -----------------------------------------------------------


def _check_final(status: dict[str, Any], what: str, action: str) -> None:
    if status.get("Status") == "FAILED":
        reason = str(status.get("FailureReason", "no reason given"))
        raise OperationFailed(f"{what} failed: {reason}", action=action, failure_reason=reason)
    if status.get("Status") != "SUCCEEDED":
        raise AwsError(f"{what}: unexpected status {status.get('Status')!r}", action=action)


def _await_assignment(
    ic: IdentityCenter, status: dict[str, Any], kind: StatusKind, deadline: float, what: str
) -> None:
    """Wait for an assignment operation: through the shared status rounds when there are
    some, else polling this request alone."""
    if ic.statuses is None or status.get("Status") != "IN_PROGRESS":
        describe = (kind.describe, kind.request_param, kind.status_key)
        _await_status(ic, status, describe, deadline, what)
        return
    action = registry.operation_to_action("sso-admin", kind.describe)
    final = ic.statuses.wait(ic, kind, str(status["RequestId"]), deadline)
    if final is None:
        raise OperationTimedOut(
            f"{what} did not finish within {ic.waiter.timeout:g}s", action=action
        )
    _check_final(final, what, action)


def _await_status(
    ic: IdentityCenter,
    status: dict[str, Any],
    describe: tuple[str, str, str],
    deadline: float,
    what: str,
) -> None:
    """Poll ``describe = (operation, request id parameter, status key)`` until final."""
    operation, id_param, key = describe
    action = registry.operation_to_action("sso-admin", operation)
    while status.get("Status") == "IN_PROGRESS":
        ic.waiter.pause(deadline, what, action)
        status = ic.sso(operation, **{id_param: status["RequestId"]})[key]
    _check_final(status, what, action)


# --- account assignments -------------------------------------------------------------------


def _assignment_rows(
    ic: IdentityCenter, account_id: str, permission_set_arn: str
) -> Iterator[tuple[str, str]]:
    """``(principal type, principal id)`` of every assignment of the set in the account."""
    for page in ic.pages(
        "sso-admin",
        "ListAccountAssignments",
        InstanceArn=ic.instance_arn,
        AccountId=account_id,
        PermissionSetArn=permission_set_arn,
    ):
        for row in page.get("AccountAssignments", []):
            yield str(row["PrincipalType"]), str(row["PrincipalId"])


def list_assignments(
    ic: IdentityCenter, account_id: str, permission_set_arn: str
) -> frozenset[Assignment]:
    """The user assignments of ``permission_set_arn`` in ``account_id``."""
    return frozenset(
        Assignment(account_id, permission_set_arn, principal_id)
        for kind, principal_id in _assignment_rows(ic, account_id, permission_set_arn)
        if kind == USER
    )


def assignment_exists(ic: IdentityCenter, assignment: Assignment) -> bool:
    return assignment in list_assignments(ic, assignment.account_id, assignment.permission_set_arn)


def _assignment_params(assignment: Assignment) -> dict[str, str]:
    return {
        **_TARGET,
        "TargetId": assignment.account_id,
        "PermissionSetArn": assignment.permission_set_arn,
        "PrincipalType": USER,
        "PrincipalId": assignment.principal_id,
    }


def _started(ic: IdentityCenter, response: dict[str, Any], kind: StatusKind) -> dict[str, Any]:
    """The status a create/delete answered, its request's tuple remembered for :func:`_settle`."""
    status: dict[str, Any] = response[kind.status_key]
    about = assignment_status.assignment_of(status)
    if ic.statuses is not None and about is not None and status.get("RequestId"):
        ic.statuses.remember(str(status["RequestId"]), about)
    return status


def _wait_out(
    ic: IdentityCenter,
    assignment: Assignment,
    deadline: float,
    what: str,
    kinds: tuple[StatusKind, ...] = (CREATION, DELETION),
) -> bool | None:
    """Wait until no operation of ``kinds`` on the assignment's tuple is in progress: True
    when there was one, None when the role may not list them.

    An assignment's create or delete that AWS is still working on — another process's, or
    this one's whose answer was lost (AWS did the work, the caller saw an error, botocore sent
    it again and got ``ConflictException``) — lands later: deciding "absent, create again"
    or "absent, nothing to delete" before it has landed makes a second copy (moto keeps
    both) or leaves access behind. So the tuple's operations are found with the status APIs
    (:func:`~grantflow.aws.assignment_status.in_progress_on`) and waited for; their own
    verdicts do not matter, only that they are final. A listing that fails (a role without
    the List permission, an emulator without the operation, AWS failing) answers None: the
    caller then decides as it did before (after one interval for a conflict)."""
    try:
        pending = in_progress_on(ic, assignment, kinds, ic.statuses)
    except AwsError as err:
        log.warning("ic_tuple_operations_unknown", operation=kinds[0].list_operation,
                    error=str(err))  # fmt: skip
        return None
    for kind, request_id in pending:
        with contextlib.suppress(OperationFailed):  # final: what exists now says what it did
            _await_assignment(
                ic, {"Status": IN_PROGRESS, "RequestId": request_id}, kind, deadline, what
            )
    return bool(pending)


def _settle(ic: IdentityCenter, assignment: Assignment, deadline: float, what: str) -> None:
    """After ``ConflictException``: wait out the tuple's operations in progress; when none
    is found (it ended meanwhile, or the role may not list them) wait one interval."""
    if not _wait_out(ic, assignment, deadline, what):
        action = registry.operation_to_action("sso-admin", CREATION.describe)
        ic.waiter.pause(deadline, what, action)


def create_assignment(ic: IdentityCenter, assignment: Assignment) -> None:
    """Create the assignment and wait until it exists; idempotent.

    ``ConflictException`` (another operation on the same tuple is in progress) waits until the
    tuple's operations are final (:func:`_settle`), then looks again: done if the assignment
    now exists, else it creates again (until the deadline).
    """
    what = f"assigning {assignment.permission_set_arn} in {assignment.account_id}"
    with ic.limiter.operation(ic.instance_arn):
        deadline = ic.waiter.deadline()
        while True:
            try:
                response = ic.sso("CreateAccountAssignment", **_assignment_params(assignment))
            except Conflict:
                _settle(ic, assignment, deadline, what)
                if assignment_exists(ic, assignment):
                    return
                continue
            _await_assignment(ic, _started(ic, response, CREATION), CREATION, deadline, what)
            return


def delete_assignment(ic: IdentityCenter, assignment: Assignment) -> bool:
    """Delete the assignment and wait until it is gone; False when it was already absent.

    ``ConflictException`` settles the tuple (:func:`_settle`) and deletes again while it
    exists. ``ResourceNotFoundException`` is checked against the tuple's creates in progress:
    one that lands after this revoke would leave the access in place, so it is waited for
    and the delete sent again."""
    what = f"removing {assignment.permission_set_arn} in {assignment.account_id}"
    with ic.limiter.operation(ic.instance_arn):
        deadline = ic.waiter.deadline()
        while True:
            try:
                response = ic.sso("DeleteAccountAssignment", **_assignment_params(assignment))
            except NotFound:
                if _wait_out(ic, assignment, deadline, what, (CREATION,)):
                    continue
                return False
            except Conflict:
                _settle(ic, assignment, deadline, what)
                if not assignment_exists(ic, assignment):
                    return False
                continue
            _await_assignment(ic, _started(ic, response, DELETION), DELETION, deadline, what)
            return True


# --- permission sets -----------------------------------------------------------------------


def _load_names(ic: IdentityCenter) -> dict[str, str]:
    names = ic.cache.names(ic.instance_arn)
    if names is not None:
        return names
    loaded: dict[str, str] = {}
    for page in ic.pages("sso-admin", "ListPermissionSets", InstanceArn=ic.instance_arn):
        for arn in page.get("PermissionSets", []):
            described = ic.sso("DescribePermissionSet", PermissionSetArn=arn)["PermissionSet"]
            loaded[str(described["Name"])] = str(arn)
    ic.cache.load(ic.instance_arn, loaded)
    return loaded


def find_permission_set(ic: IdentityCenter, name: str, *, refresh: bool = False) -> str | None:
    """The ARN of the permission set called ``name``, or None."""
    if refresh:
        ic.cache.forget(ic.instance_arn)
    return _load_names(ic).get(name)


def permission_set_exists(ic: IdentityCenter, permission_set_arn: str) -> bool:
    """Whether the permission set itself exists (DescribePermissionSet): the one answer
    that means "deleted" on AWS and on the emulator alike; listing its assignments does not
    (the emulator answers an empty list for a deleted set)."""
    try:
        ic.sso("DescribePermissionSet", PermissionSetArn=permission_set_arn)
    except NotFound:
        return False
    return True


def count_permission_sets(ic: IdentityCenter) -> int:
    return len(_load_names(ic))


def create_permission_set(ic: IdentityCenter, name: str, description: str) -> str:
    """Create a Grantflow-tagged permission set (the template allows no other); its ARN.

    Refuses with :class:`PermissionSetQuotaExceeded` when the instance already holds
    ``max_permission_sets``. If the name is taken meanwhile, returns the existing one.
    """
    count = count_permission_sets(ic)
    if count >= ic.max_permission_sets:
        raise PermissionSetQuotaExceeded(
            f"cannot create permission set {name}: the Identity Center instance already has "
            f"{count} permission sets and Grantflow is configured to stop at "
            f"{ic.max_permission_sets}; revoke unused grants or raise the limit (and the AWS "
            "quota 'Permission sets allowed per Identity Center instance')",
            count=count,
            maximum=ic.max_permission_sets,
        )
    try:
        created = ic.sso(
            "CreatePermissionSet",
            Name=name,
            Description=description,
            SessionDuration=SESSION_DURATION,
            Tags=[dict(tag) for tag in MANAGED_TAGS],
        )["PermissionSet"]
    except Conflict:
        existing = find_permission_set(ic, name, refresh=True)
        if existing is None:
            raise
        return existing
    arn = str(created["PermissionSetArn"])
    ic.cache.put(ic.instance_arn, name, arn)
    return arn


def get_inline_policy(ic: IdentityCenter, permission_set_arn: str) -> str:
    """The inline policy text ("" when none); NotFound when the permission set is gone."""
    found = ic.sso("GetInlinePolicyForPermissionSet", PermissionSetArn=permission_set_arn)
    return str(found.get("InlinePolicy") or "")


def put_inline_policy(ic: IdentityCenter, permission_set_arn: str, policy: str) -> None:
    ic.sso(
        "PutInlinePolicyToPermissionSet",
        PermissionSetArn=permission_set_arn,
        InlinePolicy=policy,
    )


_PROVISIONING = (
    "DescribePermissionSetProvisioningStatus",
    "ProvisionPermissionSetRequestId",
    "PermissionSetProvisioningStatus",
)


def provision_permission_set(ic: IdentityCenter, permission_set_arn: str, account_id: str) -> None:
    """Provision (or re-provision after a policy change) to one account and wait."""
    what = f"provisioning {permission_set_arn} to {account_id}"
    with ic.limiter.operation(ic.instance_arn):
        deadline = ic.waiter.deadline()
        response = ic.sso(
            "ProvisionPermissionSet",
            PermissionSetArn=permission_set_arn,
            TargetType="AWS_ACCOUNT",
            TargetId=account_id,
        )
        _await_status(ic, response[_PROVISIONING[2]], _PROVISIONING, deadline, what)


def provisioned_accounts(ic: IdentityCenter, permission_set_arn: str) -> frozenset[str]:
    accounts: set[str] = set()
    for page in ic.pages(
        "sso-admin",
        "ListAccountsForProvisionedPermissionSet",
        InstanceArn=ic.instance_arn,
        PermissionSetArn=permission_set_arn,
    ):
        accounts.update(str(account) for account in page.get("AccountIds", []))
    return frozenset(accounts)


def assignments_using(
    ic: IdentityCenter, permission_set_arn: str, accounts: Iterable[str]
) -> frozenset[tuple[str, str, str]]:
    """``(account, principal type, principal id)`` of every assignment (users AND groups) of
    the permission set in the accounts it is provisioned to and in ``accounts``."""
    found: set[tuple[str, str, str]] = set()
    for account in sorted(provisioned_accounts(ic, permission_set_arn) | set(accounts)):
        for kind, principal in _assignment_rows(ic, account, permission_set_arn):
            found.add((account, kind, principal))
    return frozenset(found)


def delete_permission_set(
    ic: IdentityCenter, name: str, permission_set_arn: str, accounts: Iterable[str] = ()
) -> bool:
    """Delete the permission set; False when it is already gone or in use again.

    AWS refuses with ``ConflictException`` while the set is still assigned or still being
    deprovisioned after its last assignment went: that waits, and gives up (False) if an
    assignment uses the set again (a concurrent grant), else tries again until the deadline.
    """
    deadline = ic.waiter.deadline()
    while True:
        try:
            ic.sso("DeletePermissionSet", PermissionSetArn=permission_set_arn)
        except NotFound:
            ic.cache.remove(ic.instance_arn, name)
            return False
        except Conflict:
            ic.waiter.pause(deadline, f"deleting {name}", "sso:DeletePermissionSet")
            if assignments_using(ic, permission_set_arn, accounts):
                return False
            continue
        ic.cache.remove(ic.instance_arn, name)
        return True
