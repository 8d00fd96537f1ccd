"""Approve / Reject clicked in Slack: who clicked, and the same decision the API makes.

The route (``api/routes/slack.py``) has already verified Slack's signature. Here the Slack
user becomes a Grantflow user by the email on their Slack profile, and
``services.access_requests.decide`` — the API's own call, with its authorization — decides.
Whatever stops it (the requester's own button, someone who is not an approver, a request
already decided, an unknown person) changes nothing and is explained to the clicker alone.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.notify import slack_blocks
from grantflow.notify.base import DeliveryError
from grantflow.notify.slack import email_of
from grantflow.services.access import access_requests
from grantflow.services.audit import trail as audit
from grantflow.services.errors import ServiceError
from grantflow.store.db import transaction
from grantflow.store.models import User

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


def _grantflow_user(session: Session, email: str) -> User | str:
    """The one active user with this email, or why there is none."""
    users = list(
        session.scalars(
            select(User).where(func.lower(User.email) == email.lower(), User.active.is_(True))
        )
    )
    if len(users) == 1:
        return users[0]
    if not users:
        return (
            f"No active Grantflow user has the email {email}. Nothing changed; ask an admin "
            "to add you (or to give your Grantflow account this address)."
        )
    return (
        f"Several Grantflow users have the email {email}, so Grantflow cannot tell who you are; "
        "ask an admin to fix the duplicate. Nothing changed."
    )


def decide(
    click: Click,
    client: WebClient,
    sessions: sessionmaker[Session],
    base_url: str,
    http_request_id: str | None = None,
) -> Reply:
    """Map the Slack user and decide, exactly as ``POST /access-requests/{id}/approve`` does."""
    link = slack_blocks.link(f"{base_url.rstrip('/')}/requests/{click.request_id}", "Grantflow")
    try:
        email = email_of(client, click.slack_user_id)
    except DeliveryError as err:
        log.warning("slack_user_lookup_failed", slack_user=click.slack_user_id, error=str(err))
        return Reply(f"Grantflow could not look you up in Slack ({err}). Nothing changed; "
                     f"decide in {link}.")  # fmt: skip
    if email is None:
        return Reply("Slack did not share your email with Grantflow (the app needs the "
                     f"users:read.email scope). Nothing changed; decide in {link}.")  # fmt: skip
    verb = "approve" if click.approve else "reject"
    try:
        with transaction(sessions) as session:  # a refusal raises: nothing is written
            user = _grantflow_user(session, email)
            if isinstance(user, str):
                return Reply(user)
            user_id, who = user.id, slack_blocks.escape(user.display_name or user.username)
            actor = audit.Actor(type="user", id=user.id, source="slack", request_id=http_request_id)
            request = access_requests.get(session, click.request_id)
            access_requests.decide(session, request, user, click.approve, "", actor)
            state, failure = request.state, request.failure_reason
    except ServiceError as err:
        log.info("slack_decision_refused", request_id=click.request_id, action=verb,
                 slack_user=click.slack_user_id, reason=err.message)  # fmt: skip
        return Reply(f"You cannot {verb} this request: {err.message}. Nothing changed.")
    log.info("slack_decision", request_id=click.request_id, user_id=user_id, action=verb,
             state=state)  # fmt: skip
    if click.approve and state == "pending":
        return Reply("Your approval is recorded; the request still needs more approvals.")
    outcome = (
        f":white_check_mark: Approved by *{who}* in Slack."
        if click.approve
        else f":x: Rejected by *{who}* in Slack."
    )
    if click.approve and state == "failed":  # today's policy no longer allows it
        outcome = f":warning: Not approved: {slack_blocks.escape(failure or 'failed')}."
    blocks = slack_blocks.decided(click.message_blocks, outcome)
    return Reply(outcome, replace_original=True, blocks=blocks)


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
