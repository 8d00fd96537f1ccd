"""The Slack channel: Block Kit messages through slack_sdk's ``WebClient``.

Targets are strings the outbox stores: ``channel:<name or id>`` posts to a channel,
``user:<email>`` finds that person in Slack (``users.lookupByEmail``), opens a direct message
(``conversations.open``) and posts there. An approval request's post returns a receipt (the
channel id and message ``ts``); ``update`` later edits that message (``chat.update``) to show
the outcome without buttons. Slack API failures become ``DeliveryError``:
rate limits, 5xx and network errors may succeed later (retryable); a bad token, a missing
scope, an unknown channel or user cannot, and the message says what an admin must fix.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from grantflow.notify import slack_blocks
from grantflow.notify.base import DeliveryError, Notice, NoticeKind
from grantflow.notify.config import SlackConfig

log = structlog.get_logger(__name__)

CHANNEL_PREFIX = "channel:"
USER_PREFIX = "user:"
TIMEOUT_SECONDS = 10

# The bot token scope each Web API method we call needs.
SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "users.lookupByEmail": "users:read.email",
    "users.info": "users:read",
    "conversations.open": "im:write",
}
_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def build_client(settings: SlackConfig) -> WebClient | None:
    """A Web API client for the configured bot token (None when Slack is not configured)."""
    if settings.slack_bot_token is None:
        return None
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=TIMEOUT_SECONDS,
    )


def _admin_message(method: str, error: str, data: dict[str, Any], target: str) -> str:
    scope = SCOPES.get(method, "the needed scope")
    if error in _AUTH_ERRORS:
        return (
            f"Slack refused the bot token ({error}): set GRANTFLOW_SLACK_BOT_TOKEN to the "
            "app's current Bot User OAuth Token (xoxb-…)"
        )
    if error == "missing_scope":
        needed = data.get("needed") or scope
        return (
            f"the Slack app lacks the {needed} scope for {method}: add it under OAuth & "
            "Permissions and reinstall the app"
        )
    if error == "channel_not_found":
        return (
            f"Slack has no channel {target!r} the app can see: check the name, and invite the "
            "app to a private channel (needs chat:write)"
        )
    if error == "not_in_channel":
        return f"the Slack app is not in {target!r}: invite it to the channel (/invite)"
    if error == "is_archived":
        return f"the Slack channel {target!r} is archived"
    if error == "message_not_found":
        return (
            f"the Slack message to update ({target}) no longer exists: someone deleted it, or "
            "the channel is gone"
        )
    if error == "cant_update_message":
        return (
            f"Slack does not let the app edit the message {target}: it was posted by another "
            "app or token (GRANTFLOW_SLACK_BOT_TOKEN changed to another app?)"
        )
    if error == "edit_window_closed":
        return f"the workspace's edit window for the Slack message {target} has closed"
    if error == "users_not_found":
        return (
            f"no Slack user has the email {target!r} (users.lookupByEmail needs the "
            "users:read.email scope; the person may use another address in Slack)"
        )
    return f"Slack {method} failed: {error}"


def delivery_error(err: SlackClientError | OSError, method: str, target: str) -> DeliveryError:
    """Map one failed Web API call to a ``DeliveryError`` (retryable or admin-actionable)."""
    if not isinstance(err, SlackApiError):
        # Network trouble (refused, reset, timeout) or a malformed request.
        retryable = isinstance(err, OSError)
        return DeliveryError(f"Slack {method} failed: {err}", retryable=retryable)
    status = err.response.status_code
    data = err.response.data if isinstance(err.response.data, dict) else {}
    error = str(data.get("error") or f"HTTP {status}")
    if status == 429 or status >= 500 or error in _TRANSIENT_ERRORS:
        retry_after = err.response.headers.get("Retry-After") or err.response.headers.get(
            "retry-after"
        )
        hint = f"; retry after {retry_after}s" if retry_after else ""
        return DeliveryError(f"Slack {method} failed (HTTP {status}: {error}{hint})",
                             retryable=True)  # fmt: skip
    return DeliveryError(_admin_message(method, error, data, target), retryable=False)


class SlackChannel:
    """Posts notices to Slack channels and as direct messages to people found by email."""

    name = "slack"

    def __init__(
        self, client: WebClient, *, default_channel: str | None = None, interactive: bool = True
    ) -> None:
        self.client = client
        self.default_channel = default_channel
        self.interactive = interactive

    @classmethod
    def from_settings(cls, settings: SlackConfig) -> SlackChannel | None:
        client = build_client(settings)
        if client is None:
            return None
        return cls(
            client,
            default_channel=settings.slack_default_channel or None,
            interactive=settings.slack_signing_secret is not None,
        )

    def targets(self, notice: Notice, flow_options: dict[str, Any]) -> list[str]:
        """Approval requests: the flow's ``channel`` (else the deployment default) and a DM to
        each approver; everything else: a DM to its recipients (else the requester).
        ``"dm": false`` in the flow's ``notify.slack`` block turns the direct messages off."""
        out: list[str] = []
        people = list(notice.recipients)
        if notice.kind is NoticeKind.APPROVAL_NEEDED:
            channel = flow_options.get("channel") or self.default_channel
            if isinstance(channel, str) and channel.strip():
                out.append(CHANNEL_PREFIX + channel.strip())
        elif not people:
            people = [notice.requester]
        if flow_options.get("dm", True) is not False:
            for person in people:
                target = USER_PREFIX + person.email.strip().lower()
                if person.email.strip() and target not in out:
                    out.append(target)
        return out

    def send(self, notice: Notice, target: str) -> dict[str, Any] | None:
        """Post to one target. For an approval request, returns where the message landed
        (``{"channel": <id>, "ts": <ts>}``) so ``update`` can edit it once decided."""
        if target.startswith(CHANNEL_PREFIX):
            channel = target.removeprefix(CHANNEL_PREFIX)
        elif target.startswith(USER_PREFIX):
            channel = self._direct_channel(target.removeprefix(USER_PREFIX))
        else:
            raise DeliveryError(f"not a Slack target: {target!r}", retryable=False)
        blocks = slack_blocks.message(notice, interactive=self.interactive)
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                text=slack_blocks.fallback_text(notice),
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except (SlackClientError, OSError) as err:
            raise delivery_error(err, "chat.postMessage", target) from err
        log.info("slack_posted", request_id=notice.request_id, kind=notice.kind.value,
                 channel=response.get("channel"), ts=response.get("ts"))  # fmt: skip
        if notice.kind is not NoticeKind.APPROVAL_NEEDED:
            return None
        return _receipt(response.get("channel"), response.get("ts"))

    def update(self, notice: Notice, receipt: dict[str, Any]) -> dict[str, Any] | None:
        """Replace a posted approval message (``receipt`` from ``send``) with its outcome and
        no buttons (``chat.update``; the same content twice is harmless)."""
        channel, ts = receipt.get("channel"), receipt.get("ts")
        if not isinstance(channel, str) or not channel or not isinstance(ts, str) or not ts:
            raise DeliveryError(f"not a Slack message receipt: {receipt!r}", retryable=False)
        try:
            response = self.client.chat_update(
                channel=channel,
                ts=ts,
                text=slack_blocks.closed_fallback_text(notice),
                blocks=slack_blocks.approval_closed(notice),
            )
        except (SlackClientError, OSError) as err:
            raise delivery_error(err, "chat.update", f"{channel}/{ts}") from err
        log.info("slack_updated", request_id=notice.request_id, state=notice.state,
                 channel=channel, ts=ts)  # fmt: skip
        return _receipt(response.get("channel") or channel, response.get("ts") or ts)

    def _direct_channel(self, email: str) -> str:
        """The id of the direct message conversation with the Slack user owning ``email``."""
        method = "users.lookupByEmail"
        try:
            user = self.client.users_lookupByEmail(email=email)
            method = "conversations.open"
            opened = self.client.conversations_open(users=str(user["user"]["id"]))
        except (SlackClientError, OSError) as err:
            raise delivery_error(err, method, email) from err
        return str(opened["channel"]["id"])


def _receipt(channel: object, ts: object) -> dict[str, Any] | None:
    if isinstance(channel, str) and channel and isinstance(ts, str) and ts:
        return {"channel": channel, "ts": ts}
    return None


def email_of(client: WebClient, slack_user_id: str) -> str | None:
    """The email on a Slack user's profile (``users.info``; needs users:read.email).

    Raises ``DeliveryError`` when Slack cannot answer; None when the profile has no email."""
    try:
        response = client.users_info(user=slack_user_id)
    except (SlackClientError, OSError) as err:
        raise delivery_error(err, "users.info", slack_user_id) from err
    profile = (response.get("user") or {}).get("profile") or {}
    email = profile.get("email")
    return email.strip().lower() if isinstance(email, str) and email.strip() else None
