"""Webhooks against a real HTTP receiver: signed events, retries with backoff, failures that
stay visible in the delivery log, and claims that two replicas never share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.api.app import create_app
from grantflow.metrics import Metrics
from grantflow.notify.base import DeliveryError, Notice, NoticeKind, Recipient
from grantflow.notify.registry import build_channels, by_name
from grantflow.notify.webhook import WebhookChannel
from grantflow.services.notifications import notify_delivery, notify_outbox
from grantflow.services.runtime import scheduler
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import Settings, WebhookTarget
from grantflow.store.db import transaction
from grantflow.store.models_notify import NotificationDelivery
from grantflow.store.types import utcnow
from tests.fixtures.api import Api, make_settings
from tests.fixtures.db import postgresql_only
from tests.notify.notify_support import (
    SECRET,
    HttpReceiver,
    http_receiver,
    make_world,
    submit,
    verify_signature,
)

ALICE = Recipient("u-alice", "alice@example.com", "Alice")


def _notice(kind: NoticeKind = NoticeKind.APPROVED) -> Notice:
    return Notice(
        kind=kind, request_id="req-1", requester=ALICE, summary="alice requests X on prod for 1h",
        justification="INC-1", integration="Org", resource_type="aws-account",
        resources=("prod",), permission="ReadOnlyAccess", duration_seconds=3600,
        state="approved", occurred_at=datetime(2026, 5, 1, 12, tzinfo=UTC),
        link="https://gf.example.com/requests/req-1", recipients=(ALICE,), reason="ok",
        delivery_id="d-1",
    )  # fmt: skip


def _hook(receiver: HttpReceiver, name: str = "siem") -> WebhookTarget:
    return WebhookTarget.model_validate({"name": name, "url": receiver.url, "secret": SECRET})


def test_a_delivered_event_is_signed_and_carries_its_headers() -> None:
    with http_receiver() as receiver:
        channel = WebhookChannel([_hook(receiver)])
        channel.send(_notice(), "siem")
    (hit,) = receiver.hits
    assert verify_signature(SECRET, hit.headers, hit.body)
    assert not verify_signature("another-secret-000000", hit.headers, hit.body)
    assert not verify_signature(SECRET, hit.headers, hit.body.replace(b"INC-1", b"INC-2"))
    assert hit.headers["x-grantflow-event"] == "request.approved"
    assert hit.headers["x-grantflow-delivery"] == "d-1"
    assert abs(int(hit.headers["x-grantflow-timestamp"]) - utcnow().timestamp()) < 60
    assert hit.headers["content-type"] == "application/json"
    assert json.loads(hit.body) == _notice().as_event()
    assert hit.path == "/hooks/grantflow"


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (408, True), (429, True),
                              (400, False), (401, False), (404, False), (410, False)],
)  # fmt: skip
def test_answers_that_are_retried_and_answers_that_are_final(status: int, retryable: bool) -> None:
    with http_receiver([status]) as receiver:
        channel = WebhookChannel([_hook(receiver)])
        with pytest.raises(DeliveryError) as caught:
            channel.send(_notice(), "siem")
    assert caught.value.retryable is retryable
    assert f"HTTP {status}" in str(caught.value)
    assert SECRET not in str(caught.value) and receiver.url not in str(caught.value)


def test_an_unreachable_receiver_is_retryable_and_the_flow_can_pick_hooks() -> None:
    with http_receiver() as receiver:
        url = receiver.url  # the server is gone after this block: connection refused
    hook = WebhookTarget.model_validate({"name": "gone", "url": url, "secret": SECRET})
    channel = WebhookChannel([hook], timeout_seconds=2)
    with pytest.raises(DeliveryError) as caught:
        channel.send(_notice(), "gone")
    assert caught.value.retryable
    assert channel.targets(_notice(), {}) == ["gone"]
    assert channel.targets(_notice(), {"webhooks": ["gone", "removed-since"]}) == ["gone"]
    with pytest.raises(DeliveryError) as missing:
        channel.send(_notice(), "removed-since")
    assert not missing.value.retryable


def _enqueue(sessions: sessionmaker[Session], channel: WebhookChannel) -> str:
    outbox = notify_outbox.Outbox([channel], "https://gf.example.com")
    with transaction(sessions) as session:
        assert notify_outbox.enqueue(session, outbox, _notice(), None, "event:e1") == 1
        assert notify_outbox.enqueue(session, outbox, _notice(), None, "event:e1") == 0
        return str(session.scalars(select(NotificationDelivery.id)).one())


def _row(sessions: sessionmaker[Session], delivery_id: str) -> NotificationDelivery:
    with transaction(sessions) as session:
        row = session.get(NotificationDelivery, delivery_id)
        assert row is not None
        return row


def test_retried_with_backoff_until_the_receiver_takes_it(sessions: sessionmaker[Session]) -> None:
    metrics = Metrics()
    with http_receiver([500, 503]) as receiver:
        channel = WebhookChannel([_hook(receiver)])
        delivery_id = _enqueue(sessions, channel)
        channels = by_name([channel])
        t0 = utcnow()
        assert notify_delivery.deliver_due(sessions, channels, metrics, 8, now=t0) == 1
        first = _row(sessions, delivery_id)
        assert (first.state, first.attempts, first.last_error) == (
            "pending", 1, "webhook 'siem' answered HTTP 500")  # fmt: skip
        delay = (first.next_attempt_at - t0).total_seconds()
        assert 1.0 <= delay <= 2.0  # backoff_seconds(1): 2 s ceiling, jittered down to half
        assert notify_delivery.deliver_due(sessions, channels, metrics, 8, now=t0) == 0
        t1 = first.next_attempt_at
        assert notify_delivery.deliver_due(sessions, channels, metrics, 8, now=t1) == 1
        second = _row(sessions, delivery_id)
        assert 2.0 <= (second.next_attempt_at - t1).total_seconds() <= 4.0  # it grows
        t2 = second.next_attempt_at
        assert notify_delivery.deliver_due(sessions, channels, metrics, 8, now=t2) == 1
    done = _row(sessions, delivery_id)
    assert (done.state, done.attempts, done.last_error) == ("delivered", 3, None)
    assert done.delivered_at == t2
    assert {h.headers["x-grantflow-delivery"] for h in receiver.hits} == {delivery_id}
    assert len(receiver.hits) == 3
    sample = metrics.registry.get_sample_value
    labels = {"channel": "webhook"}
    assert sample("grantflow_notification_deliveries_total", {**labels, "outcome": "retry"}) == 2
    assert (
        sample("grantflow_notification_deliveries_total", {**labels, "outcome": "delivered"}) == 1
    )


@pytest.fixture
def hooked_api(db_url: str) -> Iterator[tuple[Api, HttpReceiver, Settings]]:
    """The app with a webhook to a receiver that answers 500 four times; workers off, so the
    test drives the duties itself."""
    with http_receiver([500] * 4) as receiver:
        settings = make_settings(
            db_url, webhooks=[{"name": "siem", "url": receiver.url, "secret": SECRET}],
            notify_max_attempts=3, base_url="https://gf.example.com",
        )  # fmt: skip
        prepare_database(settings)
        with TestClient(create_app(settings, run_workers=False)) as client:
            yield (
                Api(client, settings, "gf_pat_test-admin-token-0123456789abcdef"),
                receiver,
                settings,
            )


def test_failure_after_max_attempts_is_visible_and_retried_by_hand(
    hooked_api: tuple[Api, HttpReceiver, Settings],
) -> None:
    api, receiver, settings = hooked_api
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    channels = build_channels(settings)
    outbox = notify_outbox.Outbox(channels, settings.base_url)
    scheduler.produce_notifications(ctx.sessions, outbox)  # first run: the cursor starts here
    world = make_world(api)
    request = submit(api, world)
    assert request["state"] == "pending"  # the receiver's state never blocked the request
    assert scheduler.produce_notifications(ctx.sessions, outbox) == 1
    now = utcnow()
    for _ in range(3):
        notify_delivery.deliver_due(ctx.sessions, by_name(channels), ctx.metrics, 3, now=now)
        now += timedelta(minutes=10)
    page = api.client.get("/api/v1/notifications", params={"state": "failed"},
                          headers=api.as_admin()).json()  # fmt: skip
    (failed,) = page["items"]
    assert page["total"] == 1
    assert (failed["channel"], failed["target"], failed["kind"], failed["request_id"]) == (
        "webhook", "siem", "approval_needed", request["id"])  # fmt: skip
    assert (failed["attempts"], failed["last_error"]) == (3, "webhook 'siem' answered HTTP 500")
    assert failed["next_attempt_at"] is None
    assert SECRET not in json.dumps(page)
    by_request = api.client.get("/api/v1/notifications", params={"request_id": request["id"]},
                                headers=api.as_admin()).json()  # fmt: skip
    assert [i["id"] for i in by_request["items"]] == [failed["id"]]
    assert api.client.get("/api/v1/notifications", params={"state": "delivered"},
                          headers=api.as_admin()).json()["total"] == 0  # fmt: skip
    member = api.client.get("/api/v1/notifications", headers=world.auth("alice"))
    assert member.status_code == 403
    retried = api.client.post(f"/api/v1/notifications/{failed['id']}/retry",
                              headers=api.as_admin())  # fmt: skip
    assert retried.status_code == 200, retried.text
    assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    again = api.client.post(f"/api/v1/notifications/{failed['id']}/retry", headers=api.as_admin())
    assert again.status_code == 409
    receiver.script.clear()  # the receiver is fixed
    notify_delivery.deliver_due(ctx.sessions, by_name(channels), ctx.metrics, 3)
    done = api.client.get("/api/v1/notifications", params={"request_id": request["id"]},
                          headers=api.as_admin()).json()["items"][0]  # fmt: skip
    assert (done["state"], done["attempts"], done["last_error"]) == ("delivered", 1, None)
    assert len(receiver.hits) == 4
    audit = api.client.get("/api/v1/audit-events", params={"action": "notification.retried"},
                           headers=api.as_admin())  # fmt: skip
    assert audit.status_code == 200 and audit.json()["items"], audit.text
    channels_info = api.client.get("/api/v1/notifications/channels", headers=api.as_admin())
    assert channels_info.json() == {"channels": ["webhook"], "webhooks": ["siem"],
                                    "max_attempts": 3}  # fmt: skip


@postgresql_only  # row locks with SKIP LOCKED are PostgreSQL's; SQLite has one writer
def test_two_replicas_never_claim_the_same_delivery(
    sessions: sessionmaker[Session], db_url: str
) -> None:
    with http_receiver() as receiver:
        channel = WebhookChannel([_hook(receiver), _hook(receiver, "ops")])
        outbox = notify_outbox.Outbox([channel], "https://gf.example.com")
        with transaction(sessions) as session:
            assert notify_outbox.enqueue(session, outbox, _notice(), None, "event:e2") == 2
        now = utcnow()
        with sessions() as first, first.begin():
            mine = notify_delivery.claim_due(first, now, limit=1)
            with sessions() as second, second.begin():
                theirs = notify_delivery.claim_due(second, now, limit=5)
        assert len(mine) == len(theirs) == 1
        assert mine[0].id != theirs[0].id
