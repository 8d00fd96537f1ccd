"""Approve / Reject clicked in Slack: Slack's side of it — the signature, the click read from
the payload, and the reply posted back to the clicker.

The route (``api/routes/slack.py``) verifies the signature and reads the click; the decision
itself is ``services.notifications.slack_decisions.decide`` (the Slack user becomes a
Grantflow user by their profile's email, and the API's own ``access_requests.decide`` decides).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from slack_sdk.signature import SignatureVerifier

from grantflow.notify import slack_blocks

log = structlog.get_logger(__name__)

ACTIONS = {slack_blocks.APPROVE_ACTION: True, slack_blocks.REJECT_ACTION: False}
RESPOND_TIMEOUT_SECONDS = 5.0


class BadPayload(ValueError):
    """The signed body is not a block_actions payload Grantflow can read."""


@dataclass(frozen=True, slots=True)
class Click:
    """One click on a Grantflow Approve or Reject button."""

    approve: bool
    request_id: str
    slack_user_id: str
    response_url: str | None
    message_blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the clicker sees: an ephemeral note, or the original message replaced."""

    text: str
    replace_original: bool = False
    blocks: list[dict[str, Any]] | None = None

    def body(self) -> dict[str, Any]:
        if not self.replace_original:
            return {"response_type": "ephemeral", "replace_original": False, "text": self.text}
        return {"replace_original": True, "text": self.text, "blocks": self.blocks or []}


def parse(payload: str) -> Click | None:
    """The click in an interactivity ``payload``; None for interactions that are not ours."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as err:
        raise BadPayload("payload is not JSON") from err
    if not isinstance(data, dict):
        raise BadPayload("payload is not a JSON object")
    if data.get("type") != "block_actions":
        return None
    actions = data.get("actions") or []
    action = actions[0] if isinstance(actions, list) and actions else {}
    approve = ACTIONS.get(str(action.get("action_id", ""))) if isinstance(action, dict) else None
    if approve is None:
        return None
    user = data.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    value = action.get("value")
    if not isinstance(user_id, str) or not user_id or not isinstance(value, str) or not value:
        raise BadPayload("a button click without a user or a request id")
    response_url = data.get("response_url")
    message = data.get("message") or {}
    blocks = message.get("blocks") if isinstance(message, dict) else None
    blocks = [b for b in blocks if isinstance(b, dict)] if isinstance(blocks, list) else []
    return Click(
        approve=approve,
        request_id=value,
        slack_user_id=user_id,
        response_url=response_url if isinstance(response_url, str) else None,
        message_blocks=[b for b in blocks if isinstance(b, dict)]
        if isinstance(blocks, list)
        else [],
    )


def respond(response_url: str, reply: Reply) -> None:
    """Post the reply to the click's ``response_url``; a failure is logged, not raised (the
    decision has already happened and the request page shows it)."""
    try:
        r = httpx.post(response_url, json=reply.body(), timeout=RESPOND_TIMEOUT_SECONDS)
        r.raise_for_status()
    except httpx.HTTPError as err:
        log.warning("slack_response_url_failed", error=type(err).__name__, detail=str(err))


def signature_ok(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    window_seconds: int,
    now: float,
) -> bool:
    """Slack's v0 signature (HMAC-SHA256 of ``v0:<timestamp>:<raw body>``) over a timestamp
    no further than ``window_seconds`` from ``now`` (a replayed click is refused)."""
    if not timestamp or not signature:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > window_seconds:
        return False
    try:
        expected = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    except UnicodeDecodeError:
        return False
    return expected is not None and hmac.compare_digest(expected, signature)
