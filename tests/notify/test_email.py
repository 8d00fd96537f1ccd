"""Email through a real SMTP server (aiosmtpd on loopback): who receives what, the links,
and which SMTP answers are retried."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from grantflow.notify.base import DeliveryError, Notice, NoticeKind, Recipient
from grantflow.notify.email import EmailChannel, build_message
from tests.fixtures.api import make_settings
from tests.notify.notify_support import free_port, smtp_server

ALICE = Recipient("u-alice", "alice@example.com", "Alice")
BOB = Recipient("u-bob", "bob@example.com", "Bob")
CAROL = Recipient("u-carol", "carol@example.com", "Carol <ops>")
LINK = "https://gf.example.com/requests/req-1"


def _notice(kind: NoticeKind, recipients: tuple[Recipient, ...], **extra: Any) -> Notice:
    values: dict[str, Any] = {
        "kind": kind, "request_id": "req-1", "requester": ALICE,
        "summary": "alice requests ReadOnlyAccess on prod for 1h",
        "justification": "INC-1 <script>alert(1)</script>", "integration": "Org",
        "resource_type": "aws-account", "resources": ("prod",), "permission": "ReadOnlyAccess",
        "duration_seconds": 3600, "state": "pending",
        "occurred_at": datetime(2026, 5, 1, 12, tzinfo=UTC), "link": LINK,
        "recipients": recipients,
    }  # fmt: skip
    values.update(extra)
    return Notice(**values)


def _channel(port: int) -> EmailChannel:
    settings = make_settings(
        "sqlite://", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
        smtp_from="Grantflow <gf@example.com>", smtp_timeout_seconds=5,
    )  # fmt: skip
    channel = EmailChannel.from_settings(settings)
    assert channel is not None
    return channel


def test_approvers_get_approve_and_reject_links_that_only_open_the_page() -> None:
    notice = _notice(NoticeKind.APPROVAL_NEEDED, (BOB, CAROL))
    with smtp_server() as (inbox, port):
        channel = _channel(port)
        targets = channel.targets(notice, {})
        for target in targets:
            channel.send(notice, target)
    assert len(targets) == 2
    assert {tuple(m.rcpt) for m in inbox.mails} == {("bob@example.com",), ("carol@example.com",)}
    (mail,) = inbox.to("bob@example.com")
    assert mail.sender == "gf@example.com"
    subject = str(mail.message["Subject"]).strip()  # long subjects are folded
    assert subject == "[Grantflow] Approval needed: alice requests ReadOnlyAccess on prod for 1h"
    text, html = mail.text(), mail.html()
    assert f"Approve: {LINK}?decision=approve" in text
    assert f"Reject: {LINK}?decision=reject" in text
    assert f"href='{LINK}?decision=approve'" in html
    assert "You sign in to Grantflow to decide." in text
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not inbox.to("alice@example.com")


def test_the_requester_hears_the_grant_with_its_sign_in_link_and_no_decision_links() -> None:
    sign_in = "https://d-1.awsapps.com/start/#/console?x=1"
    notice = _notice(NoticeKind.GRANTED, (ALICE,), state="granted", access={"sign_in_url": sign_in})
    with smtp_server() as (inbox, port):
        channel = _channel(port)
        (target,) = channel.targets(notice, {})
        channel.send(notice, target)
    (mail,) = inbox.to("alice@example.com")
    assert str(mail.message["Subject"]).strip().startswith("[Grantflow] Access granted:")
    assert f"Sign in to AWS: {sign_in}" in mail.text()
    assert "decision=" not in mail.text()


def test_recipients_without_an_address_are_skipped_and_duplicates_merged() -> None:
    nobody = Recipient("u-x", "", "X")
    notice = _notice(NoticeKind.APPROVAL_NEEDED, (BOB, nobody, BOB))
    channel = _channel(25)
    assert channel.targets(notice, {}) == ["Bob <bob@example.com>"]


class _Refusing:
    def __init__(self, code: str) -> None:
        self.code = code

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        return self.code


@pytest.mark.parametrize(
    ("answer", "retryable"),
    [("550 5.1.1 no such user", False), ("452 4.2.2 mailbox full", True)],
)
def test_smtp_answers_decide_whether_to_retry(answer: str, retryable: bool) -> None:
    port = free_port()
    controller = Controller(_Refusing(answer), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pytest.raises(DeliveryError) as caught:
            _channel(port).send(_notice(NoticeKind.APPROVED, (ALICE,)), "alice@example.com")
    finally:
        controller.stop()
    assert caught.value.retryable is retryable


def test_an_unreachable_server_is_retryable() -> None:
    with pytest.raises(DeliveryError) as caught:
        _channel(free_port()).send(_notice(NoticeKind.APPROVED, (ALICE,)), "alice@example.com")
    assert caught.value.retryable


def test_the_message_never_carries_a_secret_or_token() -> None:
    message = build_message(_notice(NoticeKind.APPROVAL_NEEDED, (BOB,)), "bob@example.com",
                            "gf@example.com")  # fmt: skip
    raw = message.as_string()
    assert "gf_pat_" not in raw and "token" not in raw.lower()
