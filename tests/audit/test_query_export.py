"""Querying, filtering and exporting the activity log, and the access activity report."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from grantflow.api.app import create_app
from grantflow.domain.audit_chain import GENESIS_HASH, event_hash
from grantflow.services.audit import trail as audit
from grantflow.services.runtime.startup import prepare_database
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import (
    AccessRequest,
    Approval,
    AuditEvent,
    Connector,
    Grant,
    Integration,
    Resource,
    User,
)
from tests.fixtures.api import ADMIN_TOKEN, Api, make_settings

ALICE = audit.Actor("user", "u-alice", "web")
BOB = audit.Actor("user", "u-bob", "api")


def _seed(api: Api) -> None:
    engine = build_engine(api.settings.database_url)
    try:
        with transaction(session_factory(engine)) as s:
            audit.record(s, ALICE, "integration.updated", "integration", "i-1",
                         {"before": {"name": "a"}, "after": {"name": "b"}})  # fmt: skip
            audit.record(s, ALICE, "request.created", "access_request", "r-1",
                         {"resources": ["res-1", "res-2"], "integration_id": "i-1"})  # fmt: skip
            audit.record(s, BOB, "request.approval_recorded", "access_request", "r-1", {})
            audit.record(s, audit.SYSTEM, "grant.granted", "grant", "g-1", {"request_id": "r-1"})
            audit.record(s, BOB, "user.updated", "user", "u-carol", {})
    finally:
        engine.dispose()


def _actions(api: Api, **params: Any) -> list[str]:
    r = api.client.get("/api/v1/audit-events", params=params, headers=api.as_admin())
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["items"] if not e["action"].startswith("token.")]


def test_filters_select_exactly_the_matching_events(api: Api) -> None:
    _seed(api)
    assert _actions(api, actor="u-bob") == ["user.updated", "request.approval_recorded"]
    assert _actions(api, action="request.*") == ["request.approval_recorded", "request.created"]
    assert _actions(api, action="grant.granted") == ["grant.granted"]
    assert _actions(api, integration="i-1") == ["request.created", "integration.updated"]
    assert _actions(api, resource="res-2") == ["request.created"]
    assert _actions(api, request="r-1") == [
        "grant.granted", "request.approval_recorded", "request.created"]  # fmt: skip
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert _actions(api, since=future) == []
    assert len(_actions(api, until=future)) == 5
    assert api.client.get("/api/v1/audit-events").status_code == 401


def test_pages_walk_back_without_gaps_or_repeats(api: Api) -> None:
    _seed(api)
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        body = api.client.get("/api/v1/audit-events", params=params, headers=api.as_admin()).json()
        seen += [e["seq"] for e in body["items"]]
        if body["next_before"] is None:
            break
        params["before"] = body["next_before"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 5


def test_export_csv_and_jsonl(api: Api) -> None:
    _seed(api)
    r = api.client.get("/api/v1/audit-events/export", params={"format": "jsonl",
                       "request": "r-1"}, headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["action"] for e in lines] == [
        "request.created", "request.approval_recorded", "grant.granted"]  # fmt: skip
    assert lines[0]["data"]["resources"] == ["res-1", "res-2"]
    r = api.client.get("/api/v1/audit-events/export", params={"format": "csv"},
                       headers=api.as_admin())  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {"integration.updated", "user.updated"} <= {row["action"] for row in rows}
    first = next(row for row in rows if row["action"] == "integration.updated")
    assert json.loads(first["data"]) == {"after": {"name": "b"}, "before": {"name": "a"}}
    # the export is a read: it adds nothing to the log (tests/security/test_audit_anchor.py)
    assert _actions(api, action="audit.*") == []


def _bulk_chain(session: Session, n: int) -> None:
    """``n`` events chained onto the current head, hashed exactly as ``audit.record`` does,
    inserted with executemany (no ORM objects)."""
    head = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    prev, rows = head or GENESIS_HASH, []
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        when = base + timedelta(seconds=i)
        fields = {"id": f"00000000-0000-4000-8000-{i:012d}", "occurred_at": when.isoformat(),
                  "actor_type": "user", "actor_id": f"u-{i % 50}", "action": "request.created",
                  "target_type": "access_request", "target_id": f"r-{i}", "source": "api",
                  "request_id": None, "data": {"justification": "x" * 80, "n": i}}  # fmt: skip
        digest = event_hash(prev, fields)
        rows.append({**fields, "occurred_at": when, "prev_hash": prev, "hash": digest})
        prev = digest
    for start in range(0, n, 10_000):
        session.connection().execute(insert(AuditEvent.__table__), rows[start : start + 10_000])


async def _drain(app: Any, path: str) -> tuple[int, int, int]:
    """Run one GET through the ASGI app, discarding the body: (status, bytes, newlines)."""
    status, size, lines = 0, 0, 0
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path.split("?")[0], "raw_path": path.encode(),
             "query_string": path.partition("?")[2].encode(), "root_path": "",
             "headers": [(b"authorization", f"Bearer {ADMIN_TOKEN}".encode()),
                         (b"host", b"testserver")],
             "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {}}  # fmt: skip

    requested, done = False, asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays connected until the body is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size, lines
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))
            lines += message.get("body", b"").count(b"\n")
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    return status, size, lines


@pytest.mark.slow
def test_export_of_100k_events_streams_in_bounded_memory(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/big.db")
    prepare_database(settings)
    engine = build_engine(settings.database_url)
    sessions = session_factory(engine)
    n = 100_000
    with transaction(sessions) as session:
        before = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        _bulk_chain(session, n)
    app = create_app(settings, run_workers=False)
    tracemalloc.start()
    try:
        status, size, lines = asyncio.run(_drain(app, "/api/v1/audit-events/export?format=csv"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        app.state.ctx.engine.dispose()
    assert status == 200
    assert lines >= n + 1 and size > 30_000_000  # every row went out: ~35 MB of CSV
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while streaming {size / 1e6:.0f} MB"
    with transaction(sessions) as session:  # the bulk rows chain exactly like recorded ones
        first = session.scalars(select(AuditEvent).where(AuditEvent.seq == before + 1)).one()
        assert event_hash(first.prev_hash, audit.hashed_fields(first)) == first.hash
    engine.dispose()


def _report_graph(api: Api) -> str:
    engine = build_engine(api.settings.database_url)
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    try:
        with transaction(session_factory(engine)) as s:
            alice = User(username="alice", email="alice@example.com")
            bob = User(username="bob", email="bob@example.com")
            connector = Connector(id="gfc-reportreportreport", name="c", kind="managed",
                                  token_hash="r" * 64, token_prefix="gf_con_r")  # fmt: skip
            s.add_all([alice, bob, connector])
            s.flush()
            integ = Integration(name="Org", type="aws-organization", connector_id=connector.id)
            s.add(integ)
            s.flush()
            res = Resource(integration_id=integ.id, type="aws-account", aws_id="111111111111",
                           name="prod", account_id="111111111111")  # fmt: skip
            s.add(res)
            s.flush()
            req = AccessRequest(requester_id=alice.id, integration_id=integ.id,
                                resource_type="aws-account", permission="ReadOnly",
                                justification="INC-42, read the logs", duration_seconds=3600,
                                state="revoked", end_reason="revoked", created_at=t0,
                                approved_at=t0 + timedelta(minutes=5),
                                granted_at=t0 + timedelta(minutes=6),
                                ended_at=t0 + timedelta(minutes=36))  # fmt: skip
            old = AccessRequest(requester_id=bob.id, integration_id=integ.id,
                                resource_type="aws-account", permission="Admin",
                                duration_seconds=600, state="rejected",
                                created_at=t0 - timedelta(days=30))  # fmt: skip
            s.add_all([req, old])
            s.flush()
            s.add(Grant(request_id=req.id, resource_id=res.id, state="revoked"))
            s.add(Approval(request_id=req.id, approver_id=bob.id, decision="approve",
                           reason="on call"))  # fmt: skip
            return req.id
    finally:
        engine.dispose()


def test_access_report_has_one_row_per_request_in_the_range(api: Api) -> None:
    request_id = _report_graph(api)
    r = api.client.get("/api/v1/reports/access.csv",
                       params={"since": "2026-02-15T00:00:00Z", "until": "2026-03-02T00:00:00Z"},
                       headers=api.as_admin())  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["request_id"] for row in rows] == [request_id]
    row = rows[0]
    assert (row["requester"], row["approvers"], row["resources"], row["accounts"]) == (
        "alice", "bob (approve): on call", "prod", "111111111111")  # fmt: skip
    assert (row["permission"], row["status"], row["justification"]) == (
        "ReadOnly", "revoked", "INC-42, read the logs")  # fmt: skip
    assert row["granted_duration_seconds"] == "1800"
    assert row["requested_at"].startswith("2026-03-01T09:00")
    assert row["revoked_at"].startswith("2026-03-01T09:36")
    everything = api.client.get("/api/v1/reports/access.csv", headers=api.as_admin()).text
    assert len(list(csv.DictReader(io.StringIO(everything)))) == 2
    assert api.client.get("/api/v1/reports/access.csv").status_code == 401
