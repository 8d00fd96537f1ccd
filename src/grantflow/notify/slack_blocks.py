"""Block Kit messages for Slack: pure functions from a ``Notice`` to a list of blocks.

Slack's limits shape these: a header holds 150 characters, a section field 2,000, a section
text 3,000, a section at most 10 fields. User text is escaped (``&``, ``<``, ``>``) so that
nobody's justification can ping ``<!channel>`` or forge a link.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from grantflow.notify.base import Notice, NoticeKind

Block = dict[str, Any]

APPROVE_ACTION = "grantflow_approve"
REJECT_ACTION = "grantflow_reject"
DECISION_BLOCK_ID = "grantflow_decision"
OUTCOME_BLOCK_ID = "grantflow_outcome"
MAX_RESOURCES_LISTED = 10

TITLES = {
    NoticeKind.APPROVAL_NEEDED: "Access request waiting for approval",
    NoticeKind.APPROVED: "Your access request was approved",
    NoticeKind.REJECTED: "Your access request was rejected",
    NoticeKind.GRANTED: "Your access is ready",
    NoticeKind.EXPIRING: "Your access ends soon",
    NoticeKind.ENDED: "Your access has ended",
    NoticeKind.FAILED: "Your access request failed",
}


# An approval message once the request has left pending: its new title and outcome line.
CLOSED_TITLES = {
    "approved": "Access request approved",
    "rejected": "Access request rejected",
    "cancelled": "Access request cancelled",
}
CLOSED_TITLE = "Access request closed"
_OUTCOMES = {
    "approved": (":white_check_mark:", "Approved"),
    "rejected": (":x:", "Rejected"),
    "cancelled": (":no_entry_sign:", "Cancelled"),
}


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as its documentation asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link(url: str, label: str) -> str:
    return f"<{escape(url)}|{escape(label).replace('|', '¦')}>"


def duration_text(seconds: int) -> str:
    """``90`` → ``1m 30s``; ``7200`` → ``2h``; ``93600`` → ``1d 2h``."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2]) or "0s"


def date_text(when: datetime) -> str:
    """A Slack date token: shown in each reader's own time zone, with a UTC fallback."""
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"


def _field(label: str, value: str) -> Block:
    return {"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", 2000)}


def _resources(notice: Notice) -> str:
    shown = [f"`{escape(r)}`" for r in notice.resources[:MAX_RESOURCES_LISTED]]
    more = len(notice.resources) - len(shown)
    text = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    return f"{escape(notice.resource_type)}: {text}" if text else escape(notice.resource_type)


def _details(notice: Notice) -> list[Block]:
    requester = escape(notice.requester.name or notice.requester.email)
    if notice.requester.email and notice.requester.name:
        requester += f" ({escape(notice.requester.email)})"
    fields = [
        _field("Requester", requester),
        _field("Permission", f"`{escape(notice.permission)}`"),
        _field("Resources", _resources(notice)),
        _field("Duration", duration_text(notice.duration_seconds)),
        _field("Integration", escape(notice.integration)),
        _field("State", escape(notice.state)),
    ]
    blocks: list[Block] = [{"type": "section", "fields": fields}]
    if notice.justification.strip():
        text = "*Justification*\n>" + escape(notice.justification.strip()).replace("\n", "\n>")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}})
    return blocks


def _outcome(notice: Notice) -> list[Block]:
    lines = []
    if notice.reason:
        lines.append(f"*Reason:* {escape(notice.reason)}")
    if notice.expires_at is not None and notice.kind in (NoticeKind.GRANTED, NoticeKind.EXPIRING):
        lines.append(f"*Ends:* {date_text(notice.expires_at)}")
    sign_in = notice.access.get("sign_in_url")
    if notice.kind is NoticeKind.GRANTED and isinstance(sign_in, str) and sign_in:
        lines.append(f"*Sign in:* {link(sign_in, 'open the AWS access portal')}")
    custom = notice.access.get("custom_access_details")
    if notice.kind is NoticeKind.GRANTED and isinstance(custom, str) and custom.strip():
        lines.append(f"*Details:* {escape(custom.strip())}")
    if not lines:
        return []
    return [{"type": "section", "text": {"type": "mrkdwn", "text": clip("\n".join(lines), 3000)}}]


def decision_buttons(request_id: str) -> Block:
    """Approve and Reject; each carries the request id, and Reject asks for confirmation."""
    return {
        "type": "actions",
        "block_id": DECISION_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": request_id,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "style": "danger",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": request_id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Reject this request?"},
                    "text": {"type": "plain_text", "text": "The requester will be told."},
                    "confirm": {"type": "plain_text", "text": "Reject"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                    "style": "danger",
                },
            },
        ],
    }


def fallback_text(notice: Notice) -> str:
    """The notification text (push, screen readers) that goes with the blocks."""
    return clip(f"{TITLES[notice.kind]}: {notice.summary}", 3000)


def message(notice: Notice, *, interactive: bool = True) -> list[Block]:
    """The whole message. Approval requests carry Approve / Reject buttons when ``interactive``
    (the signing secret is set, so clicks can be verified); the link is always there."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(TITLES[notice.kind], 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(escape(notice.summary), 3000)}},
        *_details(notice),
        *_outcome(notice),
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{link(notice.link, 'Open the request in Grantflow')} · "
                    f"`{escape(notice.request_id)}`",
                }
            ],
        },
    ]
    if notice.kind is NoticeKind.APPROVAL_NEEDED and interactive:
        blocks.append(decision_buttons(notice.request_id))
    return blocks


def decided(original: list[Block], outcome: str) -> list[Block]:
    """The original message once decided: buttons gone, the outcome (mrkdwn) at the end."""
    kept = [b for b in original if b.get("block_id") not in (DECISION_BLOCK_ID, OUTCOME_BLOCK_ID)]
    kept.append(
        {
            "type": "section",
            "block_id": OUTCOME_BLOCK_ID,
            "text": {"type": "mrkdwn", "text": clip(outcome, 3000)},
        }
    )
    return kept


def outcome_text(notice: Notice) -> str:
    """One line saying how an approval request ended, who ended it and when:
    ``:white_check_mark: Approved by *Bob* · <date>``, ``:x: Rejected by *Bob*: <reason> ·
    <date>``, ``:no_entry_sign: Cancelled by the requester · <date>``. ``notice.state`` is
    the state the request moved to, ``notice.actor`` who moved it (None: Grantflow itself),
    ``notice.reason`` the reason they gave and ``notice.occurred_at`` when."""
    emoji, verb = _OUTCOMES.get(notice.state, (":information_source:", ""))
    if notice.actor is None:
        who = "Grantflow"
    elif notice.actor.user_id == notice.requester.user_id:
        who = "the requester"
    else:
        who = f"*{escape(notice.actor.name or notice.actor.email)}*"
    head = f"{verb} by {who}" if verb else f"Closed ({escape(notice.state)}) by {who}"
    reason = (notice.reason or "").strip()
    if reason:
        head += ": " + escape(" ".join(reason.split()))
    return f"{emoji} {head} · {date_text(notice.occurred_at)}"


def closed_fallback_text(notice: Notice) -> str:
    title = CLOSED_TITLES.get(notice.state, CLOSED_TITLE)
    return clip(f"{title}: {notice.summary}", 3000)


def approval_closed(notice: Notice) -> list[Block]:
    """An approval message once its request has left pending (what ``chat.update`` puts in
    place of every copy): the same details, retitled, with no buttons, the outcome last.

    ``notice`` is the approval request's notice with ``state``, ``actor``, ``reason`` and
    ``occurred_at`` describing the outcome (see ``outcome_text``)."""
    body = message(replace(notice, reason=None), interactive=False)
    title = CLOSED_TITLES.get(notice.state, CLOSED_TITLE)
    body[0] = {"type": "header", "text": {"type": "plain_text", "text": clip(title, 150)}}
    return decided(body, outcome_text(notice))
