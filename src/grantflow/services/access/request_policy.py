"""Policy at every step after submit: approve, start granting and extend re-check the request
against today's flow, integration and requester (``domain.request_policy.recheck``).

What each step does when the re-check finds a problem:

- **Approve** (``approval_refused``; ``access_requests.decide`` calls it once the caller is
  known to be an approver of the pending request, before the vote is recorded):

  - a *lasting* problem — the flow or the integration deleted or disabled, the requester
    deactivated or no longer a requestor, a resource gone or out of the flow's scope, the
    permission no longer offered, the duration over the flow's maximum: the request moves to
    ``failed`` with the reason as its ``failure_reason`` (audit event ``request.policy_failed``
    with the approver as actor and the rule that failed; the requester is notified), the vote
    is not recorded, and the API answers 409 with the reason. This holds whether or not this
    vote would have completed the approval: no later vote could grant a request today's
    policy refuses, so it must not wait in approvers' queues.
  - an integration *in error* (it may clear with the next good sync): 409 with the reason;
    nothing is written, the request stays pending and can be approved once it is healthy.

  Rejecting is never re-checked: anyone who may decide may reject a request that no longer
  fits.
- **Start granting** (``granting_refused``; ``grant_jobs.start_granting`` calls it on every
  path that moves approved → granting: the last approval, an auto-approved submit): any
  problem, an integration in error included, fails the request with the reason (actor:
  system); no job is queued and nothing reaches AWS.
- **Extend** (``refuse_extension``): any problem refuses the extension and nothing changes:
  403 when it is about the requester (deactivated, no longer a requestor), 409 otherwise. The
  access already granted runs until it expires, or until an admin revokes it.

Deleting or disabling a flow or an integration fails its pending requests at that moment
(``services.policy_withdrawal``); the re-check catches every other change (a requester removed
from the flow, a lower maximum duration, a permission withdrawn, an integration in error).

Concurrency: the re-check takes the integration and flow rows FOR SHARE, then the request
row FOR UPDATE (PostgreSQL; SQLite serializes writers), in the order a flow's or an
integration's deletion takes them. An approval and a deletion racing are therefore serialized:
the approval sees the flow gone, or the deletion sees the request granting (and revokes or
counts it as live).
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.flows import FlowDefinition, FlowView, RequesterView
from grantflow.domain.request_policy import IntegrationState, PolicyProblem, RequestFacts, recheck
from grantflow.domain.request_states import RequestState
from grantflow.services.access import flow_views
from grantflow.services.access.transitions import fail_request
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Conflict, Forbidden
from grantflow.store.models import AccessFlow, AccessRequest, Grant, Integration, Resource, User

Row = TypeVar("Row", AccessFlow, Integration)


def _shared(session: Session, model: type[Row], row_id: str | None) -> Row | None:
    if row_id is None:
        return None
    query = (
        select(model)
        .where(model.id == row_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)


def problem_for(session: Session, request: AccessRequest) -> PolicyProblem | None:
    """Today's policy on ``request``: None when its flow, integration and requester still
    allow it."""
    integ = _shared(session, Integration, request.integration_id)
    flow = _shared(session, AccessFlow, request.flow_id)
    user = session.get(User, request.requester_id)
    grants = session.scalars(select(Grant).where(Grant.request_id == request.id)).all()
    resources = [session.get(Resource, g.resource_id) if g.resource_id else None for g in grants]
    return recheck(
        RequestFacts(request.integration_id, request.resource_type, request.permission,
                     request.duration_seconds, user.username if user else "the requester"),
        _flow_view(flow),
        IntegrationState(integ.id, integ.name, integ.enabled, integ.status,
                         integ.status_message) if integ else None,
        _requester_view(session, user, request.requester_id),
        [flow_views.resource_view(r) if r else None for r in resources],
    )  # fmt: skip


def _flow_view(row: AccessFlow | None) -> FlowView | None:
    if row is None:
        return None
    definition = FlowDefinition.stored(row.definition)
    return FlowView(row.id, row.name, row.enabled, row.integration_id, definition)


def _requester_view(session: Session, user: User | None, user_id: str) -> RequesterView:
    if user is None:
        return RequesterView(user_id, active=False)
    view = flow_views.requester_view(session, user)
    if user.deleted_at is not None and view.active:
        return RequesterView(view.id, view.group_ids, view.attributes, active=False)
    return view


def _lock(session: Session, request: AccessRequest, expected: RequestState) -> None:
    """Take the integration and flow rows (shared), then re-read the request under a row
    lock: another transaction may have moved it since it was loaded."""
    _shared(session, Integration, request.integration_id)
    _shared(session, AccessFlow, request.flow_id)
    session.refresh(request, with_for_update=True)
    if request.state != expected.value:
        raise Conflict(f"the request is already {request.state}")


def approval_refused(session: Session, request: AccessRequest, actor: audit.Actor) -> bool:
    """Before an approval is recorded. True: the request failed (its ``failure_reason`` says
    why) and the vote must not be recorded; raises Conflict for an integration in error."""
    _lock(session, request, RequestState.PENDING)
    problem = problem_for(session, request)
    if problem is None:
        return False
    if problem.transient:
        raise Conflict(f"cannot approve now: {problem.message}")
    fail_request(session, request, f"no longer allowed: {problem.message}", problem.check, actor,
                 {"step": "approve"})  # fmt: skip
    return True


def granting_refused(session: Session, request: AccessRequest) -> bool:
    """Before an approved request starts granting. True: the request failed instead."""
    problem = problem_for(session, request)
    if problem is None:
        return False
    fail_request(session, request, f"not granted: {problem.message}", problem.check,
                 audit.SYSTEM, {"step": "start_grant"})  # fmt: skip
    return True


def refuse_extension(session: Session, request: AccessRequest) -> None:
    """Before an extension: raises when today's policy would not allow the request."""
    _lock(session, request, RequestState.GRANTED)
    problem = problem_for(session, request)
    if problem is None:
        return
    message = f"cannot extend: {problem.message}"
    if problem.about_requester:
        raise Forbidden(message)
    raise Conflict(message)
