"""Dry runs: the AWS calls a grant or a revoke would make, planned by the connector
against AWS's actual state (the same plan the grant and revoke jobs apply).

A dry run is the one piece of connector work any member can ask for at will, so it is bounded
four ways: it is leased after every other job (``JobPriority.PLAN``), a request has at most
one dry run queued or running (callers share it) and a finished one younger than
``REUSE_SECONDS`` is the answer, a user has at most ``QUEUED_PER_USER`` dry runs waiting in a
connector's queue, and at most ``CALLS_PER_USER`` plan calls per ``CALLS_WINDOW_SECONDS`` in
each server process. Past a bound the caller gets a 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grantflow.domain.connector_jobs import JobType, PlanItem, PlanPayload, payload_for
from grantflow.domain.jobs import JobPriority, JobState
from grantflow.services.access import grant_building, grant_jobs
from grantflow.services.errors import Conflict, ServiceError
from grantflow.services.jobs import queue as jobs
from grantflow.store.models import AccessRequest, Grant, Integration, Job, Resource, User
from grantflow.store.types import utcnow

PLANNABLE = ("pending", "approved", "granting", "granted", "revoking")

REUSE_SECONDS = 10.0  # a dry run finished this recently answers the next call for the request
QUEUED_PER_USER = 5  # a user's dry runs queued or running in one connector's queue
CALLS_PER_USER = 20  # plan calls a user may make per window, in one server process
CALLS_WINDOW_SECONDS = 60.0
DEPTH_RETRY_SECONDS = 10  # Retry-After when the user's dry runs fill their share of the queue


class TooManyPlans(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class CallLimiter:
    """At most ``limit`` calls per key in any ``window`` seconds (sliding), in this process.

    It protects the process that answers the calls (each one waits for the connector); the
    queue itself is bounded in the database, across replicas, by ``plan_job``."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = max(1, limit)
        self.window = window
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = clock() + window

    def admit(self, key: str) -> int | None:
        """Count a call and return None, or return the seconds until one is allowed."""
        now = self._clock()
        since = now - self.window
        with self._lock:
            if now >= self._next_sweep:  # forget keys idle for a whole window, once a window
                self._calls = {k: q for k, q in self._calls.items() if q[-1] > since}
                self._next_sweep = now + self.window
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= since:
                calls.popleft()
            if len(calls) >= self.limit:
                return max(1, math.ceil(calls[0] - since))
            calls.append(now)
            return None


CALLS = CallLimiter(CALLS_PER_USER, CALLS_WINDOW_SECONDS)


def admit_call(key: str, limiter: CallLimiter | None = None) -> None:
    """Raise ``TooManyPlans`` when ``key`` (a user id, or ``credential_key``) has made too
    many plan calls lately."""
    limiter = limiter or CALLS
    wait = limiter.admit(key)
    if wait is not None:
        raise TooManyPlans(
            f"too many dry runs: at most {limiter.limit} plan calls per "
            f"{limiter.window:.0f} s; try again in {wait} s",
            wait,
        )


def credential_key(secret: str) -> str:
    """What a credential's plan calls are counted under before it is checked: refusing an
    over-limit caller then costs no database work (its user is counted after sign-in too)."""
    return "credential:" + hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def plan_key(request_id: str) -> str:
    return f"plan:{request_id}"


def plan_job(session: Session, request: AccessRequest, user_id: str) -> Job:
    """The job that answers a plan call: the request's dry run already queued or running,
    else one that finished successfully less than ``REUSE_SECONDS`` ago for the request in
    its current state, else a new one (if ``user_id`` has room in the queue)."""
    if request.state not in PLANNABLE:
        raise Conflict(f"a {request.state} request has nothing left to plan")
    current = session.scalar(select(Job).where(Job.idempotency_key == plan_key(request.id)))
    if current is not None:
        if current.finished_at is None:
            return current
        fresh = utcnow() - current.finished_at < timedelta(seconds=REUSE_SECONDS)
        same = current.payload.get("request_state") == request.state
        if current.state == JobState.SUCCEEDED.value and fresh and same:
            return current
    integ = session.get(Integration, request.integration_id)
    assert integ is not None
    waiting = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(
            Job.connector_id == integ.connector_id,
            Job.state.in_((JobState.QUEUED.value, JobState.LEASED.value)),
            Job.priority == int(JobPriority.PLAN),
            Job.payload["requested_by"].as_string() == user_id,
        )
    )
    if (waiting or 0) >= QUEUED_PER_USER:
        raise TooManyPlans(
            f"you have {waiting} dry runs waiting for the connector (at most "
            f"{QUEUED_PER_USER}); try again when they have finished",
            DEPTH_RETRY_SECONDS,
        )
    return enqueue_plan(session, request, user_id)


def enqueue_plan(session: Session, request: AccessRequest, user_id: str | None = None) -> Job:
    if request.state not in PLANNABLE:
        raise Conflict(f"a {request.state} request has nothing left to plan")
    integ = session.get(Integration, request.integration_id)
    user = session.get(User, request.requester_id)
    assert integ is not None and user is not None
    items: list[PlanItem] = []
    for grant in session.scalars(select(Grant).where(Grant.request_id == request.id)):
        if grant.state in ("granted", "revoking") and grant.handle:
            needed = grant_jobs.still_needed(session, grant)
            items.append(PlanItem(grant_id=grant.id, action="revoke", handle=grant.handle,
                                  still_needed=needed))  # fmt: skip
            continue
        resource = session.get(Resource, grant.resource_id) if grant.resource_id else None
        if resource is None:
            continue
        spec = (
            grant.spec
            or grant_building.build(session, integ, user, resource, request.permission).spec
        )
        items.append(PlanItem(grant_id=grant.id, action="grant", spec=spec))
    payload = payload_for(JobType.PLAN, PlanPayload(
        request_id=request.id, request_state=request.state, items=items, requested_by=user_id,
        **grant_jobs.access_of(integ)))  # fmt: skip
    return jobs.enqueue(
        session, integ.connector_id, JobType.PLAN, payload, max_attempts=2,
        idempotency_key=plan_key(request.id), priority=JobPriority.PLAN,
    )  # fmt: skip
