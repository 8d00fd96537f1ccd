"""Job handlers: one function per job type, each idempotent (delivery is at-least-once)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grantflow import __version__
from grantflow.aws.cloudtrail import IngestRequest, ingest
from grantflow.aws.errors import AccessDenied, AwsError, AwsUnavailable, NotFound, Throttled
from grantflow.aws.grants import (
    apply_assignment_grant,
    apply_grant,
    apply_revoke,
    plan_grant,
    plan_revoke,
    read_existing,
)
from grantflow.aws.identity_center import OperationFailed
from grantflow.aws.session import ClientFactory
from grantflow.aws.session_policy import run_job as run_session_cuts
from grantflow.aws.sync import SyncOptions, sync_organization
from grantflow.aws.verify import verify_management_access
from grantflow.connector.shared import Shared
from grantflow.domain.connector_jobs import (
    AuditIngestPayload,
    AuditIngestResult,
    GrantPayload,
    GrantResult,
    JobType,
    ManagementAccess,
    PingPayload,
    PingResult,
    PlanItem,
    PlannedItem,
    PlanPayload,
    PlanResult,
    Result,
    RevokePayload,
    RevokeResult,
    SessionCutsPayload,
    SessionCutsResult,
    SyncPayload,
    SyncResult,
    VerifyPayload,
    VerifyResult,
)
from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    Assignment,
    GrantHandle,
    GrantKind,
    GrantSpec,
    parse_grant_spec,
)
from grantflow.domain.inventory import AccountInventory
from grantflow.domain.session_cuts import PolicyError


class JobFailure(Exception):
    """A handler's verdict that the job failed; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Interrupted(Exception):
    """The connector is shutting down before the handler finished: give the job back."""


class NotRecorded(Exception):
    """The control plane did not record a report the job must not go on without (a grant's
    ``pre_existing``): the lease was lost (the job runs again, maybe already) or the control
    plane kept failing. The job stops before it changes AWS; its lease lapses."""


def _nowhere(_account: AccountInventory) -> None:
    raise RuntimeError("this job cannot stream inventory")


def _no_progress(_pre_existing: bool) -> None:
    raise RuntimeError("this job reports no grant progress")


def _no_total(_accounts_total: int) -> None:
    """Nobody follows this sync's progress (the batches and the summary still say it all)."""


@dataclass(frozen=True)
class JobContext:
    connector_id: str
    aws: ClientFactory
    stopping: threading.Event = field(default_factory=threading.Event)
    send_inventory: Callable[[AccountInventory], None] = _nowhere
    report_pre_existing: Callable[[bool], None] = _no_progress
    report_sync_total: Callable[[int], None] = _no_total
    shared: Shared | None = None

    def management(self, payload: ManagementAccess) -> tuple[ClientFactory, Shared]:
        shared = self.shared or Shared(self.aws)
        external_id = payload.external_id or self.connector_id
        return shared.management(payload.management_role_arn, external_id), shared

    def pause(self, seconds: float) -> None:
        """Sleep, unless the connector is stopping (then raise Interrupted)."""
        if self.stopping.wait(seconds):
            raise Interrupted()


# Each handler takes its job type's payload model (validated when leased: a payload that does
# not fit fails the job before any handler runs) and returns its result model.
Handler = Callable[[JobContext, Any], Result | dict[str, Any]]


def failure_from_aws(err: AwsError) -> JobFailure:
    # An Identity Center operation that ended FAILED is tried again (bounded by the job's
    # attempts): its reasons are mostly transient ("An unexpected internal service exception
    # was encountered", IAM role propagation), and the retry plans from what exists now.
    retryable = isinstance(err, Throttled | AwsUnavailable | OperationFailed)
    text = str(err) if isinstance(err, AccessDenied) else err.message
    return JobFailure(text, retryable=retryable)


def verify(ctx: JobContext, payload: VerifyPayload) -> VerifyResult:
    external_id = payload.external_id or ctx.connector_id
    try:
        found = verify_management_access(
            ctx.aws, payload.role_arn, external_id, payload.exclude_ou_ids
        )
    except AwsError as err:
        raise failure_from_aws(err) from err
    return VerifyResult(
        organization_id=found.organization_id,
        management_account_id=found.management_account_id,
        management_account_email=found.management_account_email,
        assumed_identity_arn=found.identity.arn,
        unknown_exclude_ou_ids=list(found.unknown_ou_ids),
    )


MAX_PING_DELAY_SECONDS = 60.0


def ping(ctx: JobContext, payload: PingPayload) -> PingResult:
    """Round trip through the job protocol (the console's "Test connector"); the optional
    delay lets an operator watch leases and their expiry."""
    delay = min(payload.delay_seconds, MAX_PING_DELAY_SECONDS)
    if delay > 0:
        ctx.pause(delay)
    return PingResult(connector_id=ctx.connector_id, pid=os.getpid(), version=__version__)


def sync(ctx: JobContext, payload: SyncPayload) -> SyncResult:
    """Discovery: stream each account's inventory as it is read, return the summary."""
    options = SyncOptions(
        management_role_arn=payload.management_role_arn,
        external_id=payload.external_id or ctx.connector_id,
        regions=list(payload.regions or [payload.region or "us-east-1"]),
        sso_region=payload.sso_region or payload.region or "us-east-1",
        resource_types=list(payload.resource_types or ()),
        excluded_ou_ids=list(payload.excluded_ou_ids or ()),
    )
    try:
        summary = sync_organization(ctx.aws, options, ctx.send_inventory, _total_once(ctx))
    except AwsError as err:
        raise failure_from_aws(err) from err
    return SyncResult.model_validate(summary.model_dump(mode="json"))


def _total_once(ctx: JobContext) -> Callable[[int, int], None]:
    """Progress for the control plane: the number of accounts, once the organization is
    walked (each account's batch then counts as done)."""

    def progress(done: int, total: int) -> None:
        if done == 0:
            ctx.report_sync_total(total)

    return progress


def grant(ctx: JobContext, payload: GrantPayload) -> GrantResult:
    """Plan, record what already existed, then apply. Idempotent: a retry finds the work done
    and, through ``known_pre_existing``, still knows what was there before the first try."""
    factory, shared = ctx.management(payload)
    spec = parse_grant_spec(payload.spec)
    with shared.one_at_a_time(payload.tuple_key):
        return _grant(ctx, factory, shared, spec)


def _grant(ctx: JobContext, factory: ClientFactory, shared: Shared, spec: GrantSpec) -> GrantResult:
    try:
        if isinstance(spec, AccountAssignmentSpec):  # one read shared with concurrent grants
            handle = apply_assignment_grant(
                factory,
                spec,
                shared.limiter,
                settings=shared.grant_settings,
                report_pre_existing=ctx.report_pre_existing,
            )
            return GrantResult(handle=handle.model_dump(mode="json"))
        if spec.known_pre_existing is None:
            plan = plan_grant(factory, spec, limiter=shared.limiter, settings=shared.grant_settings)
            ctx.report_pre_existing(plan.pre_existing)
            spec = spec.model_copy(update={"known_pre_existing": plan.pre_existing})
        handle = apply_grant(factory, spec, shared.limiter, settings=shared.grant_settings)
    except AwsError as err:
        raise failure_from_aws(err) from err
    return GrantResult(handle=handle.model_dump(mode="json"))


def revoke(ctx: JobContext, payload: RevokePayload) -> RevokeResult:
    factory, shared = ctx.management(payload)
    if not payload.handle:
        return RevokeResult(status="already_absent", note="nothing was granted")
    handle = GrantHandle.model_validate(payload.handle)
    still_needed = payload.still_needed
    try:
        with shared.one_at_a_time(payload.tuple_key):
            outcome = apply_revoke(
                factory, handle, still_needed, shared.limiter, settings=shared.grant_settings
            )
    except AwsError as err:
        raise failure_from_aws(err) from err
    return RevokeResult(
        status=outcome.status.value,
        permission_set_deleted=outcome.permission_set_deleted,
        plan=outcome.plan.render(),
    )


def session_cuts(ctx: JobContext, payload: SessionCutsPayload) -> SessionCutsResult:
    """End revoked users' existing sessions: the permission set's cut statements made exactly
    the payload's, then provisioned (aws.session_policy). Idempotent; one set at a time."""
    factory, shared = ctx.management(payload)
    try:
        with shared.one_at_a_time(f"permission-set:{payload.permission_set_arn}"):
            wire = payload.model_dump(mode="json")
            done = run_session_cuts(factory, wire, shared.limiter, shared.grant_settings)
            return SessionCutsResult.model_validate(done)
    except PolicyError as err:  # too large, or a policy we cannot read: an admin must act
        raise JobFailure(str(err), retryable=False) from err
    except AwsError as err:
        raise failure_from_aws(err) from err


def audit_ingest(ctx: JobContext, payload: AuditIngestPayload) -> AuditIngestResult:
    """Session audit: new CloudTrail files of the organization trail, only events made with
    the grants in the payload. Idempotent: the control plane keeps each eventID once."""
    factory, _shared = ctx.management(payload)
    request = IngestRequest.model_validate(payload.model_dump(exclude_none=True))
    try:
        result = ingest(factory, request)
    except AwsError as err:
        raise failure_from_aws(err) from err
    return AuditIngestResult.model_validate(result.model_dump(mode="json"))


def _assignment_of(item: PlanItem) -> tuple[GrantSpec | GrantHandle, Assignment] | None:
    """The account assignment a plan item reads, if it is one that reads it."""
    if item.action == "grant":
        spec = parse_grant_spec(item.spec)
        if isinstance(spec, AccountAssignmentSpec):
            return spec, Assignment(spec.account_id, spec.permission_set_arn, spec.principal_id)
        return None
    handle = GrantHandle.model_validate(item.handle)
    reads = not handle.pre_existing and not item.still_needed  # else the plan reads nothing
    if handle.kind is GrantKind.ACCOUNT_ASSIGNMENT and handle.assignment is not None and reads:
        return handle, handle.assignment
    return None


def _known(
    factory: ClientFactory, shared: Shared, items: list[PlanItem]
) -> dict[tuple[str, str | None], frozenset[Assignment]]:
    """The account assignments of the items, read together per instance (one list per
    account and permission set, or per user) instead of one read per item: a reconciliation
    of hundreds of grants would otherwise spend Identity Center's 20 calls/s on them."""
    wanted: dict[tuple[str, str | None], tuple[GrantSpec | GrantHandle, list[Assignment]]] = {}
    for item in items:
        found = _assignment_of(item)
        if found is not None:
            target, assignment = found
            key = (target.instance_arn, target.identity_center_region)
            wanted.setdefault(key, (target, []))[1].append(assignment)
    known: dict[tuple[str, str | None], frozenset[Assignment]] = {}
    for key, (target, assignments) in wanted.items():
        with contextlib.suppress(NotFound):  # a permission set is gone: each item reads
            known[key] = read_existing(factory, target, assignments, limiter=shared.limiter,
                                       settings=shared.grant_settings)  # fmt: skip
    return known


def plan(ctx: JobContext, payload: PlanPayload) -> PlanResult:
    """Dry run: what granting or revoking each item would do, without doing it."""
    factory, shared = ctx.management(payload)
    out = []
    try:
        known = _known(factory, shared, payload.items)
        for item in payload.items:
            if item.action == "grant":
                spec = parse_grant_spec(item.spec)
                steps = plan_grant(
                    factory,
                    spec,
                    limiter=shared.limiter,
                    settings=shared.grant_settings,
                    known=known.get((spec.instance_arn, spec.identity_center_region)),
                )
            else:
                handle = GrantHandle.model_validate(item.handle)
                steps = plan_revoke(
                    factory,
                    handle,
                    item.still_needed,
                    limiter=shared.limiter,
                    settings=shared.grant_settings,
                    known=known.get((handle.instance_arn, handle.identity_center_region)),
                )
            out.append(
                PlannedItem(
                    grant_id=item.grant_id,
                    action=item.action,
                    pre_existing=steps.pre_existing,
                    steps=steps.render(),
                    in_sync=steps.is_noop,
                )
            )
    except AwsError as err:
        raise failure_from_aws(err) from err
    return PlanResult(items=out)


def default_handlers() -> dict[str, Handler]:
    return {
        JobType.VERIFY: verify,
        JobType.PING: ping,
        JobType.SYNC: sync,
        JobType.GRANT: grant,
        JobType.REVOKE: revoke,
        JobType.PLAN: plan,
        JobType.AUDIT_INGEST: audit_ingest,
        JobType.SESSION_CUTS: session_cuts,
    }
