"""Approve / Reject clicked in Slack: who clicked, and the same decision the API makes.

The route (``api/routes/slack.py``) has already verified Slack's signature and read the click
(``notify.slack_actions``). Here the Slack user becomes a Grantflow user by the email on their
Slack profile, and ``access_requests.decide`` — the API's own call, with its authorization —
decides. Whatever stops it (the requester's own button, someone who is not an approver, a
request already decided, an unknown person) changes nothing and is explained to the clicker
alone.
"""

from __future__ import annotations

import structlog
from slack_sdk import WebClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.notify import slack_blocks
from grantflow.notify.base import DeliveryError
from grantflow.notify.slack import email_of
from grantflow.notify.slack_actions import Click, Reply
from grantflow.services.access import access_requests
from grantflow.services.audit import trail as audit
from grantflow.services.errors import ServiceError
from grantflow.store.db import transaction
from grantflow.store.models import User

log = structlog.get_logger(__name__)


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
