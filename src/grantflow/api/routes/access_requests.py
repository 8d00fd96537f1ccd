"""Access requests: ask, decide, cancel, revoke, extend; mine, to approve, all."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from grantflow.api.deps import Ctx, CurrentUser, actor_of
from grantflow.api.paging import MAX_OFFSET
from grantflow.api.session_cut_view import SessionCutPublic
from grantflow.domain.authz import Principal, Role
from grantflow.services.access import access_requests, plans, request_lists, request_views
from grantflow.services.errors import Conflict, Forbidden, NotFound
from grantflow.store.db import read_transaction, transaction
from grantflow.store.models import (
    AccessRequest,
    Approval,
    User,
)

router = APIRouter(prefix="/api/v1/access-requests", tags=["access requests"])


class RequestCreate(BaseModel):
    resource_ids: list[str] = Field(min_length=1, max_length=50)
    permission: str = Field(min_length=1, max_length=255)
    duration_seconds: int | None = Field(default=None, ge=60, le=30 * 86400)
    justification: str = Field(default="", max_length=2000)


class Decision(BaseModel):
    reason: str = Field(default="", max_length=2000)


class Extension(BaseModel):
    seconds: int = Field(ge=60, le=30 * 86400)


class Scope(StrEnum):
    MINE = "mine"
    TO_APPROVE = "to_approve"
    ALL = "all"


class GrantPublic(BaseModel):
    id: str
    resource_id: str | None
    resource_name: str | None
    resource_type: str | None
    account_id: str | None
    state: str
    pre_existing: bool | None
    error: str | None
    granted_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    access: dict[str, Any] = Field(default_factory=dict)
    session_cut: SessionCutPublic | None = Field(
        None, description="the cut of the user's existing AWS sessions when the grant ended"
    )


class ApprovalPublic(BaseModel):
    approver_id: str
    approver: str
    decision: str
    reason: str
    created_at: datetime


class RequestPublic(BaseModel):
    id: str
    requester_id: str
    requester: str
    integration_id: str
    flow_id: str | None
    resource_type: str
    permission: str
    justification: str
    duration_seconds: int
    state: str
    end_reason: str | None
    failure_reason: str | None
    extensions: int
    max_extensions: int = Field(0, description="extensions the request's flow allows")
    created_at: datetime
    approved_at: datetime | None
    granted_at: datetime | None
    expires_at: datetime | None
    ended_at: datetime | None
    approval: dict[str, Any]
    approvals: list[ApprovalPublic]
    grants: list[GrantPublic]
    can_approve: bool = False


def _user(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.id)
    if user is None:
        raise NotFound("user not found")
    return user


def _visible(session: Session, request: AccessRequest, user: User, principal: Principal) -> bool:
    return (
        principal.role is Role.ADMIN
        or request.requester_id == user.id
        or access_requests.can_approve(session, request, user)
        or session.scalar(select(Approval.id).where(Approval.request_id == request.id,
                                                    Approval.approver_id == user.id)) is not None
    )  # fmt: skip


def to_public(
    session: Session, request: AccessRequest, viewer: User | None = None
) -> RequestPublic:
    mine = bool(viewer and request.state == "pending"
                and access_requests.can_approve(session, request, viewer))  # fmt: skip
    view = request_views.views(session, [request], viewer, {request.id} if mine else set())
    return RequestPublic.model_validate(view[0])


def _load(session: Session, request_id: str, principal: Principal) -> tuple[AccessRequest, User]:
    request = access_requests.get(session, request_id)
    user = _user(session, principal)
    if not _visible(session, request, user, principal):
        raise NotFound(f"no access request {request_id}")
    return request, user


@router.post("", response_model=RequestPublic, status_code=status.HTTP_201_CREATED)
def create(body: RequestCreate, ctx: Ctx, user: CurrentUser, request: Request) -> RequestPublic:
    # checked while reading (flows, justification pattern, principals), then written in a
    # short write transaction: nothing a member typed is worked on while writers wait
    with read_transaction(ctx.sessions) as session:
        checked = access_requests.check_submission(
            session, _user(session, user), body.resource_ids, body.permission,
            body.duration_seconds, body.justification,
        )  # fmt: skip
    with transaction(ctx.sessions) as session:
        row = access_requests.record_submission(
            session, _user(session, user), checked, actor_of(user, request)
        )
        return to_public(session, row)


@router.get("", response_model=list[RequestPublic])
def list_requests(
    ctx: Ctx,
    user: CurrentUser,
    response: Response,
    scope: Scope = Scope.MINE,
    state: Annotated[str | None, Query(max_length=16)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RequestPublic]:
    """Newest first, ``limit`` from ``offset``; the header ``X-Total-Count`` counts them all."""
    if scope is Scope.ALL and user.role is not Role.ADMIN:
        raise Forbidden("only admins can list all requests")
    with read_transaction(ctx.sessions) as session:
        me = _user(session, user)
        if scope is Scope.MINE:
            found = request_lists.mine(session, me, state, offset, limit)
        elif scope is Scope.TO_APPROVE:
            found = request_lists.to_approve(session, me, state, offset, limit)
        else:
            found = request_lists.everything(session, state, offset, limit)
        approvable = {r.id for r in found.rows} if scope is Scope.TO_APPROVE else None
        rows = request_views.views(session, found.rows, me, approvable)
    response.headers["X-Total-Count"] = str(found.total)
    return [RequestPublic.model_validate(r) for r in rows]


@router.get("/{request_id}", response_model=RequestPublic)
def get(request_id: str, ctx: Ctx, user: CurrentUser) -> RequestPublic:
    with read_transaction(ctx.sessions) as session:
        row, me = _load(session, request_id, user)
        return to_public(session, row, me)


def _decide(
    request_id: str, approve: bool, body: Decision, ctx: Ctx, user: Principal, request: Request
) -> RequestPublic:
    with transaction(ctx.sessions) as session:
        row, me = _load(session, request_id, user)
        access_requests.decide(session, row, me, approve, body.reason, actor_of(user, request))
        public = to_public(session, row, me)
    if approve and public.state == "failed":
        # today's policy no longer allows it (services.request_policy): failed, and committed
        raise Conflict(f"approval refused, the request is now failed: {public.failure_reason}")
    return public


@router.post("/{request_id}/approve", response_model=RequestPublic)
def approve(
    request_id: str, body: Decision, ctx: Ctx, user: CurrentUser, request: Request
) -> RequestPublic:
    return _decide(request_id, True, body, ctx, user, request)


@router.post("/{request_id}/reject", response_model=RequestPublic)
def reject(
    request_id: str, body: Decision, ctx: Ctx, user: CurrentUser, request: Request
) -> RequestPublic:
    return _decide(request_id, False, body, ctx, user, request)


@router.post("/{request_id}/cancel", response_model=RequestPublic)
def cancel(request_id: str, ctx: Ctx, user: CurrentUser, request: Request) -> RequestPublic:
    with transaction(ctx.sessions) as session:
        row, me = _load(session, request_id, user)
        access_requests.cancel(session, row, me, actor_of(user, request))
        return to_public(session, row, me)


@router.post("/{request_id}/revoke", response_model=RequestPublic)
def revoke(
    request_id: str, body: Decision, ctx: Ctx, user: CurrentUser, request: Request
) -> RequestPublic:
    with transaction(ctx.sessions) as session:
        row, me = _load(session, request_id, user)
        access_requests.revoke(session, row, me, user.role is Role.ADMIN,
                               actor_of(user, request), body.reason)  # fmt: skip
        return to_public(session, row, me)


@router.post("/{request_id}/extend", response_model=RequestPublic)
def extend(
    request_id: str, body: Extension, ctx: Ctx, user: CurrentUser, request: Request
) -> RequestPublic:
    with transaction(ctx.sessions) as session:
        row, me = _load(session, request_id, user)
        access_requests.extend(session, row, me, body.seconds, actor_of(user, request))
        return to_public(session, row, me)


class PlanPublic(BaseModel):
    request_id: str
    job_id: str
    items: list[dict[str, Any]]


PLAN_WAIT_SECONDS = 25.0
PLAN_POLL_SECONDS = 0.5  # waiting callers look at their dry run this often


def _too_many(err: plans.TooManyPlans) -> HTTPException:
    retry = {"Retry-After": str(err.retry_after_seconds)}
    return HTTPException(err.status, err.message, headers=retry)


def _throttle_plan_calls(request: Request) -> None:
    """Runs before authentication: a credential over the plan-call limit is refused without
    any database work, so a flood of refused calls costs next to nothing."""
    secret = request.headers.get("authorization") or request.headers.get("cookie")
    if not secret:
        return  # anonymous: authentication answers 401
    try:
        plans.admit_call(plans.credential_key(secret))
    except plans.TooManyPlans as err:
        raise _too_many(err) from err


@router.get(
    "/{request_id}/plan",
    response_model=PlanPublic,
    responses={429: {"description": "too many dry runs lately (see Retry-After)"}},
)
async def plan(
    request_id: str,
    _throttle: Annotated[None, Depends(_throttle_plan_calls)],  # before CurrentUser: first
    ctx: Ctx,
    user: CurrentUser,
) -> PlanPublic:
    """Dry run: the AWS calls granting (or, once granted, revoking) would make now.

    Callers share the request's dry run in progress, and one that finished in the last few
    seconds is the answer; too many calls, or too many dry runs waiting, answer 429."""
    import asyncio
    import time

    from fastapi.concurrency import run_in_threadpool

    from grantflow.services.errors import Unavailable
    from grantflow.store.models import Job

    def enqueue() -> str:
        with transaction(ctx.sessions) as session:
            row, _ = _load(session, request_id, user)
            return plans.plan_job(session, row, user.id).id

    try:
        plans.admit_call(user.id)
        job_id = await run_in_threadpool(enqueue)
    except plans.TooManyPlans as err:
        raise _too_many(err) from err

    def outcome(job_id: str) -> Job | None:
        with read_transaction(ctx.sessions) as session:  # waiting callers never take a lock
            job = session.get(Job, job_id)
            if job is None or job.finished_at is None:
                return None
            session.expunge(job)
            return job

    deadline = time.monotonic() + PLAN_WAIT_SECONDS
    while time.monotonic() < deadline:
        job = await run_in_threadpool(outcome, job_id)
        if job is not None:
            if job.state != "succeeded":
                raise Unavailable(f"the connector could not plan: {job.last_error}")
            return PlanPublic(request_id=request_id, job_id=job_id,
                              items=list((job.result or {}).get("items", [])))  # fmt: skip
        await asyncio.sleep(PLAN_POLL_SECONDS)
    raise Unavailable("the connector did not answer in time; is it connected?")
