"""A ``Notice`` as JSON for the outbox row, and back (the delivery loop sends what it reads)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from grantflow.notify.base import Notice, NoticeKind, Recipient


def _recipient(value: Recipient) -> dict[str, str]:
    return {"user_id": value.user_id, "email": value.email, "name": value.name}


def to_payload(notice: Notice) -> dict[str, Any]:
    return {
        "kind": notice.kind.value,
        "request_id": notice.request_id,
        "requester": _recipient(notice.requester),
        "summary": notice.summary,
        "justification": notice.justification,
        "integration": notice.integration,
        "resource_type": notice.resource_type,
        "resources": list(notice.resources),
        "permission": notice.permission,
        "duration_seconds": notice.duration_seconds,
        "state": notice.state,
        "occurred_at": notice.occurred_at.isoformat(),
        "link": notice.link,
        "recipients": [_recipient(r) for r in notice.recipients],
        "reason": notice.reason,
        "expires_at": notice.expires_at.isoformat() if notice.expires_at else None,
        "access": notice.access,
        "actor": _recipient(notice.actor) if notice.actor else None,
    }


def _to_recipient(value: dict[str, Any]) -> Recipient:
    return Recipient(str(value["user_id"]), str(value["email"]), str(value["name"]))


def from_payload(data: dict[str, Any], delivery_id: str = "") -> Notice:
    expires = data.get("expires_at")
    actor = data.get("actor")
    return Notice(
        kind=NoticeKind(data["kind"]),
        request_id=str(data["request_id"]),
        requester=_to_recipient(data["requester"]),
        summary=str(data["summary"]),
        justification=str(data["justification"]),
        integration=str(data["integration"]),
        resource_type=str(data["resource_type"]),
        resources=tuple(str(r) for r in data["resources"]),
        permission=str(data["permission"]),
        duration_seconds=int(data["duration_seconds"]),
        state=str(data["state"]),
        occurred_at=datetime.fromisoformat(data["occurred_at"]),
        link=str(data["link"]),
        recipients=tuple(_to_recipient(r) for r in data.get("recipients", [])),
        reason=data.get("reason"),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        access=dict(data.get("access") or {}),
        delivery_id=delivery_id,
        actor=_to_recipient(actor) if isinstance(actor, dict) else None,
    )
