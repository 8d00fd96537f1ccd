"""Who hears about what: audit events of a request's life mapped to notices. Pure rules.

The outbox producer reads the audit log in order and asks ``plan_for`` what each event means
to people; the expiry duty asks ``needs_expiry_warning``. Which channels carry a notice is
the flow's ``notify`` block, falling back to the deployment's channels (``channel_options``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

EXPIRY_WARNING = timedelta(minutes=10)

CHANNEL_EMAIL = "email"
CHANNEL_SLACK = "slack"
CHANNEL_WEBHOOK = "webhook"

# A delivery that edits an approval message already posted (Slack's chat.update) once the
# request has left pending. Its payload names the approval delivery it edits.
APPROVAL_UPDATE = "approval_update"
UPDATES_KEY = "updates_delivery"


class NoticeKind(StrEnum):
    APPROVAL_NEEDED = "approval_needed"  # to approvers: a new request waits for them
    APPROVED = "approved"  # to the requester
    REJECTED = "rejected"  # to the requester
    GRANTED = "granted"  # to the requester: access is live, with how to use it
    EXPIRING = "expiring"  # to the requester: ten minutes left
    ENDED = "ended"  # to the requester: expired or revoked
    FAILED = "failed"  # to the requester (and admins): grant or revoke failed


class Audience(StrEnum):
    APPROVERS = "approvers"  # who may decide, never the requester
    REQUESTER = "requester"
    REQUESTER_AND_ADMINS = "requester_and_admins"  # failures: someone must look


@dataclass(frozen=True, slots=True)
class Planned:
    kind: NoticeKind
    audience: Audience
    reason: str | None = None
    dedupe: str | None = None  # set when one notice per subject (not per event) is wanted


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return str(value) if value not in (None, "") else None


def plan_for(action: str, data: Mapping[str, Any], *, auto_approval: bool) -> Planned | None:
    """What an audit event of a request (or its grant) tells whom; None when nothing.

    ``auto_approval``: the request's flow approves by itself, so nobody is asked to approve
    and "approved" is not news (the requester hears "granted").
    """
    if action == "request.created":
        return None if auto_approval else Planned(NoticeKind.APPROVAL_NEEDED, Audience.APPROVERS)
    if action == "request.approve":
        if auto_approval or data.get("auto"):
            return None
        return Planned(NoticeKind.APPROVED, Audience.REQUESTER, _text(data, "reason"))
    if action == "request.reject":
        return Planned(NoticeKind.REJECTED, Audience.REQUESTER, _text(data, "reason"))
    if action == "request.granted":
        return Planned(NoticeKind.GRANTED, Audience.REQUESTER)
    if action == "request.grant_failed":
        return Planned(NoticeKind.FAILED, Audience.REQUESTER_AND_ADMINS, _text(data, "error"))
    if action == "request.policy_failed":
        # its flow, integration or requester no longer allow it (an admin's change): no access
        return Planned(NoticeKind.FAILED, Audience.REQUESTER, _text(data, "reason"))
    if action == "request.revoke" and data.get("to") == "cancelled":
        # an approver or admin ended a request that had not been granted yet
        return Planned(NoticeKind.ENDED, Audience.REQUESTER, _text(data, "reason") or "revoked")
    if action in ("request.expired", "request.revoked"):
        return Planned(NoticeKind.ENDED, Audience.REQUESTER, action.removeprefix("request."))
    if action == "grant.revoke_failed":
        # retried every minute until AWS confirms: tell people once per grant, not per attempt
        grant = _text(data, "grant_id") or "?"
        return Planned(NoticeKind.FAILED, Audience.REQUESTER_AND_ADMINS,
                       f"revoking access failed and is being retried: {data.get('error')}",
                       dedupe=f"revoke_failed:{grant}")  # fmt: skip
    return None


def left_pending(data: Mapping[str, Any]) -> str | None:
    """The state a request moved to when this transition's audit data (``from``/``to``, as
    ``transitions.move`` records them) took it out of ``pending``; None otherwise."""
    before, after = data.get("from"), data.get("to")
    if before == "pending" and isinstance(after, str) and after and after != "pending":
        return after
    return None


def approval_update_dedupe(approval_delivery_id: str, state: str) -> str:
    """One update per approval message and outcome (a request leaves pending only once)."""
    return f"{APPROVAL_UPDATE}:{approval_delivery_id}:{state}"


def needs_expiry_warning(granted_at: datetime | None, expires_at: datetime, now: datetime) -> bool:
    """Within ten minutes of the end, for access granted for longer than ten minutes (a
    shorter grant's "granted" notice already says when it ends)."""
    if now >= expires_at or expires_at - now > EXPIRY_WARNING:
        return False
    return granted_at is None or expires_at - granted_at > EXPIRY_WARNING


def expiry_dedupe(request_id: str, expires_at: datetime) -> str:
    """One warning per request and end time: an extension moves the end and warns again."""
    return f"expiring:{request_id}:{expires_at.isoformat()}"


def approver_user_ids(
    principals: Iterable[str], group_members: Mapping[str, Collection[str]], requester_id: str
) -> set[str]:
    """The users behind approver principals ("user:<id>", "group:<id>"), never the requester."""
    users: set[str] = set()
    for principal in principals:
        kind, _, ref = principal.partition(":")
        if kind == "user":
            users.add(ref)
        elif kind == "group":
            users.update(group_members.get(ref, ()))
    users.discard(requester_id)
    return users


# ---- the flow's notify block ------------------------------------------------------------


class SlackNotify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str | None = Field(
        default=None,
        max_length=80,
        exclude_if=lambda v: v is None,
        description="Also post to this channel (e.g. #access-requests)",
    )
    dm: bool | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Direct messages to the people concerned (default true)",
    )


class FlowNotify(BaseModel):
    """Per-flow channel choice. A field left out uses the deployment's default (every
    configured channel); ``false`` or ``[]`` turns that channel off for the flow."""

    model_config = ConfigDict(extra="forbid")
    email: bool | None = Field(default=None, exclude_if=lambda v: v is None)
    slack: SlackNotify | bool | None = Field(default=None, exclude_if=lambda v: v is None)
    webhooks: list[str] | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="Names of webhooks configured in GRANTFLOW_WEBHOOKS",
    )

    @field_validator("webhooks")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("a webhook is named twice")
        return value


def unknown_webhooks(notify: FlowNotify | None, configured: Collection[str]) -> list[str]:
    if notify is None or not notify.webhooks:
        return []
    return [name for name in notify.webhooks if name not in configured]


def channel_options(notify: FlowNotify | None, channel: str) -> dict[str, Any] | None:
    """The options a channel gets for a flow's notice, or None when the flow turns it off."""
    if channel == CHANNEL_EMAIL:
        return None if notify is not None and notify.email is False else {}
    if channel == CHANNEL_SLACK:
        choice = notify.slack if notify is not None else None
        if choice is False:
            return None
        return choice.model_dump(mode="json") if isinstance(choice, SlackNotify) else {}
    if channel == CHANNEL_WEBHOOK:
        if notify is None or notify.webhooks is None:
            return {}
        return {"webhooks": list(notify.webhooks)} if notify.webhooks else None
    return {}
