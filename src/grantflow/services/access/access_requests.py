"""Access requests: submit, decide, cancel, revoke, extend — and the grant/revoke jobs.

Every move goes through ``domain.request_states.transition`` and is an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.flows import (
    Allowed,
    ApprovalMode,
    ApproverSet,
    Denied,
    FlowDefinition,
    evaluate,
    resolve_approvers,
    without_principals,
)
from grantflow.domain.request_states import (
    Event,
    RequestState,
    Vote,
    approval_complete,
    justification_problem,
    may_decide,
)
from grantflow.services.access import flow_views, grant_jobs, request_policy
from grantflow.services.access.revocation import end_request
from grantflow.services.access.transitions import move
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, Forbidden, Invalid, NotFound
from grantflow.services.identity import principals
from grantflow.store.models import (
    AccessFlow,
    AccessRequest,
    Approval,
    Grant,
    GroupMembership,
    Integration,
    Resource,
    User,
)
from grantflow.store.types import utcnow


def get(session: Session, request_id: str) -> AccessRequest:
    row = session.get(AccessRequest, request_id)
    if row is None:
        raise NotFound(f"no access request {request_id}")
    return row


def _pick_flow(
    session: Session, user: User, resources: list[Resource], permission: str
) -> tuple[Allowed, AccessFlow]:
    views = flow_views.flow_views(session)
    requester = flow_views.requester_view(session, user)
    first_denial: Denied | None = None
    allowing: dict[str, list[Allowed]] = {}
    for resource in resources:
        verdict = evaluate(requester, flow_views.resource_view(resource), permission, views)
        if isinstance(verdict, Denied):
            first_denial = first_denial or verdict
            continue
        allowing.setdefault(resource.id, []).append(verdict)
    if first_denial is not None:
        raise Forbidden(first_denial.explain())
    # All resources must be allowed through one flow; evaluate names the first match.
    flow_ids = {v.flow_id for verdicts in allowing.values() for v in verdicts}
    if len(flow_ids) != 1:
        raise Forbidden("these resources are allowed by different access flows; request them "
                        "separately")  # fmt: skip
    flow = session.get(AccessFlow, flow_ids.pop())
    assert flow is not None
    sets = access_flows_resolve(session, flow, resources)
    verdict = allowing[resources[0].id][0]
    return Allowed(verdict.flow_id, verdict.flow_name, verdict.mode, sets), flow


def access_flows_resolve(
    session: Session, flow: AccessFlow, resources: list[Resource]
) -> tuple[ApproverSet, ...]:
    (view,) = flow_views.flow_views(session, [flow])
    return resolve_approvers(view, [flow_views.resource_view(r) for r in resources])


def _without_requester(
    session: Session, sets: tuple[ApproverSet, ...], user: User
) -> tuple[ApproverSet, ...]:
    """The requester never approves their own request: drop them, and every other account of
    the same person (``principals.same_person``), from the named principals."""
    named = {p.partition(":")[2] for s in sets for p in s.principals if p.startswith("user:")}
    theirs = {f"user:{user.id}"}
    for user_id in sorted(named - {user.id}):
        other = session.get(User, user_id)
        if other is not None and principals.same_person(session, user, other):
            theirs.add(f"user:{user_id}")
    return without_principals(sets, frozenset(theirs))


def _approval_json(mode: ApprovalMode, sets: tuple[ApproverSet, ...]) -> dict[str, Any]:
    return {
        "mode": mode.value,
        "sets": [
            {"label": s.label, "why": s.why, "principals": list(s.principals),
             "required": s.required}
            for s in sets
        ],
    }  # fmt: skip


def approval_sets(request: AccessRequest) -> tuple[ApprovalMode, tuple[ApproverSet, ...]]:
    return snapshot_sets(request.approval)


def snapshot_sets(
    approval: dict[str, Any] | None,
) -> tuple[ApprovalMode, tuple[ApproverSet, ...]]:
    """A request's approval snapshot (``approval`` column) as the domain's sets."""
    data = approval or {}
    sets = tuple(
        ApproverSet(s["label"], s["why"], tuple(s["principals"]), int(s["required"]))
        for s in data.get("sets", [])
    )
    return ApprovalMode(data.get("mode", "any")), sets


@dataclass(frozen=True, slots=True)
class Submission:
    """A request checked against today's policy (``check_submission``, in a read
    transaction), ready to be written by ``record_submission`` (in a short write one)."""

    user_id: str
    resource_ids: tuple[str, ...]
    integration_id: str
    resource_type: str
    permission: str
    duration: int
    justification: str
    flow_id: str
    flow_name: str
    flow_definition: dict[str, Any]  # as evaluated: the write refuses if the flow changed since
    mode: ApprovalMode
    sets: tuple[ApproverSet, ...]


def submit(
    session: Session,
    user: User,
    resource_ids: list[str],
    permission: str,
    duration_seconds: int | None,
    justification: str,
    actor: audit.Actor,
) -> AccessRequest:
    """Check and write in one transaction (tests, scripts). The API checks in a read
    transaction first and writes in a short one (``check_submission``, ``record_submission``):
    nothing a member types is matched or evaluated while the write lock is held."""
    checked = check_submission(session, user, resource_ids, permission, duration_seconds,
                               justification)  # fmt: skip
    return record_submission(session, user, checked, actor)


def check_submission(
    session: Session,
    user: User,
    resource_ids: list[str],
    permission: str,
    duration_seconds: int | None,
    justification: str,
) -> Submission:
    """Every check of a new request, reading only: which flow allows it, its duration, the
    justification (RE2, linear time), the requester's principal and the approvers."""
    resources = list(session.scalars(select(Resource).where(Resource.id.in_(resource_ids))))
    missing = set(resource_ids) - {r.id for r in resources}
    if missing:
        raise Invalid(f"unknown resource(s): {', '.join(sorted(missing))}", field="resource_ids")
    if len({(r.integration_id, r.type) for r in resources}) != 1:
        raise Invalid("all resources of one request must be of one type and integration",
                      field="resource_ids")  # fmt: skip
    allowed, flow = _pick_flow(session, user, resources, permission)
    definition = FlowDefinition.stored(flow.definition)
    duration = duration_seconds or definition.default_duration_seconds
    if duration > definition.max_duration_seconds:
        raise Invalid(f"at most {definition.max_duration_seconds} seconds through flow "
                      f"{flow.name!r}", field="duration_seconds")  # fmt: skip
    problem = justification_problem(justification, definition.justification_required,
                                    definition.justification_pattern)  # fmt: skip
    if problem:
        raise Invalid(problem, field="justification")
    integration = session.get(Integration, resources[0].integration_id)
    if principals.grant_principal(session, user, integration) is None:
        raise Invalid(f"{user.username} cannot receive AWS grants in this integration: no "
                      "active user of its Identity Center matches their username or email",
                      field="requester")  # fmt: skip
    sets = _without_requester(session, allowed.approver_sets, user)
    if allowed.mode is not ApprovalMode.AUTO and all(not s.principals for s in sets):
        raise Invalid("nobody but you could approve this request; ask an admin to name an "
                      "approver or integration owner", field="resource_ids")  # fmt: skip
    return Submission(
        user_id=user.id, resource_ids=tuple(dict.fromkeys(resource_ids)),
        integration_id=resources[0].integration_id,
        resource_type=resources[0].type, permission=permission, duration=duration,
        justification=justification, flow_id=flow.id, flow_name=flow.name,
        flow_definition=flow.definition, mode=allowed.mode, sets=sets,
    )  # fmt: skip


def record_submission(
    session: Session, user: User, checked: Submission, actor: audit.Actor
) -> AccessRequest:
    """Write a checked request: cheap lookups only. A flow changed, disabled or deleted since
    the check (or resources gone) answers 409: submit again. Whatever else changed in between
    (groups, attributes) the re-check before granting catches (``services.request_policy``)."""
    if user.id != checked.user_id or not user.active:
        raise Forbidden("your account is deactivated")
    flow = session.get(AccessFlow, checked.flow_id)
    if flow is None or not flow.enabled or flow.definition != checked.flow_definition:
        raise Conflict(f"access flow {checked.flow_name!r} changed while your request was "
                       "checked; submit it again")  # fmt: skip
    found = session.scalars(select(Resource.id).where(Resource.id.in_(checked.resource_ids)))
    if set(found) != set(checked.resource_ids):
        raise Conflict("a resource of this request was removed while it was checked; submit "
                       "it again")  # fmt: skip
    request = AccessRequest(
        requester_id=user.id, integration_id=checked.integration_id, flow_id=flow.id,
        resource_type=checked.resource_type, permission=checked.permission,
        justification=checked.justification, duration_seconds=checked.duration,
        state=RequestState.PENDING.value, approval=_approval_json(checked.mode, checked.sets),
    )  # fmt: skip
    session.add(request)
    session.flush()
    for resource_id in checked.resource_ids:
        session.add(Grant(request_id=request.id, resource_id=resource_id, state="pending"))
    session.flush()
    audit.record(session, actor, "request.created", "access_request", request.id,
                 {"flow": flow.name, "resources": list(checked.resource_ids),
                  "permission": checked.permission, "duration_seconds": checked.duration,
                  "justification": checked.justification})  # fmt: skip
    if checked.mode is ApprovalMode.AUTO:
        move(session, request, Event.APPROVE, audit.SYSTEM, {"auto": True})
        request.approved_at = utcnow()
        grant_jobs.start_granting(session, request)
    return request


def _user_groups(session: Session, user_id: str) -> frozenset[str]:
    return frozenset(
        session.scalars(select(GroupMembership.group_id).where(GroupMembership.user_id == user_id))
    )


def _is_requester(session: Session, request: AccessRequest, user: User) -> bool:
    """The requester, or another account of the same person: one that shares the principal
    the grant goes to (or any principal) or the requester's email."""
    requester = session.get(User, request.requester_id)
    return user.id == request.requester_id or (
        requester is not None and principals.same_person(session, requester, user)
    )


def can_approve(session: Session, request: AccessRequest, user: User) -> bool:
    if not user.active or _is_requester(session, request, user):
        return False
    _, sets = approval_sets(request)
    return may_decide(user.id, _user_groups(session, user.id), sets)


def _votes(session: Session, request: AccessRequest) -> list[Vote]:
    """The request's votes, by person: accounts of one person count once, the requester's
    other accounts not at all."""
    rows = list(
        session.scalars(
            select(Approval)
            .where(Approval.request_id == request.id)
            .order_by(Approval.created_at, Approval.id)
        )
    )
    person = principals.people(session, [request.requester_id] + [a.approver_id for a in rows])
    mine = person[request.requester_id]
    return [
        Vote(a.approver_id, _user_groups(session, a.approver_id), a.decision == "approve",
             person[a.approver_id])
        for a in rows
        if person[a.approver_id] != mine
    ]  # fmt: skip


def decide(
    session: Session, request: AccessRequest, approver: User, approve: bool, reason: str,
    actor: audit.Actor,
) -> None:  # fmt: skip
    if approver.id == request.requester_id:
        raise Forbidden("you cannot approve or reject your own request")
    if _is_requester(session, request, approver):
        raise Forbidden("you cannot approve or reject this request: you and the requester are "
                        "one person (a shared Identity Center user or email)")  # fmt: skip
    if not can_approve(session, request, approver):
        raise Forbidden("you are not an approver of this request")
    if request.state != RequestState.PENDING.value:
        raise Conflict(f"the request is already {request.state}")
    if approve and request_policy.approval_refused(session, request, actor):
        return  # today's policy no longer allows it: failed, with the reason
    flow = session.get(AccessFlow, request.flow_id) if request.flow_id else None
    needs_reason = flow and FlowDefinition.stored(flow.definition).approver_reason_required
    if needs_reason and not reason.strip():
        raise Invalid("this flow requires a reason from the approver", field="reason")
    if session.scalar(select(Approval.id).where(Approval.request_id == request.id,
                                                Approval.approver_id == approver.id)):  # fmt: skip
        raise Conflict("you have already decided on this request")
    voters = [v.approver_id for v in _votes(session, request)]
    if voters and principals.people(session, [*voters, approver.id])[approver.id] != approver.id:
        raise Conflict("another account of yours has already decided on this request: one "
                       "person, one vote")  # fmt: skip
    session.add(Approval(request_id=request.id, approver_id=approver.id,
                         decision="approve" if approve else "reject", reason=reason))  # fmt: skip
    session.flush()
    if not approve:
        move(session, request, Event.REJECT, actor, {"reason": reason})
        request.ended_at = utcnow()
        return
    audit.record(session, actor, "request.approval_recorded", "access_request", request.id,
                 {"reason": reason})  # fmt: skip
    mode, sets = approval_sets(request)
    if approval_complete(mode, sets, _votes(session, request)):
        move(session, request, Event.APPROVE, actor, {"reason": reason})
        request.approved_at = utcnow()
        grant_jobs.start_granting(session, request)


def cancel(session: Session, request: AccessRequest, user: User, actor: audit.Actor) -> None:
    if user.id != request.requester_id:
        raise Forbidden("only the requester can cancel a request")
    move(session, request, Event.CANCEL, actor)
    request.ended_at = utcnow()


def revoke(session: Session, request: AccessRequest, user: User, is_admin: bool,
           actor: audit.Actor, reason: str = "") -> None:  # fmt: skip
    allowed = is_admin or user.id == request.requester_id or can_approve(session, request, user)
    if not allowed:
        raise Forbidden("only the requester, an approver or an admin can revoke")
    end_request(session, request, actor, reason or "revoked")


def extend(session: Session, request: AccessRequest, user: User, seconds: int,
           actor: audit.Actor) -> None:  # fmt: skip
    if user.id != request.requester_id:
        raise Forbidden("only the requester can extend their access")
    request_policy.refuse_extension(session, request)
    flow = session.get(AccessFlow, request.flow_id) if request.flow_id else None
    if flow is None:
        raise Conflict("the flow that allowed this request no longer exists")
    definition = FlowDefinition.stored(flow.definition)
    if request.extensions >= definition.max_extensions:
        raise Conflict(f"flow {flow.name!r} allows {definition.max_extensions} extension(s)")
    if seconds > definition.max_duration_seconds:
        raise Invalid(f"at most {definition.max_duration_seconds} seconds", field="seconds")
    move(session, request, Event.EXTEND, actor, {"seconds": seconds})
    assert request.expires_at is not None
    request.expires_at = request.expires_at + timedelta(seconds=seconds)
    request.extensions += 1
    for grant in session.scalars(select(Grant).where(Grant.request_id == request.id)):
        grant.expires_at = request.expires_at
