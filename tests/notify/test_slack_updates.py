"""Approval messages in Slack are updated in place once the request leaves pending, wherever it
was decided: every copy (the channel and each approver's DM) loses its buttons and shows who
decided, through ``approval_update`` deliveries of the outbox (retried, in the delivery log).
Against the local stand-in for Slack's Web API, with the scheduler's duties driven by hand."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from grantflow.notify import slack_blocks as sb
from grantflow.notify.base import DeliveryError, NoticeKind, Recipient
from grantflow.notify.registry import build_channels, by_name
from grantflow.notify.slack import SlackChannel
from grantflow.services.notifications import notify_delivery, notify_outbox
from grantflow.services.runtime import scheduler
from grantflow.settings import Settings
from grantflow.store.db import transaction
from grantflow.store.models_notify import NotificationDelivery
from grantflow.store.types import utcnow
from tests.fixtures.api import ADMIN_TOKEN, Api
from tests.notify.notify_support import World, make_world, submit
from tests.notify.slack_support import (
    ALICE,
    BASE_URL,
    BOB,
    BOT_TOKEN,
    SlackReceiver,
    notice,
    signed_headers,
    slack_app,
)

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

DECIDED_AT = datetime(2026, 3, 1, 12, 3, tzinfo=UTC)


# ---- the blocks: a pure function of the approval notice and its outcome ------------------


def _closed(state: str, actor: Recipient | None, reason: str | None = None) -> Any:
    n = notice(state=state, actor=actor, reason=reason, occurred_at=DECIDED_AT)
    return sb.approval_closed(n)


def _no_buttons(blocks: list[dict[str, Any]]) -> bool:
    return not any(b["type"] == "actions" for b in blocks) and "grantflow_approve" not in (
        json.dumps(blocks)
    )


def _outcome(blocks: list[dict[str, Any]]) -> str:
    last = blocks[-1]
    assert last["block_id"] == sb.OUTCOME_BLOCK_ID
    return str(last["text"]["text"])


WHEN = "<!date^1772366580^{date_short_pretty} at {time}|2026-03-01 12:03 UTC>"


def test_approved_keeps_the_details_drops_the_buttons_and_says_who_and_when() -> None:
    blocks = _closed("approved", BOB)
    assert blocks[0]["text"]["text"] == "Access request approved"
    assert _no_buttons(blocks)
    assert _outcome(blocks) == f":white_check_mark: Approved by *Bob Builder* · {WHEN}"
    original = sb.message(notice())
    assert blocks[1] == original[1]  # the summary
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[:5] == [f["text"] for f in original[2]["fields"]][:5]
    assert fields[5] == "*State*\napproved"
    assert blocks[3] == original[3]  # the justification, escaped as before
    assert blocks[4] == original[4]  # the link to the request


def test_rejected_with_a_reason_cancelled_and_closed_otherwise() -> None:
    rejected = _closed("rejected", BOB, "not during the  freeze\n<!channel>")
    assert rejected[0]["text"]["text"] == "Access request rejected"
    assert _outcome(rejected) == (
        f":x: Rejected by *Bob Builder*: not during the freeze &lt;!channel&gt; · {WHEN}"
    )
    assert _no_buttons(rejected)
    by_requester = _closed("cancelled", ALICE)
    assert _outcome(by_requester) == f":no_entry_sign: Cancelled by the requester · {WHEN}"
    by_admin = _closed("cancelled", Recipient("u-carol", "carol@example.com", "<Carol>"), "dup")
    assert _outcome(by_admin) == f":no_entry_sign: Cancelled by *&lt;Carol&gt;*: dup · {WHEN}"
    by_grantflow = _closed("failed", None)
    assert by_grantflow[0]["text"]["text"] == "Access request closed"
    assert _outcome(by_grantflow) == f":information_source: Closed (failed) by Grantflow · {WHEN}"
    no_name = _closed("approved", Recipient("u-x", "x@example.com", ""))
    assert "Approved by *x@example.com*" in _outcome(no_name)


def test_the_decision_reason_is_in_the_outcome_line_only() -> None:
    blocks = _closed("approved", BOB, "go ahead")
    assert json.dumps(blocks).count("go ahead") == 1
    assert sb.closed_fallback_text(notice(state="approved")).startswith("Access request approved: ")


# ---- the channel: receipts and chat.update ----------------------------------------------


def _channel(receiver: SlackReceiver) -> SlackChannel:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": "s",
        "slack_api_url": receiver.api_url,
    }
    channel = SlackChannel.from_settings(Settings(**values))
    assert channel is not None
    return channel


def test_an_approval_post_returns_its_receipt_and_update_edits_that_message() -> None:
    with SlackReceiver() as receiver:
        channel = _channel(receiver)
        receipt = channel.send(notice(), "channel:#access")
        assert receipt == {"channel": "#access", "ts": "1700000000.000001"}
        assert channel.send(notice(NoticeKind.APPROVED, state="approved"), "channel:#x") is None
        decided = notice(state="approved", actor=BOB, occurred_at=DECIDED_AT)
        assert channel.update(decided, receipt) == receipt
        (call,) = receiver.of("chat.update")
        assert call.authorization == f"Bearer {BOT_TOKEN}"
        assert call.params["channel"] == "#access" and call.params["ts"] == "1700000000.000001"
        assert call.params["blocks"] == sb.approval_closed(decided)
        assert call.params["text"] == sb.closed_fallback_text(decided)
        with pytest.raises(DeliveryError) as raised:
            channel.update(decided, {"channel": "#access"})
        assert raised.value.retryable is False


@pytest.mark.parametrize(
    ("status", "error", "retryable", "says"),
    [
        (200, "message_not_found", False, "no longer exists"),
        (200, "cant_update_message", False, "does not let the app edit"),
        (200, "edit_window_closed", False, "edit window"),
        (200, "channel_not_found", False, "invite the app"),
        (429, "ratelimited", True, "HTTP 429: ratelimited; retry after 30s"),
        (503, None, True, "HTTP 503"),
        (500, "internal_error", True, "internal_error"),
    ],
)
def test_chat_update_errors_map_like_the_other_calls(
    status: int, error: str | None, retryable: bool, says: str
) -> None:
    with SlackReceiver() as receiver:
        receiver.fail("chat.update", status, error, **({"Retry-After": "30"} if status == 429
                                                       else {}))  # fmt: skip
        with pytest.raises(DeliveryError) as raised:
            _channel(receiver).update(notice(state="approved"), {"channel": "C1", "ts": "1.2"})
    assert raised.value.retryable is retryable
    assert says in str(raised.value)
    assert BOT_TOKEN not in str(raised.value)


# ---- end to end: the outbox, the API and the stand-in ----------------------------------


@dataclass
class Rig:
    api: Api
    receiver: SlackReceiver
    world: World

    @property
    def ctx(self) -> Any:
        return self.api.client.app.state.ctx  # type: ignore[attr-defined]

    def produce(self) -> int:
        channels = build_channels(self.ctx.settings)
        outbox = notify_outbox.Outbox(channels, BASE_URL)
        return scheduler.produce_notifications(self.ctx.sessions, outbox)

    def deliver(self, later: timedelta = timedelta()) -> int:
        channels = by_name(build_channels(self.ctx.settings))
        return notify_delivery.deliver_due(self.ctx.sessions, channels, self.ctx.metrics, 8,
                                           now=utcnow() + later)  # fmt: skip

    def round(self) -> None:
        self.produce()
        self.deliver()

    def posts(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """(channel, ts) → blocks of every approval request posted."""
        out = {}
        for i, call in enumerate(self.receiver.of("chat.postMessage"), start=1):
            if call.params["blocks"][0]["text"]["text"] == sb.TITLES[NoticeKind.APPROVAL_NEEDED]:
                out[(call.params["channel"], f"1700000000.{i:06d}")] = call.params["blocks"]
        return out

    def updates(self) -> list[dict[str, Any]]:
        return [c.params for c in self.receiver.of("chat.update")]

    def rows(self, kind: str) -> list[NotificationDelivery]:
        with transaction(self.ctx.sessions) as s:
            query = select(NotificationDelivery).where(NotificationDelivery.kind == kind)
            rows = list(s.scalars(query.order_by(NotificationDelivery.target)))
            s.expunge_all()
            return rows

    def act(self, verb: str, who: str, request_id: str, reason: str | None = None) -> None:
        body = {"reason": reason} if reason is not None else {}
        r = self.api.client.post(f"/api/v1/access-requests/{request_id}/{verb}", json=body,
                                 headers=self.world.auth(who))  # fmt: skip
        assert r.status_code == 200, r.text


@pytest.fixture
def rig(db_url: str) -> Iterator[Rig]:
    with slack_app(db_url) as (client, settings, receiver):
        api = Api(client, settings, ADMIN_TOKEN)
        world = make_world(api)  # bob and carol approve; alice asks
        receiver.users.update({f"U{n.upper()}": f"{n}@example.com"
                               for n in ("alice", "bob", "carol", "dave")})  # fmt: skip
        rig = Rig(api, receiver, world)
        rig.produce()  # the first round starts the outbox at the end of the audit log
        yield rig


def _posted(rig: Rig) -> tuple[str, dict[tuple[str, str], list[dict[str, Any]]]]:
    """Alice's request, posted to #access and to Bob's and Carol's DMs."""
    request = submit(rig.api, rig.world)
    rig.round()
    posts = rig.posts()
    assert {channel for channel, _ in posts} == {"#access", "DUBOB", "DUCAROL"}
    assert all(not _no_buttons(blocks) for blocks in posts.values())
    receipts = {(r.receipt or {}).get("channel"): r.receipt for r in rig.rows("approval_needed")}
    assert {(c, ts) for c, ts in posts} == {(r["channel"], r["ts"]) for r in receipts.values()
                                           if r}  # fmt: skip
    return str(request["id"]), posts


def _all_updated(rig: Rig, posts: dict[tuple[str, str], list[dict[str, Any]]],
                 outcome: str) -> None:  # fmt: skip
    updates = rig.updates()
    assert sorted((u["channel"], u["ts"]) for u in updates) == sorted(posts)
    for u in updates:
        assert _no_buttons(u["blocks"]), u
        assert _outcome(u["blocks"]).startswith(outcome), _outcome(u["blocks"])
        posted = posts[(u["channel"], u["ts"])]
        assert u["blocks"][1] == posted[1] and u["blocks"][3:5] == posted[3:5]  # same details
    rows = rig.rows("approval_update")
    assert [(r.state, r.attempts) for r in rows] == [("delivered", 1)] * 3
    assert sorted(r.target for r in rows) == sorted(r.target for r in rig.rows("approval_needed"))
    rig.round()
    rig.round()
    assert len(rig.updates()) == 3  # once per message and outcome
    log = rig.api.client.get("/api/v1/notifications", params={"channel": "slack"},
                             headers=rig.api.as_admin()).json()  # fmt: skip
    assert sum(i["kind"] == "approval_update" and i["state"] == "delivered"
               for i in log["items"]) == 3  # fmt: skip


def test_approved_through_the_api_updates_the_channel_and_every_dm(rig: Rig) -> None:
    request_id, posts = _posted(rig)
    assert rig.updates() == []
    rig.act("approve", "bob", request_id, "go ahead")
    rig.round()
    _all_updated(rig, posts, ":white_check_mark: Approved by *Bob*: go ahead · <!date^")
    to_alice = [c.params for c in rig.receiver.of("chat.postMessage")
                if c.params["channel"] == "DUALICE"]  # fmt: skip
    assert [m["blocks"][0]["text"]["text"] for m in to_alice] == [
        "Your access request was approved"]  # fmt: skip


def test_rejected_with_a_reason(rig: Rig) -> None:
    request_id, posts = _posted(rig)
    rig.act("reject", "carol", request_id, "not during the freeze")
    rig.round()
    _all_updated(rig, posts, ":x: Rejected by *Carol*: not during the freeze · ")
    assert all(u["blocks"][0]["text"]["text"] == "Access request rejected" for u in rig.updates())


def test_cancelled_by_the_requester(rig: Rig) -> None:
    request_id, posts = _posted(rig)
    rig.act("cancel", "alice", request_id)
    rig.round()
    _all_updated(rig, posts, ":no_entry_sign: Cancelled by the requester · ")


def test_decided_before_the_messages_were_posted(rig: Rig) -> None:
    """The approval deliveries are still pending when Bob approves: they post, and the
    updates (waiting for them, without spending attempts) edit those very messages."""
    request = submit(rig.api, rig.world)
    rig.produce()
    rig.act("approve", "bob", str(request["id"]))
    assert rig.produce() == 3 + 1  # three updates, and Alice's "approved"
    rig.deliver()
    posts = rig.posts()
    assert len(posts) == 3 and rig.updates() == []
    assert [(r.state, r.attempts) for r in rig.rows("approval_update")] == [("pending", 0)] * 3
    rig.deliver()  # delivering the approval messages made the updates due at once
    _all_updated(rig, posts, ":white_check_mark: Approved by *Bob* · ")


@sqlite_only
def test_a_rate_limited_update_is_retried_and_then_succeeds(rig: Rig) -> None:
    request_id, posts = _posted(rig)
    rig.receiver.fail("chat.update", 429, "ratelimited", **{"Retry-After": "1"})
    rig.act("approve", "bob", request_id)
    rig.round()
    rows = rig.rows("approval_update")
    assert [(r.state, r.attempts) for r in rows] == [("pending", 1)] * 3
    assert all("ratelimited" in (r.last_error or "") for r in rows)
    rig.deliver()  # not due yet: backoff
    assert len(rig.updates()) == 3
    del rig.receiver.failures["chat.update"]
    assert rig.deliver(later=timedelta(minutes=1)) == 3
    assert [(r.state, r.attempts) for r in rig.rows("approval_update")] == [("delivered", 2)] * 3
    assert len(rig.updates()) == 6
    assert sorted((u["channel"], u["ts"]) for u in rig.updates()[3:]) == sorted(posts)


@sqlite_only
def test_a_deleted_message_fails_for_good_with_a_clear_message(rig: Rig) -> None:
    request_id, _ = _posted(rig)
    rig.receiver.fail("chat.update", 200, "message_not_found")
    rig.act("approve", "bob", request_id)
    rig.round()
    rows = rig.rows("approval_update")
    assert [(r.state, r.attempts) for r in rows] == [("failed", 1)] * 3
    assert all("no longer exists" in (r.last_error or "") for r in rows)


@sqlite_only
def test_an_approval_message_that_was_never_posted_has_nothing_to_update(rig: Rig) -> None:
    request = submit(rig.api, rig.world)
    rig.produce()
    rig.act("approve", "bob", str(request["id"]))
    rig.produce()
    rig.receiver.fail("chat.postMessage", 200, "channel_not_found")
    rig.deliver()
    assert {r.state for r in rig.rows("approval_needed")} == {"failed"}
    rig.deliver()
    rows = rig.rows("approval_update")
    assert [r.state for r in rows] == ["failed"] * 3
    assert all("never posted" in (r.last_error or "") for r in rows)
    assert rig.updates() == []
    # Slack is fixed and an admin sends the approval messages again: their updates follow.
    del rig.receiver.failures["chat.postMessage"]
    for approval in rig.rows("approval_needed"):
        retried = rig.api.client.post(f"/api/v1/notifications/{approval.id}/retry",
                                      headers=rig.api.as_admin())  # fmt: skip
        assert retried.status_code == 200, retried.text
    assert [r.state for r in rig.rows("approval_update")] == ["pending"] * 3
    rig.deliver()  # the approval messages post…
    rig.deliver()  # …and are edited at once
    assert [r.state for r in rig.rows("approval_update")] == ["delivered"] * 3
    posted = {(r.receipt["channel"], r.receipt["ts"]) for r in rig.rows("approval_needed")
              if r.receipt}  # fmt: skip
    assert len(posted) == 3
    assert {(u["channel"], u["ts"]) for u in rig.updates()} == posted
    rig.receiver.fail("chat.postMessage", 200, "channel_not_found")
    # a request decided after its approval messages failed gets no update rows at all
    again = submit(rig.api, rig.world)
    rig.round()
    rig.act("cancel", "alice", str(again["id"]))
    rig.produce()
    assert len(rig.rows("approval_update")) == 3


def _signed_click(rig: Rig, request_id: str, slack_user: str,
                  blocks: list[dict[str, Any]]) -> int:  # fmt: skip
    payload = {
        "type": "block_actions", "user": {"id": slack_user}, "team": {"id": "T1"},
        "response_url": rig.receiver.response_url(),
        "message": {"ts": "1700000000.000002", "blocks": blocks},
        "actions": [{"action_id": sb.APPROVE_ACTION, "block_id": sb.DECISION_BLOCK_ID,
                     "value": request_id, "type": "button"}],
    }  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = signed_headers(body, int(time.time()))
    return rig.api.client.post("/api/slack/actions", content=body, headers=headers).status_code


def test_a_click_in_one_dm_updates_the_channel_and_the_other_dm_too(rig: Rig) -> None:
    request_id, posts = _posted(rig)
    clicked = next(key for key in posts if key[0] == "DUBOB")
    assert _signed_click(rig, request_id, "UBOB", posts[clicked]) == 200
    (reply,) = [c.params for c in rig.receiver.of("response")]
    assert reply["replace_original"] is True and _no_buttons(reply["blocks"])
    rig.round()
    # every copy, the clicked one included (the same final content again: harmless)
    _all_updated(rig, posts, ":white_check_mark: Approved by *Bob* · ")


def test_the_notice_round_trips_its_actor() -> None:
    from grantflow.notify.payload import from_payload, to_payload

    n = notice(state="rejected", actor=BOB, reason="no")
    assert from_payload(to_payload(n)) == n
    assert from_payload(to_payload(replace(n, actor=None))).actor is None
