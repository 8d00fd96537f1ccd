"""Access requests: ask, decide, cancel, revoke, extend; mine, to approve, all."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from grantflow.api.deps import Ctx, CurrentUser, actor_of
from grantflow.api.paging import MAX_OFFSET
from grantflow.api.session_cut_view import SessionCutPublic
from grantflow.domain.authz import Principal, Role
from grantflow.domain.request_states import EndReason, RequestState
from grantflow.services.access import plans, request_actions
from grantflow.services.errors import Conflict, Forbidden, Unavailable

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


class ListScope(StrEnum):
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
    state: RequestState
    end_reason: EndReason | None
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


@router.post("", response_model=RequestPublic, status_code=status.HTTP_201_CREATED)
def create(body: RequestCreate, ctx: Ctx, user: CurrentUser, request: Request) -> RequestPublic:
    found = request_actions.submit(
        ctx.sessions, user, body.resource_ids, body.permission, body.duration_seconds,
        body.justification, actor_of(user, request),
    )  # fmt: skip
    return RequestPublic.model_validate(found)


@router.get("", response_model=list[RequestPublic])
def list_requests(
    ctx: Ctx,
    user: CurrentUser,
    response: Response,
    scope: ListScope = ListScope.MINE,
    state: Annotated[str | None, Query(max_length=16)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RequestPublic]:
    """Newest first, ``limit`` from ``offset``; the header ``X-Total-Count`` counts them all."""
    if scope is ListScope.ALL and user.role is not Role.ADMIN:
        raise Forbidden("only admins can list all requests")
    rows, total = request_actions.listed(ctx.sessions, user, scope.value, state, offset, limit)
    response.headers["X-Total-Count"] = str(total)
    return [RequestPublic.model_validate(r) for r in rows]


@router.get("/{request_id}", response_model=RequestPublic)
def get(request_id: str, ctx: Ctx, user: CurrentUser) -> RequestPublic:
    return RequestPublic.model_validate(request_actions.show(ctx.sessions, request_id, user))


def _decide(
    request_id: str, approve: bool, body: Decision, ctx: Ctx, user: Principal, request: Request
) -> RequestPublic:
    public = RequestPublic.model_validate(request_actions.decide(
        ctx.sessions, request_id, user, approve, body.reason, actor_of(user, request)))  # fmt: skip
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
    found = request_actions.cancel(ctx.sessions, request_id, user, actor_of(user, request))
    return RequestPublic.model_validate(found)


@router.post("/{request_id}/revoke", response_model=RequestPublic)
def revoke(
    request_id: str, body: Decision, ctx: Ctx, user: CurrentUser, request: Request
) -> RequestPublic:
    found = request_actions.revoke(
        ctx.sessions, request_id, user, body.reason, actor_of(user, request)
    )
    return RequestPublic.model_validate(found)


@router.post("/{request_id}/extend", response_model=RequestPublic)
def extend(
    request_id: str, body: Extension, ctx: Ctx, user: CurrentUser, request: Request
) -> RequestPublic:
    found = request_actions.extend(
        ctx.sessions, request_id, user, body.seconds, actor_of(user, request)
    )
    return RequestPublic.model_validate(found)


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
    try:
        plans.admit_call(user.id)
        job_id = await run_in_threadpool(request_actions.plan_job, ctx.sessions, request_id, user)
    except plans.TooManyPlans as err:
        raise _too_many(err) from err

    deadline = time.monotonic() + PLAN_WAIT_SECONDS
    while time.monotonic() < deadline:
        job = await run_in_threadpool(request_actions.finished_job, ctx.sessions, job_id)
        if job is not None:
            if job.state != "succeeded":
                raise Unavailable(f"the connector could not plan: {job.last_error}")
            return PlanPublic(request_id=request_id, job_id=job_id,
                              items=list((job.result or {}).get("items", [])))  # fmt: skip
        await asyncio.sleep(PLAN_POLL_SECONDS)
    raise Unavailable("the connector did not answer in time; is it connected?")
