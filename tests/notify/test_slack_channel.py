"""The Slack channel against a local HTTP receiver standing in for Slack's Web API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from grantflow.notify import slack_blocks
from grantflow.notify.base import DeliveryError, NoticeKind
from grantflow.notify.slack import SlackChannel, email_of
from grantflow.settings import Settings
from tests.notify.slack_support import ALICE, BOB, BOT_TOKEN, SlackReceiver, notice


@pytest.fixture
def receiver() -> Iterator[SlackReceiver]:
    with SlackReceiver() as r:
        yield r


def _channel(receiver: SlackReceiver, **settings: object) -> SlackChannel:
    values: dict[str, object] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": "signing-secret",
        "slack_api_url": receiver.api_url,
    }
    values.update(settings)
    channel = SlackChannel.from_settings(Settings(**values))  # type: ignore[arg-type]
    assert channel is not None
    return channel


def test_not_configured_without_a_bot_token() -> None:
    assert SlackChannel.from_settings(Settings()) is None
    assert SlackChannel.from_settings(Settings(slack_signing_secret=SecretStr("s"))) is None


def test_targets_for_approvals_and_for_the_requester(receiver: SlackReceiver) -> None:
    channel = _channel(receiver, slack_default_channel="#access")
    approval = notice()
    assert channel.targets(approval, {}) == ["channel:#access", "user:bob@example.com"]
    assert channel.targets(approval, {"channel": "#team-payments"}) == [
        "channel:#team-payments", "user:bob@example.com"]  # fmt: skip
    assert channel.targets(approval, {"channel": "#team-payments", "dm": False}) == [
        "channel:#team-payments"]  # fmt: skip
    granted = notice(NoticeKind.GRANTED, recipients=())
    assert channel.targets(granted, {"channel": "#team-payments"}) == ["user:alice@example.com"]
    assert channel.targets(granted, {"dm": False}) == []
    no_default = _channel(receiver)
    assert no_default.targets(notice(recipients=(BOB, BOB)), {}) == ["user:bob@example.com"]


def test_channel_post_carries_the_blocks_and_the_bot_token(receiver: SlackReceiver) -> None:
    n = notice()
    _channel(receiver).send(n, "channel:#access")
    (post,) = receiver.of("chat.postMessage")
    assert post.authorization == f"Bearer {BOT_TOKEN}"
    assert post.params["channel"] == "#access"
    assert post.params["text"] == slack_blocks.fallback_text(n)
    assert post.params["blocks"] == slack_blocks.message(n)
    assert post.params["unfurl_links"] is False


def test_direct_message_finds_the_person_by_email(receiver: SlackReceiver) -> None:
    receiver.users["U0ALICE"] = ALICE.email
    n = notice(NoticeKind.APPROVED, state="approved", reason="looks fine")
    _channel(receiver).send(n, "user:alice@example.com")
    assert [(c.method, c.params.get("email") or c.params.get("users") or c.params["channel"])
            for c in receiver.calls] == [
        ("users.lookupByEmail", "alice@example.com"),
        ("conversations.open", "U0ALICE"),
        ("chat.postMessage", "DU0ALICE"),
    ]  # fmt: skip
    blocks = receiver.of("chat.postMessage")[0].params["blocks"]
    assert blocks == slack_blocks.message(n)
    assert not any(b["type"] == "actions" for b in blocks)


def test_without_the_signing_secret_approvals_have_no_buttons(receiver: SlackReceiver) -> None:
    _channel(receiver, slack_signing_secret=None).send(notice(), "channel:#access")
    blocks = receiver.of("chat.postMessage")[0].params["blocks"]
    assert not any(b["type"] == "actions" for b in blocks)


@pytest.mark.parametrize(
    ("method", "status", "error", "retryable", "says"),
    [
        ("chat.postMessage", 429, "ratelimited", True, "HTTP 429: ratelimited; retry after 30s"),
        ("chat.postMessage", 200, "ratelimited", True, "ratelimited"),
        ("chat.postMessage", 503, None, True, "HTTP 503"),
        ("chat.postMessage", 500, "internal_error", True, "internal_error"),
        ("chat.postMessage", 200, "invalid_auth", False, "GRANTFLOW_SLACK_BOT_TOKEN"),
        ("chat.postMessage", 200, "channel_not_found", False, "invite the app"),
        ("chat.postMessage", 200, "missing_scope", False, "chat:write scope"),
        ("users.lookupByEmail", 200, "missing_scope", False, "users:read.email scope"),
        ("users.lookupByEmail", 200, "users_not_found", False, "no Slack user has the email"),
        ("conversations.open", 200, "missing_scope", False, "im:write scope"),
    ],
)
def test_slack_errors_map_to_retryable_or_admin_actionable(
    receiver: SlackReceiver, method: str, status: int, error: str | None, retryable: bool,
    says: str,
) -> None:  # fmt: skip
    receiver.users["U0ALICE"] = ALICE.email
    receiver.fail(method, status, error, **({"Retry-After": "30"} if status == 429 else {}))
    target = "channel:#access" if method == "chat.postMessage" else "user:alice@example.com"
    with pytest.raises(DeliveryError) as raised:
        _channel(receiver).send(notice(), target)
    assert raised.value.retryable is retryable
    assert says in str(raised.value)
    assert BOT_TOKEN not in str(raised.value)


def test_unreachable_slack_is_retryable() -> None:
    with SlackReceiver() as gone:
        url = gone.api_url
    channel = SlackChannel.from_settings(
        Settings(slack_bot_token=SecretStr(BOT_TOKEN), slack_api_url=url)
    )
    assert channel is not None
    with pytest.raises(DeliveryError) as raised:
        channel.send(notice(), "channel:#access")
    assert raised.value.retryable is True


def test_a_target_of_another_channel_is_refused_for_good(receiver: SlackReceiver) -> None:
    with pytest.raises(DeliveryError) as raised:
        _channel(receiver).send(notice(), "smtp:alice@example.com")
    assert raised.value.retryable is False
    assert receiver.calls == []


def test_email_of_reads_the_profile(receiver: SlackReceiver) -> None:
    receiver.users["U0BOB"] = "Bob@Example.com"
    client = _channel(receiver).client
    assert email_of(client, "U0BOB") == "bob@example.com"
    with pytest.raises(DeliveryError):
        email_of(client, "U0NOBODY")
