"""End to end, with the scheduler running: a request submitted through the API reaches its
approvers by email and webhook; each step of its life reaches the requester; the expiry
warning comes once per end time; a broken channel never blocks a request; flows choose
their channels, and flows as code keep that choice."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantflow.api.app import create_app
from grantflow.services.access import grant_jobs
from grantflow.services.notifications.notify_outbox import Outbox
from grantflow.services.runtime import scheduler
from grantflow.services.runtime.startup import prepare_database
from grantflow.store.db import transaction
from grantflow.store.models import AccessRequest, Job
from grantflow.store.types import utcnow
from tests.fixtures.api import ADMIN_TOKEN, Api, make_settings
from tests.notify.notify_support import (
    SECRET,
    HttpReceiver,
    free_port,
    http_receiver,
    make_world,
    smtp_server,
    submit,
    verify_signature,
    wait_for,
)

BASE = "https://gf.example.com"


@dataclass
class Rig:
    api: Api
    inbox: Any
    siem: HttpReceiver
    ops: HttpReceiver


@pytest.fixture
def rig(db_url: str) -> Iterator[Rig]:
    with smtp_server() as (inbox, port), http_receiver() as siem, http_receiver() as ops:
        settings = make_settings(
            db_url, base_url=BASE, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
            smtp_from="gf@example.com",
            webhooks=[{"name": "siem", "url": siem.url, "secret": SECRET},
                      {"name": "ops", "url": ops.url, "secret": SECRET + "-ops"}],
        )  # fmt: skip
        prepare_database(settings)
        with TestClient(create_app(settings)) as client:
            yield Rig(Api(client, settings, ADMIN_TOKEN), inbox, siem, ops)


def _subjects(rig: Rig, who: str) -> list[str]:
    return [str(m.message["Subject"]).strip() for m in rig.inbox.to(f"{who}@example.com")]


def _has(rig: Rig, who: str, prefix: str, count: int = 1) -> bool:
    return sum(s.startswith(prefix) for s in _subjects(rig, who)) >= count


def _events(receiver: HttpReceiver) -> list[str]:
    for hit in receiver.hits:
        assert verify_signature(SECRET, hit.headers, hit.body)
    return [json.loads(h.body)["type"] for h in receiver.hits]


def _finish_grant_jobs(rig: Rig, request_id: str) -> None:
    """Play the connector: report every grant job of the request as succeeded."""
    ctx = rig.api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        for job in session.scalars(select(Job).where(Job.type == "grant")):
            job.state, job.result = "succeeded", {"handle": {"pre_existing": False}}
            grant_jobs.grant_finished(session, job, failed=False)
        request = session.get(AccessRequest, request_id)
        assert request is not None and request.state == "granted"


def _set_end(rig: Rig, request_id: str, minutes_left: int) -> None:
    ctx = rig.api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        request = session.get(AccessRequest, request_id)
        assert request is not None
        request.granted_at = utcnow() - timedelta(hours=1)
        request.expires_at = utcnow() + timedelta(minutes=minutes_left)


def _count_ticks(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Finished ticks of the two notification duties, counted as the scheduler runs them."""
    ticks: Counter[str] = Counter()
    for duty in ("produce_notifications", "deliver_notifications"):
        real = getattr(scheduler, duty)

        def counted(*args: Any, _real: Any = real, _duty: str = duty) -> Any:
            try:
                return _real(*args)
            finally:
                ticks[_duty] += 1

        monkeypatch.setattr(scheduler, duty, counted)
    return ticks


def test_a_request_from_submission_to_expiry_warning(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = _count_ticks(monkeypatch)
    api = rig.api
    world = make_world(api, notify={"webhooks": ["siem"]})
    request = submit(api, world)
    asked = "[Grantflow] Approval needed:"
    wait_for(lambda: _has(rig, "bob", asked) and _has(rig, "carol", asked), what="approvers")
    (mail,) = rig.inbox.to("bob@example.com")
    assert f"{BASE}/requests/{request['id']}?decision=approve" in mail.text()
    assert _subjects(rig, "alice") == [] and _subjects(rig, "dave") == []
    wait_for(lambda: _events(rig.siem) == ["request.approval_needed"], what="the webhook event")

    r = api.client.post(f"/api/v1/access-requests/{request['id']}/approve",
                        json={"reason": "go ahead"}, headers=world.auth("bob"))  # fmt: skip
    assert r.status_code == 200, r.text
    wait_for(lambda: _has(rig, "alice", "[Grantflow] Approved:"), what="the approval email")
    assert "Reason: go ahead" in rig.inbox.to("alice@example.com")[0].text()

    _finish_grant_jobs(rig, request["id"])
    wait_for(lambda: _has(rig, "alice", "[Grantflow] Access granted:"), what="the grant email")
    granted = [m for m in rig.inbox.to("alice@example.com") if "granted" in m.text()]
    assert "Sign in to AWS: https://d-1.awsapps.com/start" in granted[0].text()

    _set_end(rig, request["id"], minutes_left=5)
    warning = "[Grantflow] Your access ends in 10 minutes:"
    wait_for(lambda: _has(rig, "alice", warning), what="the expiry warning")
    seen = dict(ticks)  # three more whole ticks of both duties: still one warning
    wait_for(lambda: all(ticks[duty] >= seen[duty] + 3 for duty in seen), timeout=60,
             what="three more ticks of producing and delivering")  # fmt: skip
    assert sum(s.startswith(warning) for s in _subjects(rig, "alice")) == 1
    _set_end(rig, request["id"], minutes_left=8)  # extended: a new end, a new warning
    wait_for(lambda: _has(rig, "alice", warning, count=2), what="the second warning")

    wait_for(lambda: len(rig.siem.hits) == 5, what="every webhook event")
    assert _events(rig.siem) == [
        "request.approval_needed",
        "request.approved",
        "request.granted",
        "request.expiring",
        "request.expiring",
    ]
    assert rig.ops.hits == []  # the flow picked only "siem"
    assert _subjects(rig, "bob") == [s for s in _subjects(rig, "bob") if "Approval" in s]
    log = api.client.get("/api/v1/notifications", params={"request_id": request["id"]},
                         headers=api.as_admin()).json()  # fmt: skip
    assert {i["state"] for i in log["items"]} == {"delivered"}
    assert log["total"] == 2 + 1 + 1 + 2 + 5  # emails (bob+carol, approved, granted, two
    # warnings), then the webhook's five events


@pytest.fixture
def broken_api(db_url: str) -> Iterator[Api]:
    """SMTP and the webhook both point at closed ports; the scheduler is driven by hand."""
    settings = make_settings(
        db_url, base_url=BASE, smtp_host="127.0.0.1", smtp_port=free_port(),
        smtp_starttls=False, smtp_timeout_seconds=2,
        webhooks=[{"name": "siem", "url": f"http://127.0.0.1:{free_port()}/x", "secret": SECRET}],
    )  # fmt: skip
    prepare_database(settings)
    with TestClient(create_app(settings, run_workers=False)) as client:
        yield Api(client, settings, ADMIN_TOKEN)


def test_a_failing_channel_never_blocks_or_loses_a_request(broken_api: Api) -> None:
    api = broken_api
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    from grantflow.notify.registry import build_channels

    channels = build_channels(api.settings)
    outbox = Outbox(channels, BASE)
    scheduler.produce_notifications(ctx.sessions, outbox)
    world = make_world(api)
    started = time.monotonic()
    request = submit(api, world)
    assert time.monotonic() - started < 2  # the submission never waits for a channel
    assert scheduler.produce_notifications(ctx.sessions, outbox) == 3  # bob, carol, siem
    assert scheduler.deliver_notifications(ctx.sessions, channels, ctx.metrics, 8) == 3
    page = api.client.get("/api/v1/notifications", headers=api.as_admin()).json()
    assert {(i["channel"], i["state"], i["attempts"]) for i in page["items"]} == {
        ("email", "pending", 1), ("webhook", "pending", 1)}  # fmt: skip
    assert all(i["last_error"] and i["next_attempt_at"] for i in page["items"])
    got = api.client.get(f"/api/v1/access-requests/{request['id']}", headers=world.auth("alice"))
    assert got.json()["state"] == "pending"
    r = api.client.post(f"/api/v1/access-requests/{request['id']}/reject",
                        json={"reason": "no"}, headers=world.auth("carol"))  # fmt: skip
    assert r.status_code == 200, r.text
    assert scheduler.produce_notifications(ctx.sessions, outbox) == 2  # alice, siem
    pending = ctx.metrics.registry.get_sample_value("grantflow_notifications_pending")
    assert pending == 3.0  # set by the last delivery round, before the rejection


def test_flows_name_only_configured_webhooks_and_keep_their_choice_as_code(
    broken_api: Api,
) -> None:
    api = broken_api
    world = make_world(api, notify={"email": False, "webhooks": ["siem"]})
    flows = api.client.get("/api/v1/access-flows", headers=api.as_admin()).json()
    assert flows[0]["definition"]["notify"] == {"email": False, "webhooks": ["siem"]}
    definition = {**flows[0]["definition"], "notify": {"webhooks": ["siem", "pager"]}}
    body = {"name": "other", "integration_id": world.integration_id, "definition": definition}
    r = api.client.post("/api/v1/access-flows", json=body, headers=api.as_admin())
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "definition.notify.webhooks"
    assert "pager" in r.json()["error"]["message"]
    patch = api.client.patch(f"/api/v1/access-flows/{flows[0]['id']}",
                             json={"definition": definition}, headers=api.as_admin())  # fmt: skip
    assert patch.status_code == 422
    doc = api.client.get("/api/v1/access-flows/export", headers=api.as_admin()).json()
    assert doc["flows"][0]["definition"]["notify"] == {"email": False, "webhooks": ["siem"]}
    same = api.client.post("/api/v1/access-flows/apply", json=doc, headers=api.as_admin()).json()
    assert same["unchanged"] == ["ro"]
    doc["flows"][0]["definition"]["notify"] = {"webhooks": ["pager"]}
    bad = api.client.post("/api/v1/access-flows/apply", json=doc, headers=api.as_admin())
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "flows.0.definition.notify.webhooks"
