"""Grant and revoke in Identity Center: plan from the actual state, then apply that plan.

``plan_*`` only reads; a dry run shows its :class:`~grantflow.domain.grant_specs.Plan`.
``apply_*`` computes the same plan and executes exactly its steps, so both are idempotent:
applying a grant twice leaves one assignment, revoking twice removes nothing more.

Safety rules:

* What existed before Grantflow granted it (``GrantHandle.pre_existing``) is never removed.
* What another live grant still needs (``still_needed``, computed by the control plane from
  its grant table) is never removed.
* A pooled permission set is deleted only when no assignment — of any user or group, in any
  account it is provisioned to — uses it any more, checked again right before deleting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from grantflow.aws import identity_center as ic_api
from grantflow.aws import pooled_policies
from grantflow.aws.assignment_reads import AssignmentReads, existing
from grantflow.aws.assignment_status import StatusBoard
from grantflow.aws.errors import NotFound
from grantflow.aws.group_membership import create_membership, delete_membership, membership_id
from grantflow.aws.identity_center import USER, IdentityCenter, PermissionSetCache
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.aws.waiting import Waiter
from grantflow.domain import session_cuts
from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    Assignment,
    CreateAccountAssignment,
    CreateGroupMembership,
    CreatePermissionSet,
    DeleteAccountAssignment,
    DeleteGroupMembership,
    DeletePermissionSet,
    GrantHandle,
    GrantKind,
    GrantSpec,
    GroupMembershipSpec,
    Noop,
    Plan,
    PlanStep,
    PooledPermissionSetSpec,
    ProvisionPermissionSet,
    PutInlinePolicy,
    RevokeOutcome,
    RevokeStatus,
    diff,
)

__all__ = [
    "GrantSettings",
    "actual_assignments",
    "apply_assignment_grant",
    "apply_grant",
    "apply_revoke",
    "diff",
    "plan_grant",
    "plan_revoke",
]


@dataclass(frozen=True)
class GrantSettings:
    """Connector-wide settings; create once per process so the cache is shared."""

    waiter: Waiter = field(default_factory=Waiter)
    cache: PermissionSetCache = field(default_factory=PermissionSetCache)
    max_permission_sets: int = ic_api.DEFAULT_MAX_PERMISSION_SETS
    # Concurrent grants share their existence reads and their status rounds.
    reads: AssignmentReads = field(default_factory=AssignmentReads)
    statuses: StatusBoard = field(default_factory=StatusBoard)


def _ic(
    factory: ClientFactory,
    target: GrantSpec | GrantHandle,
    limiter: IdentityCenterLimiter | None,
    settings: GrantSettings | None,
) -> IdentityCenter:
    chosen = settings or GrantSettings()
    return IdentityCenter(
        factory=factory,
        instance_arn=target.instance_arn,
        identity_store_id=target.identity_store_id,
        region=target.identity_center_region,
        limiter=limiter or IdentityCenterLimiter(),
        waiter=chosen.waiter,
        cache=chosen.cache,
        max_permission_sets=chosen.max_permission_sets,
        statuses=chosen.statuses,
    )


def _pre_existing(exists: bool, known: bool | None) -> bool:
    # An item absent now is created by this grant, whatever an earlier attempt observed.
    return exists and (known if known is not None else True)


@dataclass
class _Facts:
    """What planning learnt that applying needs."""

    permission_set_arns: dict[str, str] = field(default_factory=dict)  # name → ARN
    membership_id: str | None = None


# --- grant ---------------------------------------------------------------------------------


Known = frozenset[Assignment] | None  # the existing ones among assignments read beforehand


def _exists(ic: IdentityCenter, assignment: Assignment, known: Known) -> bool:
    return assignment in known if known is not None else ic_api.assignment_exists(ic, assignment)


def read_existing(
    factory: ClientFactory,
    target: GrantSpec | GrantHandle,
    assignments: list[Assignment],
    *,
    limiter: IdentityCenterLimiter | None = None,
    settings: GrantSettings | None = None,
) -> frozenset[Assignment]:
    """Which of ``assignments`` (all of ``target``'s instance) exist, read together (one list
    per account and permission set, or per user: :func:`assignment_reads.existing`) — for
    planning many items at once (``known=``) instead of one read each."""
    return frozenset(existing(_ic(factory, target, limiter, settings), assignments))


def _plan_assignment(
    ic: IdentityCenter, spec: AccountAssignmentSpec, known: Known = None
) -> tuple[Plan, _Facts]:
    assignment = Assignment(spec.account_id, spec.permission_set_arn, spec.principal_id)
    exists = _exists(ic, assignment, known)
    pre = _pre_existing(exists, spec.known_pre_existing)
    if not exists:
        step: PlanStep = CreateAccountAssignment(
            account_id=spec.account_id,
            permission_set=spec.permission_set_arn,
            principal_id=spec.principal_id,
        )
    elif pre:
        step = Noop(reason="the assignment existed before Grantflow; revoking will keep it")
    else:
        step = Noop(reason="the assignment exists (made by an earlier attempt of this grant)")
    return Plan(steps=(step,), pre_existing=pre), _Facts()


def _plan_membership(ic: IdentityCenter, spec: GroupMembershipSpec) -> tuple[Plan, _Facts]:
    found = membership_id(ic, spec.group_id, spec.principal_id)
    pre = _pre_existing(found is not None, spec.known_pre_existing)
    if found is None:
        step: PlanStep = CreateGroupMembership(
            group_id=spec.group_id, principal_id=spec.principal_id
        )
    elif pre:
        step = Noop(reason="the user was a member before Grantflow; revoking will keep it")
    else:
        step = Noop(reason="the membership exists (made by an earlier attempt of this grant)")
    return Plan(steps=(step,), pre_existing=pre), _Facts(membership_id=found)


def _existing_policy(ic: IdentityCenter, name: str) -> tuple[str, str] | None:
    """``(ARN, inline policy)`` of the pooled permission set, None when it does not exist."""
    for refresh in (False, True):
        arn = ic_api.find_permission_set(ic, name, refresh=refresh)
        if arn is None:
            return None
        try:
            return arn, ic_api.get_inline_policy(ic, arn)
        except NotFound:
            continue  # deleted by another process since the cache was loaded
    return None


def _plan_pooled(ic: IdentityCenter, spec: PooledPermissionSetSpec) -> tuple[Plan, _Facts]:
    name = pooled_policies.permission_set_name(spec.resource_arn, spec.permission)
    policy = pooled_policies.inline_policy(spec)
    provision = ProvisionPermissionSet(permission_set_name=name, account_id=spec.account_id)
    existing = _existing_policy(ic, name)
    if existing is None:
        steps: list[PlanStep] = [
            CreatePermissionSet(name=name, description=pooled_policies.description(spec)),
            PutInlinePolicy(permission_set_name=name, policy=policy),
            provision,
            CreateAccountAssignment(
                account_id=spec.account_id, permission_set=name, principal_id=spec.principal_id
            ),
        ]
        return Plan(steps=tuple(steps)), _Facts()
    arn, current = existing
    policy = session_cuts.keep_cuts(policy, current)  # a cut of ended sessions stays
    steps = []
    changed = not pooled_policies.same_policy(current, policy)
    if changed:
        steps.append(PutInlinePolicy(permission_set_name=name, policy=policy))
    if changed or spec.account_id not in ic_api.provisioned_accounts(ic, arn):
        steps.append(provision)
    assignment = Assignment(spec.account_id, arn, spec.principal_id)
    if ic_api.assignment_exists(ic, assignment):
        steps.append(Noop(reason=f"the user already holds {name} (shared with another grant)"))
    else:
        steps.append(
            CreateAccountAssignment(
                account_id=spec.account_id, permission_set=arn, principal_id=spec.principal_id
            )
        )
    return Plan(steps=tuple(steps)), _Facts(permission_set_arns={name: arn})


def _plan_grant(ic: IdentityCenter, spec: GrantSpec, known: Known = None) -> tuple[Plan, _Facts]:
    if isinstance(spec, AccountAssignmentSpec):
        return _plan_assignment(ic, spec, known)
    if isinstance(spec, GroupMembershipSpec):
        return _plan_membership(ic, spec)
    return _plan_pooled(ic, spec)


def plan_grant(
    factory: ClientFactory,
    spec: GrantSpec,
    *,
    limiter: IdentityCenterLimiter | None = None,
    settings: GrantSettings | None = None,
    known: Known = None,
) -> Plan:
    """What :func:`apply_grant` would do now (reads only); ``known`` (from
    :func:`read_existing`, covering the spec's assignment) answers an account assignment's
    existence instead of a read of its own."""
    return _plan_grant(_ic(factory, spec, limiter, settings), spec, known)[0]


def _apply_grant_step(ic: IdentityCenter, step: PlanStep, facts: _Facts) -> None:
    arns = facts.permission_set_arns
    match step:
        case CreatePermissionSet(name=name, description=description):
            arns[name] = ic_api.create_permission_set(ic, name, description)
        case PutInlinePolicy(permission_set_name=name, policy=policy):
            ic_api.put_inline_policy(ic, arns[name], policy)
        case ProvisionPermissionSet(permission_set_name=name, account_id=account):
            ic_api.provision_permission_set(ic, arns[name], account)
        case CreateAccountAssignment(account_id=account, permission_set=ps, principal_id=user):
            ic_api.create_assignment(ic, Assignment(account, arns.get(ps, ps), user))
        case CreateGroupMembership(group_id=group, principal_id=user):
            facts.membership_id = create_membership(ic, group, user)
        case Noop():
            pass
        case _:
            raise ValueError(f"a grant plan cannot hold {step.op}")


def _handle(spec: GrantSpec, plan: Plan, facts: _Facts) -> GrantHandle:
    common = {
        "kind": spec.kind,
        "instance_arn": spec.instance_arn,
        "identity_store_id": spec.identity_store_id,
        "principal_id": spec.principal_id,
        "identity_center_region": spec.identity_center_region,
        "pre_existing": plan.pre_existing,
    }
    if isinstance(spec, GroupMembershipSpec):
        return GrantHandle(**common, group_id=spec.group_id, membership_id=facts.membership_id)
    if isinstance(spec, AccountAssignmentSpec):
        assignment = Assignment(spec.account_id, spec.permission_set_arn, spec.principal_id)
        return GrantHandle(**common, assignment=assignment)
    name = pooled_policies.permission_set_name(spec.resource_arn, spec.permission)
    arn = facts.permission_set_arns[name]
    return GrantHandle(
        **common,
        assignment=Assignment(spec.account_id, arn, spec.principal_id),
        permission_set_name=name,
        permission_set_arn=arn,
    )


def apply_grant(
    factory: ClientFactory,
    spec: GrantSpec,
    limiter: IdentityCenterLimiter,
    *,
    settings: GrantSettings | None = None,
) -> GrantHandle:
    """Provision ``spec`` (idempotent) and return the handle that undoes it."""
    ic = _ic(factory, spec, limiter, settings)
    plan, facts = _plan_grant(ic, spec)
    for step in plan.steps:
        _apply_grant_step(ic, step, facts)
    return _handle(spec, plan, facts)


def apply_assignment_grant(
    factory: ClientFactory,
    spec: AccountAssignmentSpec,
    limiter: IdentityCenterLimiter,
    *,
    settings: GrantSettings | None = None,
    report_pre_existing: Callable[[bool], None] | None = None,
) -> GrantHandle:
    """Grant an account assignment with one read shared with concurrent grants, then (only
    when absent) the create and the status reads it needs.

    The read answers whether the assignment exists now; on a first attempt
    (``known_pre_existing`` None) that is what existed before Grantflow, reported through
    ``report_pre_existing`` BEFORE anything is created, so a retry keeps knowing it. An
    assignment found absent is created, and is Grantflow's to revoke. Callers serialize grants
    and revokes of one tuple (the connector's tuple lock), so no revoke of this process
    changes the tuple between the read and the create.
    """
    chosen = settings or GrantSettings()
    ic = _ic(factory, spec, limiter, chosen)
    assignment = Assignment(spec.account_id, spec.permission_set_arn, spec.principal_id)
    exists = chosen.reads.exists(ic, assignment)
    pre = _pre_existing(exists, spec.known_pre_existing)
    if spec.known_pre_existing is None and report_pre_existing is not None:
        report_pre_existing(pre)
    if not exists:
        ic_api.create_assignment(ic, assignment)
    return _handle(spec, Plan(steps=(), pre_existing=pre), _Facts())


# --- revoke --------------------------------------------------------------------------------


def _plan_gc(ic: IdentityCenter, handle: GrantHandle, assignment: Assignment) -> PlanStep:
    name, arn = handle.permission_set_name, assignment.permission_set_arn
    assert name is not None  # the handle's validator guarantees it for pooled grants
    gone = Noop(reason=f"the permission set {name} is already deleted")
    if not ic_api.permission_set_exists(ic, arn):
        return gone
    try:
        users = ic_api.assignments_using(ic, arn, [assignment.account_id])
    except NotFound:
        return gone
    others = users - {(assignment.account_id, USER, assignment.principal_id)}
    if others:
        return Noop(reason=f"{name} is still used by {len(others)} other assignment(s)")
    return DeletePermissionSet(permission_set_name=name, permission_set_arn=arn)


def _plan_revoke(
    ic: IdentityCenter,
    handle: GrantHandle,
    still_needed: bool,
    *,
    read: bool = True,
    known: Known = None,
) -> tuple[Plan, RevokeStatus]:
    """``read=False`` (applying an account assignment's revoke): delete without reading
    first; a delete of an absent assignment answers NotFound, which says the same."""
    if handle.pre_existing:
        keep = Noop(reason="it existed before Grantflow granted it; left in place")
        return Plan(steps=(keep,), pre_existing=True), RevokeStatus.KEPT_PRE_EXISTING
    if still_needed:
        keep = Noop(reason="another live grant still needs it; left in place")
        return Plan(steps=(keep,)), RevokeStatus.KEPT_STILL_NEEDED
    if handle.kind is GrantKind.GROUP_MEMBERSHIP:
        assert handle.group_id is not None
        found = membership_id(ic, handle.group_id, handle.principal_id)
        if found is None:
            return Plan(steps=(Noop(reason="not a member any more"),)), RevokeStatus.ALREADY_ABSENT
        step: PlanStep = DeleteGroupMembership(
            group_id=handle.group_id, principal_id=handle.principal_id, membership_id=found
        )
        return Plan(steps=(step,)), RevokeStatus.REVOKED
    assignment = handle.assignment
    assert assignment is not None
    if not read and handle.kind is GrantKind.ACCOUNT_ASSIGNMENT:
        return Plan(steps=(DeleteAccountAssignment(assignment=assignment),)), RevokeStatus.REVOKED
    status = RevokeStatus.ALREADY_ABSENT
    try:
        exists = _exists(ic, assignment, known)
    except NotFound:  # the permission set itself is gone
        exists = False
    steps: list[PlanStep] = [Noop(reason="the assignment is already absent")]
    if exists:
        steps, status = [DeleteAccountAssignment(assignment=assignment)], RevokeStatus.REVOKED
    if handle.kind is GrantKind.POOLED_PERMISSION_SET:
        steps.append(_plan_gc(ic, handle, assignment))
    return Plan(steps=tuple(steps)), status


def plan_revoke(
    factory: ClientFactory,
    handle: GrantHandle,
    still_needed: bool,
    *,
    limiter: IdentityCenterLimiter | None = None,
    settings: GrantSettings | None = None,
    known: Known = None,
) -> Plan:
    """What :func:`apply_revoke` would do now (reads only); ``known`` as for
    :func:`plan_grant`."""
    ic = _ic(factory, handle, limiter, settings)
    return _plan_revoke(ic, handle, still_needed, known=known)[0]


def apply_revoke(
    factory: ClientFactory,
    handle: GrantHandle,
    still_needed: bool,
    limiter: IdentityCenterLimiter,
    *,
    settings: GrantSettings | None = None,
) -> RevokeOutcome:
    """Undo a grant within the safety rules above; idempotent."""
    ic = _ic(factory, handle, limiter, settings)
    plan, status = _plan_revoke(ic, handle, still_needed, read=False)
    deleted_set = False
    for step in plan.steps:
        match step:
            case DeleteAccountAssignment(assignment=assignment):
                if not ic_api.delete_assignment(ic, assignment):
                    status = RevokeStatus.ALREADY_ABSENT
                    if handle.kind is GrantKind.ACCOUNT_ASSIGNMENT:
                        plan = Plan(steps=(Noop(reason="the assignment is already absent"),))
            case DeleteGroupMembership(membership_id=membership):
                if not delete_membership(ic, membership):
                    status = RevokeStatus.ALREADY_ABSENT
            case DeletePermissionSet(permission_set_name=name, permission_set_arn=arn):
                accounts = [handle.assignment.account_id] if handle.assignment else []
                if not ic_api.assignments_using(ic, arn, accounts):  # still unused right now
                    deleted_set = ic_api.delete_permission_set(ic, name, arn, accounts)
            case Noop():
                pass
            case _:
                raise ValueError(f"a revoke plan cannot hold {step.op}")
    return RevokeOutcome(status=status, permission_set_deleted=deleted_set, plan=plan)


# --- reconciliation ------------------------------------------------------------------------


def actual_assignments(
    factory: ClientFactory,
    instance_arn: str,
    account_id: str,
    permission_set_arn: str,
    *,
    region: str | None = None,
    limiter: IdentityCenterLimiter | None = None,
) -> set[Assignment]:
    """The user assignments that exist in AWS, to :func:`diff` against the desired ones."""
    ic = IdentityCenter(
        factory=factory,
        instance_arn=instance_arn,
        region=region,
        limiter=limiter or IdentityCenterLimiter(),
    )
    return set(ic_api.list_assignments(ic, account_id, permission_set_arn))
