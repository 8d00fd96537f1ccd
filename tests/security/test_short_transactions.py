"""One slow request stalls nothing (issue 16, item 4), on both backends.

Reads run in read transactions (``store.db.read_transaction``: a deferred BEGIN on SQLite,
READ ONLY on PostgreSQL), a new request is checked (flows, the justification pattern,
principals) before its short write transaction opens, justification patterns are matched by
RE2 in linear time, and ``/readyz`` pings without SQLite's write lock. Before, every
transaction was ``BEGIN IMMEDIATE``: a GET held the write lock for as long as it ran, and the
pattern ``^(\\w+\\s?)*$`` spent 11.6 s on 27 characters inside one while ``/readyz`` waited.

Two ways in:

* in process: a GET (or the checking half of a submit) is held open at the start of its
  transaction, after a real read; while it is held, ``/readyz`` answers, a write lands, the
  scheduler expires a due grant and the connector revokes it. Before, the held transaction was
  ``BEGIN IMMEDIATE`` and the write waited behind it (then "database is locked").
* a live ``grantflow serve``: members flood it with justifications against the catastrophic
  pattern (2,000 characters each, each answered 422 at once), and meanwhile ``/readyz`` answers
  and an expiry is revoked. Before, the first such submission never finished.

No timing thresholds: the assertions are about order (what happened while the slow request was
still in flight), with deadlines far above what a loaded machine needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import ModuleType
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.access import (
    flow_actions,
    request_actions,
    requestable_page,
    resource_lists,
)
from grantflow.services.audit import audit_reads
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.services.directory import group_pages, scim_actions, user_pages
from grantflow.store.db import build_engine, read_transaction, session_factory, transaction
from grantflow.store.models import (
    AccessRequest,
    DirectoryPrincipal,
    Grant,
    Integration,
    Permission,
    Resource,
    User,
)
from grantflow.store.types import utcnow
from tests.fixtures.api import Api
from tests.fixtures.live import LiveServer

CATASTROPHIC = r"^(\w+\s?)*$"  # the pattern: exponential for a backtracking engine
STORE = "d-9067short"
PS_ARN = "arn:aws:sso:::permissionSet/ssoins-short/ps-readonly"
CONFIG = {
    "region": "us-east-1",
    "sso_region": "us-east-1",
    "sso_portal": f"https://{STORE}.awsapps.com/start",
    "management_role_arn": "arn:aws:iam::123456789012:role/GrantflowManagement",
}
DEADLINE = 60.0  # seconds; what a loaded 2-core machine needs is a fraction of it


def _flow_body(integration_id: str, requestors: dict[str, Any], approval: dict[str, Any]) -> Any:
    return {
        "name": "short transactions",
        "integration_id": integration_id,
        "definition": {
            "requestors": requestors,
            "scope": {"resource_types": ["aws-account"]},
            "permissions": {"aws-account": ["ReadOnly"]},
            "approval": approval,
            "justification_required": True,
            "justification_pattern": CATASTROPHIC,
        },
    }


def _seed_integration(session: Session, connector_id: str) -> tuple[str, str]:
    """An integration as a sync leaves it (no AWS): one account, one permission set."""
    facts = {"identity_store_id": STORE, "instance_arn": "arn:aws:sso:::instance/ssoins-short"}
    integ = Integration(name="short-org", type="aws-organization", connector_id=connector_id,
                        status="active", resource_types=["aws-account"], config=CONFIG,
                        facts=facts)  # fmt: skip
    session.add(integ)
    session.flush()
    account = Resource(integration_id=integ.id, type="aws-account", aws_id="111122223333",
                       name="prod", account_id="111122223333", ou_path=["r-root"])  # fmt: skip
    session.add_all([account, Permission(integration_id=integ.id, resource_type="aws-account",
                                         name="ReadOnly", aws_ref=PS_ARN)])  # fmt: skip
    session.flush()
    return integ.id, account.id


def _seed_due_grant(
    sessions: sessionmaker[Session], requester_id: str, integration_id: str, resource_id: str
) -> str:
    """A granted request whose time is up: the scheduler's next expiry tick revokes it."""
    now = utcnow()
    with transaction(sessions) as session:
        request = AccessRequest(
            requester_id=requester_id, integration_id=integration_id,
            resource_type="aws-account", permission="ReadOnly", duration_seconds=3600,
            state="granted", approved_at=now - timedelta(hours=1),
            granted_at=now - timedelta(hours=1), expires_at=now - timedelta(seconds=1),
        )  # fmt: skip
        session.add(request)
        session.flush()
        handle = {"account_id": "111122223333", "principal_id": "p-due", "principal_type": "USER",
                  "permission_set_arn": PS_ARN}  # fmt: skip
        session.add(Grant(request_id=request.id, resource_id=resource_id, state="granted",
                          tuple_key=f"111122223333|ps-readonly|p-due-{request.id}",
                          spec=handle, handle=handle, pre_existing=False,
                          granted_at=request.granted_at,
                          expires_at=request.expires_at))  # fmt: skip
        return request.id


def _state(sessions: sessionmaker[Session], request_id: str) -> tuple[str, str | None]:
    with read_transaction(sessions) as session:
        row = session.get(AccessRequest, request_id)
        assert row is not None
        return row.state, row.end_reason


def _wait_for(what: str, condition: Callable[[], bool], deadline: float = DEADLINE) -> None:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"not within {deadline:.0f} s: {what}")


# ---- in process: a held read transaction --------------------------------------------------


@dataclass
class World:
    api: Api
    ids: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.api.client.app.state.ctx.sessions  # type: ignore[attr-defined,no-any-return]

    def call(self, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
        response: httpx.Response = self.api.client.request(
            method, path, headers=self.headers[who], **kw
        )
        return response

    def submission(self) -> dict[str, Any]:
        return {"resource_ids": [self.ids["account"]], "permission": "ReadOnly",
                "duration_seconds": 3600,
                "justification": "rotate the stuck deploy key"}  # fmt: skip

    def revoke_as_connector(self) -> int:
        """Lease the connector's jobs and report every revoke done; how many."""
        cid = self.ids["connector"]
        r = self.call("connector", "POST", f"/api/v1/connectors/{cid}/jobs/lease",
                      json={"wait_seconds": 0, "max_jobs": 20})  # fmt: skip
        assert r.status_code == 200, r.text
        done = 0
        for job in r.json()["jobs"]:
            if job["type"] == "revoke":
                r = self.call("connector", "POST", f"/api/v1/connectors/{cid}/jobs/{job['id']}"
                              "/complete", json={"lease_id": job["lease_id"],
                                                 "result": {"status": "revoked"}})  # fmt: skip
                assert r.status_code == 200, r.text
                done += 1
        return done


def _world(api: Api) -> World:
    r = api.client.post("/api/v1/connectors", json={"name": "short"}, headers=api.as_admin())
    assert r.status_code == 201, r.text
    world = World(api, {"connector": r.json()["id"]})
    world.headers = {"admin": api.as_admin(),
                     "connector": {"Authorization": f"Bearer {r.json()['token']}"}}  # fmt: skip
    with transaction(world.sessions) as session:
        world.ids["integration"], world.ids["account"] = _seed_integration(
            session, world.ids["connector"]
        )
        for name in ("rita", "abe"):
            user = User(username=name, email=f"{name}@example.com", role="member")
            session.add(user)
            session.flush()
            session.add(DirectoryPrincipal(identity_store_id=STORE, principal_id=f"p-{name}",
                                           user_id=user.id, user_name=name,
                                           email=user.email, matched_by="admin"))  # fmt: skip
            token = create_personal_token(session, user, "test", SYSTEM).plaintext
            world.ids[name] = user.id
            world.headers[name] = {"Authorization": f"Bearer {token}"}
    body = _flow_body(world.ids["integration"], {"user_ids": [world.ids["rita"]]},
                      {"mode": "any", "groups": [{"kind": "users",
                                                   "user_ids": [world.ids["abe"]]}]})  # fmt: skip
    r = world.call("admin", "POST", "/api/v1/access-flows", json=body)
    assert r.status_code == 201, r.text
    r = world.call("rita", "POST", "/api/v1/access-requests", json=world.submission())
    assert r.status_code == 201, r.text
    world.ids["pending"] = r.json()["id"]
    r = world.call("admin", "POST", "/api/v1/scim/tokens", json={"name": "idp"})
    assert r.status_code == 201, r.text
    world.headers["scim"] = {"Authorization": f"Bearer {r.json()['token']}"}
    return world


class Hold:
    """Holds the first transaction a module's handler opens, right after a real read (so a
    snapshot, and on the old code SQLite's write lock, is held), until released; or, with
    ``before_open``, holds the handler just before it opens that transaction."""

    def __init__(self, before_open: bool = False) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._before_open = before_open
        self._armed = True
        self._lock = threading.Lock()

    def _mine(self) -> bool:
        with self._lock:
            mine, self._armed = self._armed, False
        return mine

    def _wait(self) -> None:
        self.entered.set()
        assert self.release.wait(DEADLINE * 3), "never released"

    def wrap(
        self, original: Callable[[sessionmaker[Session]], AbstractContextManager[Session]]
    ) -> Callable[[sessionmaker[Session]], AbstractContextManager[Session]]:
        @contextmanager
        def held(factory: sessionmaker[Session]) -> Iterator[Session]:
            if self._before_open and self._mine():
                self._wait()
            with original(factory) as session:
                if not self._before_open and self._mine():
                    session.scalar(select(func.count()).select_from(User))
                    self._wait()
                yield session

        return held

    def install(
        self,
        monkeypatch: pytest.MonkeyPatch,
        module: ModuleType,
        names: tuple[str, ...] = ("read_transaction", "transaction"),
    ) -> None:
        for name in names:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, self.wrap(getattr(module, name)))


# (label, module whose handler is held, who calls, method, path; {pending} is a request id)
HELD = [
    ("requestable", requestable_page, "rita", "GET", "/api/v1/requestable"),
    ("resources", resource_lists, "admin", "GET", "/api/v1/resources"),
    ("requests-all", request_actions, "admin", "GET", "/api/v1/access-requests?scope=all"),
    ("requests-to-approve", request_actions, "abe", "GET",
     "/api/v1/access-requests?scope=to_approve"),
    ("request", request_actions, "rita", "GET", "/api/v1/access-requests/{pending}"),
    ("submit-check", request_actions, "rita", "POST", "/api/v1/access-requests"),
    ("audit-events", audit_reads, "admin", "GET", "/api/v1/audit-events"),
    ("groups", group_pages, "admin", "GET", "/api/v1/groups"),
    ("users", user_pages, "admin", "GET", "/api/v1/users"),
    ("flows", flow_actions, "admin", "GET", "/api/v1/access-flows"),
    ("scim-users", scim_actions, "scim", "GET", "/scim/v2/Users?filter=userName%20eq%20%22x%22"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("module", "who", "method", "path"),
    [pytest.param(*case[1:], id=case[0]) for case in HELD],
)
def test_a_held_read_never_delays_readyz_writes_or_the_expiry_scheduler(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    who: str,
    method: str,
    path: str,
) -> None:
    world = _world(api)
    hold = Hold()
    hold.install(monkeypatch, module)
    body = world.submission() if method == "POST" else None
    url = path.format(pending=world.ids["pending"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow: Future[httpx.Response] = pool.submit(world.call, who, method, url, json=body)
        try:
            assert hold.entered.wait(DEADLINE), f"{method} {url} never opened its transaction"

            ready = api.client.get("/readyz")
            assert ready.status_code == 200, ready.text
            try:  # a write from outside the app: it waited behind a GET's BEGIN IMMEDIATE
                due = _seed_due_grant(world.sessions, world.ids["rita"], world.ids["integration"],
                                      world.ids["account"])  # fmt: skip
            except OperationalError as err:
                pytest.fail(f"a write waited behind the held {method} {url}: {err}")
            _wait_for("the scheduler expires the due grant",
                      lambda: _state(world.sessions, due) == ("revoking", "expired"))  # fmt: skip
            assert world.revoke_as_connector() == 1
            assert _state(world.sessions, due) == ("expired", "expired")

            assert not slow.done(), "the held request must still be in flight"
        finally:
            hold.release.set()
        answer = slow.result(timeout=DEADLINE)
    assert answer.status_code == (201 if method == "POST" else 200), answer.text


def test_a_flow_changed_between_check_and_write_is_a_conflict(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submission is written only if the flow it was checked against is unchanged: the
    flow is disabled after the check, before the write transaction opens."""
    world = _world(api)
    hold = Hold(before_open=True)
    hold.install(monkeypatch, request_actions, ("transaction",))
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(world.call, "rita", "POST", "/api/v1/access-requests",
                           json=world.submission())  # fmt: skip
        try:
            assert hold.entered.wait(DEADLINE)
            flows = world.call("admin", "GET", "/api/v1/access-flows").json()
            changed = world.call("admin", "PATCH", f"/api/v1/access-flows/{flows[0]['id']}",
                                 json={"enabled": False})  # fmt: skip
            assert changed.status_code == 200, changed.text
        finally:
            hold.release.set()
        answer = slow.result(timeout=DEADLINE)
    assert answer.status_code == 409, answer.text
    assert "changed while your request was checked" in answer.json()["error"]["message"]
    mine = world.call("rita", "GET", "/api/v1/access-requests").json()
    assert [r["id"] for r in mine] == [world.ids["pending"]]  # nothing else was written


# ---- a live server: the catastrophic pattern, flooded --------------------------------------


def _live_world(live: LiveServer) -> dict[str, str]:
    """Through the API where it can (connector, flow); an integration as a sync leaves it."""
    with live.http() as admin:
        r = admin.post("/api/v1/connectors", json={"name": "short"})
        assert r.status_code == 201, r.text
        ids = {"connector": r.json()["id"]}
        me = admin.get("/api/v1/me")
        assert me.status_code == 200, me.text
        ids["admin"] = me.json()["id"]
        engine = build_engine(live.db_url)
        try:
            with transaction(session_factory(engine)) as session:
                ids["integration"], ids["account"] = _seed_integration(session, ids["connector"])
        finally:
            engine.dispose()
        body = _flow_body(ids["integration"], {"everyone": True}, {"mode": "auto"})
        r = admin.post("/api/v1/access-flows", json=body)
        assert r.status_code == 201, r.text
    return ids


def test_a_flood_of_catastrophic_justifications_never_delays_readyz_or_expiry(
    live_server: LiveServer,
) -> None:
    ids = _live_world(live_server)
    # 2,000 characters (the API's limit) with a mismatch at the very end: a backtracking
    # engine would try every way of splitting the words before saying no
    justification = "rotate the stuck deploy key " * 71 + "!"
    submission = {"resource_ids": [ids["account"]], "permission": "ReadOnly",
                  "justification": justification[-2000:]}  # fmt: skip
    stop = threading.Event()
    answers: list[tuple[int, str | None]] = []
    failures: list[BaseException] = []

    def flood() -> None:
        with live_server.http() as client:
            while not stop.is_set():
                try:
                    r = client.post("/api/v1/access-requests", json=submission, timeout=DEADLINE)
                    answers.append((r.status_code, r.json()["error"].get("field")))
                except Exception as err:  # noqa: BLE001 - reported by the test below
                    failures.append(err)
                    return

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(3)]
    for thread in flooders:
        thread.start()
    readiness: list[int] = []
    engine = build_engine(live_server.db_url)
    try:
        sessions = session_factory(engine)
        _wait_for("the first submissions are answered", lambda: len(answers) >= 3 or bool(failures))
        assert not failures, f"a submission never answered: {failures[0]!r}"

        due = _seed_due_grant(sessions, ids["admin"], ids["integration"], ids["account"])

        def expired_meanwhile() -> bool:
            ready = httpx.get(f"{live_server.url}/readyz", timeout=DEADLINE)
            readiness.append(ready.status_code)
            return _state(sessions, due) == ("revoking", "expired")

        _wait_for("the scheduler expires a grant during the flood", expired_meanwhile)
        assert all(t.is_alive() for t in flooders) and not failures, "the flood was still on"
        before_stop = len(answers)
    finally:
        stop.set()
        for thread in flooders:
            thread.join(DEADLINE)
        engine.dispose()
    assert not failures, f"a submission never answered: {failures[0]!r}"
    assert readiness and set(readiness) == {200}, readiness
    assert before_stop >= 3
    assert set(answers) == {(422, "justification")}, set(answers)


def test_readyz_never_waits_for_the_write_lock(api: Api) -> None:
    """A writer holds its transaction open (on SQLite: the database's one write lock);
    ``/readyz`` still answers, before the writer lets go."""
    sessions: sessionmaker[Session] = api.client.app.state.ctx.sessions  # type: ignore[attr-defined]
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with transaction(sessions) as session:
            admin = session.scalars(select(User).where(User.role == "admin")).first()
            assert admin is not None
            admin.display_name = "held"
            session.flush()  # the write is made: the lock is taken
            holding.set()
            assert release.wait(DEADLINE * 3), "never released"

    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(writer)
        try:
            assert holding.wait(DEADLINE), "the writer never started"
            ready = api.client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert not held.done(), "the writer must still hold its transaction"
        finally:
            release.set()
        held.result(timeout=DEADLINE)
