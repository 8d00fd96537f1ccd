"""Approve / Reject from Slack, through HTTP: signed (and badly signed) button clicks posted to
``/api/slack/actions``, with a local receiver standing in for Slack's API and response_url."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantflow.api.app import create_app
from grantflow.domain.flows import FlowDefinition
from grantflow.notify import slack_actions, slack_blocks
from grantflow.notify.registry import build_channels
from grantflow.services.access import access_requests
from grantflow.services.audit import trail as audit
from grantflow.services.notifications import notify_outbox
from grantflow.services.runtime import scheduler
from grantflow.services.runtime.startup import prepare_database
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessFlow,
    AccessRequest,
    Approval,
    AuditEvent,
    Connector,
    DirectoryPrincipal,
    Integration,
    Resource,
    User,
)
from tests.fixtures.api import ADMIN_TOKEN, make_settings
from tests.fixtures.integrations import integration_config
from tests.notify.slack_support import (
    BASE_URL,
    BOT_TOKEN,
    SECRET,
    SlackReceiver,
    notice,
    slack_app,
)
from tests.notify.slack_support import signed_headers as _sign

# The approve, reject and bad-signature paths run on both backends (``db_url`` is
# parametrized over them); the rest only on SQLite.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@dataclass
class World:
    client: TestClient
    receiver: SlackReceiver
    request_id: str
    ids: dict[str, str]  # username → Grantflow user id

    def request(self) -> AccessRequest:
        with transaction(self.client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
            row = s.get(AccessRequest, self.request_id)
            assert row is not None
            s.expunge(row)
            return row

    def events(self) -> list[tuple[str, str | None, str, str | None]]:
        """(action, actor id, source, target id) of the request's audit events, in order."""
        with transaction(self.client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
            rows = s.scalars(select(AuditEvent).where(AuditEvent.target_id == self.request_id)
                             .order_by(AuditEvent.seq))  # fmt: skip
            return [(e.action, e.actor_id, e.source, e.target_id) for e in rows]

    def replies(self) -> list[dict[str, Any]]:
        return [c.params for c in self.receiver.of("response")]


def _seed(client: TestClient) -> tuple[str, dict[str, str]]:
    """Alice asks for membership of a group; only Bob may approve; Carol is a bystander."""
    with transaction(client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        users = {
            name: User(username=name, email=f"{name}@example.com", display_name=name.title())
            for name in ("alice", "bob", "carol", "dora")
        }  # fmt: skip
        users["dora"].active = False
        s.add_all(users.values())
        s.flush()
        s.add_all(DirectoryPrincipal(identity_store_id="d-1", principal_id=f"ids-{name}",
                                     user_id=user.id, user_name=name, matched_by="username")
                  for name, user in users.items())  # fmt: skip
        s.add(Connector(id="gfc-slack", name="c", kind="managed", token_hash="s" * 64,
                        token_prefix="gf_con_s"))  # fmt: skip
        s.flush()
        integ = Integration(
            name="Org", type="aws-organization", connector_id="gfc-slack", status="active",
            facts={"instance_arn": "arn:aws:sso:::instance/ssoins-1", "identity_store_id": "d-1"},
            config=integration_config(),
        )  # fmt: skip
        s.add(integ)
        s.flush()
        group = Resource(integration_id=integ.id, type="identity-center-group", aws_id="g-1",
                         name="Admins")  # fmt: skip
        definition = FlowDefinition.model_validate({
            "requestors": {"everyone": True},
            "scope": {"resource_types": ["identity-center-group"]},
            "permissions": {"identity-center-group": ["member"]},
            "approval": {"mode": "any", "groups": [{"kind": "users",
                                                    "user_ids": [users["bob"].id]}]},
        })  # fmt: skip
        s.add_all([group, AccessFlow(name="groups", integration_id=integ.id,
                                     definition=definition.model_dump(mode="json"))])  # fmt: skip
        s.flush()
        row = access_requests.submit(s, users["alice"], [group.id], "member", None, "INC-42",
                                     audit.Actor("user", users["alice"].id, "api"))  # fmt: skip
        return row.id, {name: u.id for name, u in users.items()}


@pytest.fixture
def w(db_url: str) -> Iterator[World]:
    with slack_app(db_url) as (client, _settings, receiver):
        request_id, ids = _seed(client)
        receiver.users.update({"UALICE": "alice@example.com", "UBOB": "Bob@Example.com",
                               "UCAROL": "carol@example.com", "UDORA": "dora@example.com",
                               "UERIN": "erin@example.com"})  # fmt: skip
        yield World(client, receiver, request_id, ids)


def _body(
    w: World, action_id: str, slack_user: str, blocks: list[dict[str, Any]] | None = None
) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": slack_user, "username": slack_user.lower(), "team_id": "T1"},
        "team": {"id": "T1"},
        "response_url": w.receiver.response_url(),
        "message": {"ts": "1700000000.000100", "blocks": blocks or slack_blocks.message(notice())},
        "actions": [{"action_id": action_id, "block_id": slack_blocks.DECISION_BLOCK_ID,
                     "value": w.request_id, "type": "button", "action_ts": "1700000001.1"}],
    }  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()


def _click(w: World, action_id: str, slack_user: str, **sign: Any) -> int:
    body = _body(w, action_id, slack_user, sign.pop("blocks", None))
    timestamp = sign.pop("timestamp", int(time.time()))
    r = w.client.post("/api/slack/actions", content=body, headers=_sign(body, timestamp, **sign))
    return r.status_code


def test_signed_approve_by_the_approver_approves_and_updates_the_message(w: World) -> None:
    assert _click(w, "grantflow_approve", "UBOB") == 200
    row = w.request()
    assert row.state == "granting" and row.approved_at is not None
    bob = w.ids["bob"]
    assert [e[:3] for e in w.events()] == [
        ("request.created", w.ids["alice"], "api"),
        ("request.approval_recorded", bob, "slack"),
        ("request.approve", bob, "slack"),
        ("request.start_grant", None, "scheduler"),
    ]
    assert [c.params["user"] for c in w.receiver.of("users.info")] == ["UBOB"]
    assert w.receiver.of("users.info")[0].authorization == f"Bearer {BOT_TOKEN}"
    (reply,) = w.replies()
    assert reply["replace_original"] is True
    assert reply["text"] == ":white_check_mark: Approved by *Bob* in Slack."
    assert not any(b["type"] == "actions" for b in reply["blocks"])
    assert reply["blocks"][-1]["block_id"] == slack_blocks.OUTCOME_BLOCK_ID
    # a second click (Bob again, from another copy of the message) changes nothing
    assert _click(w, "grantflow_approve", "UBOB") == 200
    assert w.replies()[-1] == {"response_type": "ephemeral", "replace_original": False,
                               "text": "You cannot approve this request: the request is "
                                       "already granting. Nothing changed."}  # fmt: skip
    assert len(w.events()) == 4


def test_signed_reject_by_the_approver_rejects(w: World) -> None:
    assert _click(w, "grantflow_reject", "UBOB") == 200
    row = w.request()
    assert row.state == "rejected" and row.ended_at is not None
    assert [e[:3] for e in w.events()][1:] == [("request.reject", w.ids["bob"], "slack")]
    (reply,) = w.replies()
    assert reply["replace_original"] is True and reply["text"] == ":x: Rejected by *Bob* in Slack."


def _unchanged(w: World) -> None:
    assert w.request().state == "pending"
    assert [e[0] for e in w.events()] == ["request.created"]
    with transaction(w.client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        assert s.scalars(select(Approval)).all() == []


@sqlite_only
@pytest.mark.parametrize("action", ["grantflow_approve", "grantflow_reject"])
def test_the_requesters_own_button_only_explains(w: World, action: str) -> None:
    assert _click(w, action, "UALICE") == 200
    _unchanged(w)
    verb = action.removeprefix("grantflow_")
    assert w.replies() == [{"response_type": "ephemeral", "replace_original": False,
                            "text": f"You cannot {verb} this request: you cannot approve or "
                                    "reject your own request. Nothing changed."}]  # fmt: skip


@sqlite_only
@pytest.mark.parametrize(
    ("slack_user", "says"),
    [
        ("UCAROL", "You cannot approve this request: you are not an approver of this request."),
        ("UERIN", "No active Grantflow user has the email erin@example.com"),
        ("UDORA", "No active Grantflow user has the email dora@example.com"),
        ("UNOBODY", "Grantflow could not look you up in Slack"),
    ],
    ids=["not-an-approver", "unknown-email", "deactivated-user", "unknown-slack-user"],
)
def test_others_are_told_why_and_nothing_changes(w: World, slack_user: str, says: str) -> None:
    assert _click(w, "grantflow_approve", slack_user) == 200
    _unchanged(w)
    (reply,) = w.replies()
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert reply["text"].startswith(says) and "Nothing changed" in reply["text"]


@pytest.mark.parametrize(
    ("secret", "offset"),
    [("not-the-signing-secret", 0), (SECRET, -310), (SECRET, 310)],  # replay window: 300 s
    ids=["wrong-secret", "stale", "future"],
)
def test_bad_signatures_are_refused_and_change_nothing(w: World, secret: str, offset: int) -> None:
    body = _body(w, "grantflow_approve", "UBOB")
    headers = _sign(body, int(time.time()) + offset, secret)
    r = w.client.post("/api/slack/actions", content=body, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": {"code": "unauthenticated",
                                  "message": "invalid Slack request signature"}}  # fmt: skip
    _unchanged(w)
    assert w.receiver.calls == []


@sqlite_only
def test_missing_or_tampered_signatures_are_refused(w: World) -> None:
    body = _body(w, "grantflow_approve", "UBOB")
    headers = _sign(body, int(time.time()))
    cases = [
        (body, {"Content-Type": headers["Content-Type"]}),
        (body, {**headers, "X-Slack-Signature": ""}),
        (body, {**headers, "X-Slack-Request-Timestamp": "yesterday"}),
        (body.replace(b"UBOB", b"UCAROL"), headers),  # the signature no longer covers the body
        (body + b"&x=1", headers),
    ]
    for content, hdrs in cases:
        r = w.client.post("/api/slack/actions", content=content, headers=hdrs)
        assert r.status_code == 401, (content, hdrs)
    _unchanged(w)
    assert w.receiver.calls == []


@sqlite_only
def test_other_interactions_are_acknowledged_and_ignored(w: World) -> None:
    other = {"action_id": "something_else", "value": w.request_id}
    payloads = [{"type": "view_submission"},
                {"type": "block_actions", "user": {"id": "UBOB"}, "actions": [other]}]  # fmt: skip
    for payload in payloads:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        r = w.client.post("/api/slack/actions", content=body, headers=_sign(body, int(time.time())))
        assert r.status_code == 200 and r.content == b""
    body = urlencode({"payload": "{not json"}).encode()
    r = w.client.post("/api/slack/actions", content=body, headers=_sign(body, int(time.time())))
    assert r.status_code == 400
    _unchanged(w)
    assert w.receiver.calls == []


@sqlite_only
def test_a_flow_requiring_a_reason_sends_the_approver_to_grantflow(w: World) -> None:
    with transaction(w.client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        flow = s.scalars(select(AccessFlow)).one()
        flow.definition = {**flow.definition, "approver_reason_required": True}
    assert _click(w, "grantflow_approve", "UBOB") == 200
    _unchanged(w)
    assert w.replies()[0]["text"] == ("You cannot approve this request: this flow requires a "
                                      "reason from the approver. Nothing changed.")  # fmt: skip


@sqlite_only
def test_not_configured_is_a_clear_404(db_url: str) -> None:
    settings = make_settings(db_url)
    prepare_database(settings)
    with TestClient(create_app(settings, run_workers=False)) as client:
        r = client.post("/api/slack/actions", content=b"payload=%7B%7D",
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    assert r.status_code == 404
    assert "GRANTFLOW_SLACK_SIGNING_SECRET" in r.json()["error"]["message"]


def test_signature_check_unit() -> None:
    body, now = b"payload=%7B%7D", 1_700_000_000
    good = _sign(body, now)["X-Slack-Signature"]

    def ok(
        signature: str | None, timestamp: str | None, window: int = 300, at: float = now
    ) -> bool:
        return slack_actions.signature_ok(SECRET, body, timestamp, signature,
                                          window_seconds=window, now=at)  # fmt: skip

    assert ok(good, str(now))
    assert ok(good, str(now), window=60, at=now + 60)
    assert not ok(good, str(now), window=60, at=now + 61)
    assert not ok(good, str(now + 1))
    assert not ok(good.replace("v0=", "v1="), str(now))
    assert not ok(None, str(now)) and not ok(good, None) and not ok(good, "1.5e9")


def _notify(w: World) -> None:
    """One round of the notification duties, as the scheduler runs them."""
    ctx = w.client.app.state.ctx  # type: ignore[attr-defined]
    channels = build_channels(ctx.settings)
    assert [c.name for c in channels] == ["slack"]
    scheduler.produce_notifications(ctx.sessions, notify_outbox.Outbox(channels, BASE_URL))
    scheduler.deliver_notifications(ctx.sessions, channels, ctx.metrics, 3)


def test_from_the_outbox_to_the_button_and_back_to_the_requester(w: World) -> None:
    """The request reaches #access and Bob's DMs with buttons; Bob's click on the posted
    message approves it; Alice hears about it in her DMs."""
    _notify(w)  # the first round starts the outbox at the end of the audit log
    assert w.receiver.calls == []
    with transaction(w.client.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        alice = s.get(User, w.ids["alice"])
        group = s.scalars(select(Resource)).one()
        assert alice is not None
        w.request_id = access_requests.submit(s, alice, [group.id], "member", None, "INC-43",
                                              audit.Actor("user", alice.id, "web")).id  # fmt: skip
    _notify(w)
    posts = {c.params["channel"]: c.params for c in w.receiver.of("chat.postMessage")}
    assert set(posts) == {"#access", "DUBOB"}
    posted = posts["#access"]["blocks"]
    assert posted == posts["DUBOB"]["blocks"]
    buttons = {(e["action_id"], e["value"]) for b in posted if b["type"] == "actions"
               for e in b["elements"]}  # fmt: skip
    assert buttons == {("grantflow_approve", w.request_id), ("grantflow_reject", w.request_id)}
    assert w.receiver.of("users.lookupByEmail")[0].params["email"] == "bob@example.com"

    assert _click(w, "grantflow_approve", "UBOB", blocks=posted) == 200
    assert w.request().state == "granting"
    (reply,) = w.replies()
    assert reply["blocks"][:-1] == posted[:-1]  # the message as posted, buttons replaced

    _notify(w)
    to_alice = [c.params for c in w.receiver.of("chat.postMessage") if c.params["channel"]
                == "DUALICE"]  # fmt: skip
    assert [m["blocks"][0]["text"]["text"] for m in to_alice] == [
        "Your access request was approved"]  # fmt: skip


@sqlite_only
def test_secrets_never_reach_the_logs(w: World, capfd: pytest.CaptureFixture[str]) -> None:
    w.receiver.fail("users.info", 200, "invalid_auth")
    assert _click(w, "grantflow_approve", "UBOB") == 200
    assert _click(w, "grantflow_approve", "UBOB", secret="forged") == 401
    out, err = capfd.readouterr()
    assert "slack_user_lookup_failed" in out + err and "slack_signature_refused" in out + err
    assert BOT_TOKEN not in out + err and SECRET not in out + err
    assert "GRANTFLOW_SLACK_BOT_TOKEN" in w.replies()[0]["text"]


@sqlite_only
def test_a_signing_secret_without_a_bot_token_is_a_clear_503(db_url: str) -> None:
    settings = make_settings(db_url, slack_signing_secret=SECRET)
    prepare_database(settings)
    payload = {"type": "block_actions", "user": {"id": "UBOB"}, "response_url": None,
               "actions": [{"action_id": "grantflow_approve", "value": "r-1"}]}  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    with TestClient(create_app(settings, run_workers=False)) as client:
        unsigned = client.post("/api/slack/actions", content=body)
        r = client.post("/api/slack/actions", content=body, headers=_sign(body, int(time.time())))
    assert unsigned.status_code == 401
    assert r.status_code == 503
    assert "GRANTFLOW_SLACK_BOT_TOKEN" in r.json()["error"]["message"]
