"""The access-request use cases the API calls, each owning its transaction: submit, list,
show, decide, cancel, revoke, extend, and the dry run's job.

Each answers the request's public form (``request_views.views``) read in the same transaction
that changed it. A request is shown only to whom may see it (``visible``): the requester, an
approver it names (or one that already decided it) and admins; anyone else gets NotFound, as
if it did not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.authz import Principal, Role
from grantflow.domain.request_states import RequestState
from grantflow.services.access import access_requests, plans, request_lists, request_views
from grantflow.services.audit import trail as audit
from grantflow.services.errors import NotFound
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import AccessRequest, Approval, Job, User

View = dict[str, Any]


def user_of(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.id)
    if user is None:
        raise NotFound("user not found")
    return user


def visible(session: Session, request: AccessRequest, user: User, principal: Principal) -> bool:
    return (
        principal.role is Role.ADMIN
        or request.requester_id == user.id
        or access_requests.can_approve(session, request, user)
        or session.scalar(select(Approval.id).where(Approval.request_id == request.id,
                                                    Approval.approver_id == user.id)) is not None
    )  # fmt: skip


def load_visible(
    session: Session, request_id: str, principal: Principal
) -> tuple[AccessRequest, User]:
    """The request and the viewer's user; NotFound unless ``principal`` may see it."""
    request = access_requests.get(session, request_id)
    user = user_of(session, principal)
    if not visible(session, request, user, principal):
        raise NotFound(f"no access request {request_id}")
    return request, user


def view(session: Session, request: AccessRequest, viewer: User | None = None) -> View:
    mine = bool(viewer and request.state == RequestState.PENDING.value
                and access_requests.can_approve(session, request, viewer))  # fmt: skip
    return request_views.views(session, [request], viewer, {request.id} if mine else set())[0]


def submit(
    sessions: sessionmaker[Session],
    principal: Principal,
    resource_ids: list[str],
    permission: str,
    duration_seconds: int | None,
    justification: str,
    actor: audit.Actor,
) -> View:
    """Checked while reading (flows, justification pattern, principals), then written in a
    short write transaction: nothing a member typed is worked on while writers wait."""
    with read_transaction(sessions) as session:
        checked = access_requests.check_submission(
            session, user_of(session, principal), resource_ids, permission,
            duration_seconds, justification,
        )  # fmt: skip
    with transaction(sessions) as session:
        row = access_requests.record_submission(
            session, user_of(session, principal), checked, actor
        )
        return view(session, row)


def listed(
    sessions: sessionmaker[Session],
    principal: Principal,
    scope: str,
    state: str | None,
    offset: int,
    limit: int,
) -> tuple[list[View], int]:
    """A page of ``scope`` (``mine``, ``to_approve`` or ``all``), newest first, and the
    count of them all. Whether ``principal`` may list ``all`` is the caller's check."""
    with read_transaction(sessions) as session:
        me = user_of(session, principal)
        if scope == "mine":
            found = request_lists.mine(session, me, state, offset, limit)
        elif scope == "to_approve":
            found = request_lists.to_approve(session, me, state, offset, limit)
        else:
            found = request_lists.everything(session, state, offset, limit)
        approvable = {r.id for r in found.rows} if scope == "to_approve" else None
        return request_views.views(session, found.rows, me, approvable), found.total


def show(sessions: sessionmaker[Session], request_id: str, principal: Principal) -> View:
    with read_transaction(sessions) as session:
        row, me = load_visible(session, request_id, principal)
        return view(session, row, me)


def decide(
    sessions: sessionmaker[Session],
    request_id: str,
    principal: Principal,
    approve: bool,
    reason: str,
    actor: audit.Actor,
) -> View:
    """Approve or reject; committed even when today's policy turns an approval into a
    failure (the answer's state says so)."""
    with transaction(sessions) as session:
        row, me = load_visible(session, request_id, principal)
        access_requests.decide(session, row, me, approve, reason, actor)
        return view(session, row, me)


def cancel(
    sessions: sessionmaker[Session], request_id: str, principal: Principal, actor: audit.Actor
) -> View:
    with transaction(sessions) as session:
        row, me = load_visible(session, request_id, principal)
        access_requests.cancel(session, row, me, actor)
        return view(session, row, me)


def revoke(
    sessions: sessionmaker[Session],
    request_id: str,
    principal: Principal,
    reason: str,
    actor: audit.Actor,
) -> View:
    with transaction(sessions) as session:
        row, me = load_visible(session, request_id, principal)
        access_requests.revoke(session, row, me, principal.role is Role.ADMIN, actor, reason)
        return view(session, row, me)


def extend(
    sessions: sessionmaker[Session],
    request_id: str,
    principal: Principal,
    seconds: int,
    actor: audit.Actor,
) -> View:
    with transaction(sessions) as session:
        row, me = load_visible(session, request_id, principal)
        access_requests.extend(session, row, me, seconds, actor)
        return view(session, row, me)


def plan_job(sessions: sessionmaker[Session], request_id: str, principal: Principal) -> str:
    """The id of the request's dry-run job (one in progress is shared)."""
    with transaction(sessions) as session:
        row, _ = load_visible(session, request_id, principal)
        return plans.plan_job(session, row, principal.id).id


def finished_job(sessions: sessionmaker[Session], job_id: str) -> Job | None:
    """The job once it finished (detached), else None. A read: waiting callers never take a
    lock."""
    with read_transaction(sessions) as session:
        job = session.get(Job, job_id)
        if job is None or job.finished_at is None:
            return None
        session.expunge(job)
        return job
