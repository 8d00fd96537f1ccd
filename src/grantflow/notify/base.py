"""The one interface every notification channel implements.

A ``Notice`` is what happened and to whom it matters; a channel turns it into its own message
(Block Kit, an email, a signed JSON event) and sends it. Channels raise ``DeliveryError``;
the delivery loop records it and retries with backoff, so a channel never blocks a request.
A channel may return a receipt (where the message landed); one that can edit what it posted
(``UpdatableChannel``, Slack) later gets that receipt back to update the message in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from grantflow.domain.notifications import NoticeKind as NoticeKind  # re-exported: a channel's word


@dataclass(frozen=True, slots=True)
class Recipient:
    """A Grantflow user a notice is addressed to (channels map them: Slack by email, SMTP)."""

    user_id: str
    email: str
    name: str


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing worth telling, about one access request."""

    kind: NoticeKind
    request_id: str
    requester: Recipient
    summary: str  # one line: "alice requests AdministratorAccess on 111111111111 for 2h"
    justification: str
    integration: str
    resource_type: str
    resources: tuple[str, ...]
    permission: str
    duration_seconds: int
    state: str
    occurred_at: datetime
    link: str  # the request's page in the web UI (sign-in required)
    recipients: tuple[Recipient, ...] = ()
    reason: str | None = None  # decision reason, failure reason, end reason
    expires_at: datetime | None = None
    access: dict[str, Any] = field(default_factory=dict)  # sign-in link, CLI snippet, details
    delivery_id: str = ""  # set by the delivery loop: one id per (notice, channel, target)
    actor: Recipient | None = None  # who caused it (a decision's approver); None: Grantflow

    def as_event(self) -> dict[str, Any]:
        """The JSON body a webhook receives (stable field names, ISO-8601 UTC times)."""
        return {
            "type": f"request.{self.kind.value}",
            "request_id": self.request_id,
            "summary": self.summary,
            "state": self.state,
            "requester": {"id": self.requester.user_id, "email": self.requester.email},
            "integration": self.integration,
            "resource_type": self.resource_type,
            "resources": list(self.resources),
            "permission": self.permission,
            "duration_seconds": self.duration_seconds,
            "justification": self.justification,
            "reason": self.reason,
            "occurred_at": self.occurred_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "link": self.link,
        }


class DeliveryError(Exception):
    """A channel could not deliver. ``retryable`` False means trying again cannot help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(Protocol):
    """A way of reaching people. ``name`` is what deployments and flows refer to."""

    name: str

    def targets(self, notice: Notice, flow_options: dict[str, Any]) -> list[str]:
        """Where this notice goes on this channel (addresses, a Slack channel, webhook names).

        ``flow_options`` is the flow's ``notify.<channel>`` block (may be empty). An empty list
        means this channel sends nothing for this notice.
        """
        ...

    def send(self, notice: Notice, target: str) -> dict[str, Any] | None:
        """Deliver to one target, or raise ``DeliveryError``.

        May return a receipt (JSON-able: where the message landed, e.g. Slack's channel and
        ``ts``); the delivery log keeps it. Channels with nothing to remember return None."""
        ...


@runtime_checkable
class UpdatableChannel(Channel, Protocol):
    """A channel that can edit a message it posted, given the receipt ``send`` returned."""

    def update(self, notice: Notice, receipt: dict[str, Any]) -> dict[str, Any] | None:
        """Replace the message ``receipt`` points at with ``notice``, or raise
        ``DeliveryError``."""
        ...
