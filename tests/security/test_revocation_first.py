"""Revocation never waits behind work a member can make: dry runs (``GET …/plan``) are shared
per request, bounded per user and rate-limited with a 429, and a connector leases revocations
and expiries before grants, upkeep and dry runs, whatever was queued first.

Through HTTP: the member's calls, the revoke, and the connector's lease (its own endpoint and
token). No connector process runs: a plan call waits briefly, answers 503, and leaves its job
queued, as it would behind a busy connector.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.api.routes import access_requests as routes
from grantflow.domain.jobs import JobPriority
from grantflow.services.access import grant_jobs, plans
from grantflow.services.audit import trail as audit
from grantflow.services.auth.tokens import create_personal_token
from grantflow.services.jobs import queue as jobs
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessRequest,
    ApiToken,
    AuditEvent,
    Grant,
    Integration,
    Job,
    Resource,
    User,
)
from grantflow.store.types import utcnow
from tests.fixtures.api import Api
from tests.fixtures.db import postgresql_only
from tests.fixtures.integrations import integration_config

CONFIG = integration_config()


@dataclass
class World:
    connector_id: str
    connector_token: str
    member_id: str
    member_token: str
    integration_id: str
    resource_id: str

    def member(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.member_token}"}

    def connector(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.connector_token}"}


def _world(api: Api) -> World:
    made = api.client.post("/api/v1/connectors", json={"name": "c"}, headers=api.as_admin())
    assert made.status_code == 201, made.text
    connector_id = made.json()["id"]
    sessions = _sessions(api)
    with transaction(sessions) as session:
        user = User(username="flooder", role="member")
        session.add(user)
        session.flush()
        token = create_personal_token(session, user, "t", audit.SYSTEM).plaintext
        integ = Integration(name="org", type="aws-organization", connector_id=connector_id,
                            status="active", resource_types=["aws-account"], config=CONFIG,
                            # just reconciled: the scheduler queues no reconcile job meanwhile
                            facts={"reconciled_at": utcnow().isoformat()})  # fmt: skip
        session.add(integ)
        session.flush()
        resource = Resource(integration_id=integ.id, type="aws-account", aws_id="111111111111",
                            name="prod", account_id="111111111111", ou_path=["r-root"])  # fmt: skip
        session.add(resource)
        session.flush()
        return World(connector_id, made.json()["token"], user.id, token, integ.id, resource.id)


def _sessions(api: Api) -> sessionmaker[Session]:
    return api.client.app.state.ctx.sessions  # type: ignore[attr-defined,no-any-return]


def _granted_request(api: Api, world: World, n: int) -> str:
    """A request of the member's, granted (its grant holds an assignment in AWS)."""
    now = utcnow()
    with transaction(_sessions(api)) as session:
        request = AccessRequest(
            requester_id=world.member_id, integration_id=world.integration_id,
            resource_type="aws-account", permission="ReadOnly", duration_seconds=3600,
            state="granted", approved_at=now, granted_at=now, expires_at=now + timedelta(hours=1),
        )  # fmt: skip
        session.add(request)
        session.flush()
        handle = {"account_id": "111111111111", "principal_id": f"p-{n}", "principal_type": "USER",
                  "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-1/ps-1"}  # fmt: skip
        session.add(Grant(request_id=request.id, resource_id=world.resource_id, state="granted",
                          tuple_key=f"111111111111|ps-1|p-{n}", spec=handle, handle=handle,
                          pre_existing=False, granted_at=now,
                          expires_at=request.expires_at))  # fmt: skip
        return request.id


def _plan_jobs(api: Api, request_id: str | None = None) -> list[Job]:
    with transaction(_sessions(api)) as session:
        query = select(Job).where(Job.type == "plan", Job.priority == int(JobPriority.PLAN))
        rows = [j for j in session.scalars(query) if request_id in (None, j.payload["request_id"])]
        session.expunge_all()
        return rows


def _lease(api: Api, world: World, max_jobs: int) -> list[dict[str, Any]]:
    r = api.client.post(f"/api/v1/connectors/{world.connector_id}/jobs/lease",
                        json={"max_jobs": max_jobs, "wait_seconds": 0, "lease_seconds": 300},
                        headers=world.connector())  # fmt: skip
    assert r.status_code == 200, r.text
    leased: list[dict[str, Any]] = r.json()["jobs"]
    return leased


@pytest.fixture
def world(api: Api, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setattr(routes, "PLAN_WAIT_SECONDS", 0.2)  # no connector runs: 503, job stays
    monkeypatch.setattr(plans, "CALLS", plans.CallLimiter(plans.CALLS_PER_USER, 3600.0))
    return _world(api)


def test_a_flood_of_plan_calls_queues_one_job_and_then_answers_429(api: Api, world: World) -> None:
    request_id = _granted_request(api, world, 0)
    statuses = []
    for _ in range(plans.CALLS_PER_USER):
        r = api.client.get(f"/api/v1/access-requests/{request_id}/plan", headers=world.member())
        statuses.append(r.status_code)
        assert r.status_code == 503, r.text  # waiting for the connector, not refused
    assert len(_plan_jobs(api, request_id)) == 1  # every call shared one dry run

    used_at = _token_last_used(api)
    r = api.client.get(f"/api/v1/access-requests/{request_id}/plan", headers=world.member())
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) >= 1
    error = r.json()["error"]
    assert error["code"] == "rate_limited"
    assert "too many dry runs" in error["message"] and "try again in" in error["message"]
    assert len(_plan_jobs(api, request_id)) == 1
    assert _token_last_used(api) == used_at  # refused before authentication: no DB work


def _token_last_used(api: Api) -> object:
    with transaction(_sessions(api)) as session:
        return session.scalars(select(ApiToken.last_used_at).where(ApiToken.name == "t")).one()


def test_the_call_limiter_slides_and_forgets_idle_callers() -> None:
    now = [0.0]
    limiter = plans.CallLimiter(2, 60.0, clock=lambda: now[0])
    assert limiter.admit("a") is None
    now[0] = 30.0
    assert limiter.admit("a") is None
    assert limiter.admit("a") == 30  # the first call leaves the window at 60 s
    assert limiter.admit("b") is None  # per key
    now[0] = 60.5
    assert limiter.admit("a") is None
    now[0] = 200.0
    assert limiter.admit("c") is None
    assert set(limiter._calls) == {"c"}  # idle for a whole window: forgotten


def test_a_users_waiting_dry_runs_are_bounded(api: Api, world: World) -> None:
    requests = [_granted_request(api, world, n) for n in range(plans.QUEUED_PER_USER + 1)]
    for request_id in requests[:-1]:
        r = api.client.get(f"/api/v1/access-requests/{request_id}/plan", headers=world.member())
        assert r.status_code == 503, r.text
    r = api.client.get(f"/api/v1/access-requests/{requests[-1]}/plan", headers=world.member())
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == str(plans.DEPTH_RETRY_SECONDS)
    assert f"at most {plans.QUEUED_PER_USER}" in r.json()["error"]["message"]
    assert len(_plan_jobs(api)) == plans.QUEUED_PER_USER
    assert _plan_jobs(api, requests[-1]) == []


def test_a_recent_dry_run_is_the_answer_and_an_old_one_is_not(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = _granted_request(api, world, 0)
    path = f"/api/v1/access-requests/{request_id}/plan"
    assert api.client.get(path, headers=world.member()).status_code == 503
    (leased,) = _lease(api, world, 1)
    assert leased["type"] == "plan"
    items = [{"grant_id": "g", "action": "revoke", "steps": [], "in_sync": False}]
    done = api.client.post(f"/api/v1/connectors/{world.connector_id}/jobs/{leased['id']}/complete",
                           json={"lease_id": leased["lease_id"], "result": {"items": items}},
                           headers=world.connector())  # fmt: skip
    assert done.status_code == 200, done.text

    again = api.client.get(path, headers=world.member())
    assert again.status_code == 200, again.text
    assert again.json()["job_id"] == leased["id"] and again.json()["items"] == items
    assert len(_plan_jobs(api, request_id)) == 1

    monkeypatch.setattr(plans, "REUSE_SECONDS", 0.0)  # the result is now too old
    assert api.client.get(path, headers=world.member()).status_code == 503
    assert len(_plan_jobs(api, request_id)) == 2


def test_revocations_and_expiries_are_leased_before_everything_queued_earlier(
    api: Api, world: World
) -> None:
    to_revoke = _granted_request(api, world, 0)
    to_expire = _granted_request(api, world, 1)
    flooded = [_granted_request(api, world, n) for n in range(2, 2 + plans.QUEUED_PER_USER)]
    for request_id in flooded:  # the member's dry runs, queued first
        for _ in range(3):
            api.client.get(f"/api/v1/access-requests/{request_id}/plan", headers=world.member())
    assert len(_plan_jobs(api)) == plans.QUEUED_PER_USER
    sessions = _sessions(api)
    with transaction(sessions) as session:  # upkeep and a grant, queued before the revokes
        jobs.enqueue(session, world.connector_id, "sync", {})
        jobs.enqueue(session, world.connector_id, "grant", {"grant_id": "another"})

    r = api.client.post(f"/api/v1/access-requests/{to_revoke}/revoke", json={},
                        headers=world.member())  # fmt: skip
    assert r.status_code == 200, r.text
    with transaction(sessions) as session:
        session.get_one(AccessRequest, to_expire).expires_at = utcnow() - timedelta(seconds=1)
    with transaction(sessions) as session:
        assert grant_jobs.expire_due(session) == 1

    first = _lease(api, world, 1) + _lease(api, world, 1)
    assert [j["type"] for j in first] == ["revoke", "revoke"]
    assert {j["payload"]["grant_id"] for j in first} == _grant_ids(api, [to_revoke, to_expire])
    rest = _lease(api, world, 50)
    assert [j["type"] for j in rest] == ["grant", "sync", "plan"]  # one dry run at a time


def test_dry_runs_never_take_more_than_one_connector_slot(api: Api, world: World) -> None:
    """However many are queued, a connector holds one dry run at a time: its other slots stay
    free for a revocation arriving meanwhile."""
    sessions = _sessions(api)
    with transaction(sessions) as session:
        for n in range(3):
            jobs.enqueue(session, world.connector_id, "plan", {"n": n})
    (first,) = _lease(api, world, 4)
    assert first["type"] == "plan"
    assert _lease(api, world, 4) == []  # the others wait while one runs
    with transaction(sessions) as session:
        jobs.enqueue(session, world.connector_id, "revoke", {"grant_id": "g"})
    assert [j["type"] for j in _lease(api, world, 4)] == ["revoke"]
    done = api.client.post(f"/api/v1/connectors/{world.connector_id}/jobs/{first['id']}/complete",
                           json={"lease_id": first["lease_id"], "result": {"items": []}},
                           headers=world.connector())  # fmt: skip
    assert done.status_code == 200, done.text
    assert [j["type"] for j in _lease(api, world, 4)] == ["plan"]


def test_a_waiting_grant_job_never_runs_after_its_grants_revoke(api: Api, world: World) -> None:
    """Revokes jump the queue, so a grant job of the same grant still waiting (a regrant, a
    repair) would put the access back after the revoke: the revoke cancels it."""
    request_id = _granted_request(api, world, 0)
    sessions = _sessions(api)
    with transaction(sessions) as session:
        grant = session.scalars(select(Grant).where(Grant.request_id == request_id)).one()
        integ = session.get_one(Integration, world.integration_id)
        grant_job = grant_jobs.enqueue_grant(session, integ, grant).id  # e.g. a regrant
    r = api.client.post(f"/api/v1/access-requests/{request_id}/revoke", json={},
                        headers=world.member())  # fmt: skip
    assert r.status_code == 200, r.text

    leased = _lease(api, world, 50)
    assert [j["type"] for j in leased] == ["revoke"]
    with transaction(sessions) as session:
        job = session.get_one(Job, grant_job)
        assert (job.state, job.last_error) == ("cancelled", "superseded by the grant's revoke")
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "job.cancelled")
        ).all()
        assert [e.target_id for e in events] == [grant_job]


def _grant_ids(api: Api, request_ids: list[str]) -> set[str]:
    with transaction(_sessions(api)) as session:
        return set(session.scalars(select(Grant.id).where(Grant.request_id.in_(request_ids))))


def _queue(sessions: sessionmaker[Session], connector_id: str) -> dict[str, str]:
    """A plan, a sync, a grant and a revoke, queued in that order; type → job id."""
    with transaction(sessions) as session:
        return {
            t: jobs.enqueue(session, connector_id, t, {}).id
            for t in ("plan", "sync", "grant", "revoke")
        }


def test_the_lease_reads_by_priority_then_availability(api: Api, world: World) -> None:
    sessions = _sessions(api)
    _queue(sessions, world.connector_id)
    with transaction(sessions) as session:  # an older revoke, retried later, still goes first
        older = jobs.enqueue(session, world.connector_id, "revoke", {"n": 2},
                             available_at=utcnow() - timedelta(minutes=5))  # fmt: skip
        older_id = older.id
    with transaction(sessions) as session:
        leased = jobs.lease(session, world.connector_id, 10, 60)
        assert [(x.job.type, x.job.priority) for x in leased] == [
            ("revoke", JobPriority.REVOKE), ("revoke", JobPriority.REVOKE),
            ("grant", JobPriority.GRANT), ("sync", JobPriority.SYNC), ("plan", JobPriority.PLAN),
        ]  # fmt: skip
        assert leased[0].job.id == older_id


@postgresql_only
def test_concurrent_leases_skip_a_locked_revoke_for_the_next_priority(
    api: Api, world: World
) -> None:
    """PostgreSQL's FOR UPDATE SKIP LOCKED path: while one replica holds the revoke, another
    takes the grant (the next class), not the dry run queued before both."""
    sessions = _sessions(api)
    ids = _queue(sessions, world.connector_id)
    first, second = sessions(), sessions()
    try:
        with first.begin():
            (a,) = jobs.lease(first, world.connector_id, 1, 60)
            assert a.job.id == ids["revoke"]
            with second.begin():
                (b,) = jobs.lease(second, world.connector_id, 1, 60)
                assert b.job.id == ids["grant"]
    finally:
        first.close()
        second.close()
    with transaction(sessions) as session:
        waiting = select(func.count()).select_from(Job).where(Job.state == "queued")
        assert session.scalar(waiting) == 2
