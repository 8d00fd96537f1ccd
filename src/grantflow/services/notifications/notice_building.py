"""A ``Notice`` about an access request, built from its rows: what it is, who hears it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.notifications import Audience, approver_user_ids
from grantflow.notify.base import Notice, NoticeKind, Recipient
from grantflow.services.access import grant_building
from grantflow.services.access.access_requests import approval_sets
from grantflow.store.models import (
    AccessRequest,
    Grant,
    GroupMembership,
    Integration,
    Resource,
    User,
)


def recipient(user: User) -> Recipient:
    return Recipient(user.id, user.email or "", user.display_name or user.username)


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds}s"


def _approvers(session: Session, request: AccessRequest) -> list[User]:
    _, sets = approval_sets(request)
    principals = [p for s in sets for p in s.principals]
    groups = [p.split(":", 1)[1] for p in principals if p.startswith("group:")]
    members: dict[str, set[str]] = {}
    if groups:
        rows = session.execute(
            select(GroupMembership.group_id, GroupMembership.user_id).where(
                GroupMembership.group_id.in_(groups)
            )
        )
        for group_id, user_id in rows:
            members.setdefault(group_id, set()).add(user_id)
    ids = approver_user_ids(principals, members, request.requester_id)
    if not ids:
        return []
    query = select(User).where(User.id.in_(ids), User.active.is_(True)).order_by(User.username)
    return list(session.scalars(query))


def audience(session: Session, request: AccessRequest, who: Audience) -> tuple[Recipient, ...]:
    if who is Audience.APPROVERS:
        return tuple(recipient(u) for u in _approvers(session, request))
    requester = session.get(User, request.requester_id)
    people = [requester] if requester is not None else []
    if who is Audience.REQUESTER_AND_ADMINS:
        admins = session.scalars(
            select(User).where(User.role == "admin", User.active.is_(True)).order_by(User.username)
        )
        people += [a for a in admins if a.id != request.requester_id]
    return tuple(recipient(u) for u in people)


def _resources_and_access(
    session: Session, request: AccessRequest, integ: Integration | None, with_access: bool
) -> tuple[tuple[str, ...], dict[str, Any]]:
    names: list[str] = []
    access: dict[str, Any] = {}
    for grant in session.scalars(select(Grant).where(Grant.request_id == request.id)):
        resource = session.get(Resource, grant.resource_id) if grant.resource_id else None
        names.append(resource.name or resource.aws_id if resource else "(deleted resource)")
        if with_access and not access and grant.state == "granted" and integ is not None:
            access = grant_building.access_details(
                integ, grant.handle, resource, request.permission
            )
    return tuple(names), access


def build(
    session: Session,
    request: AccessRequest,
    kind: NoticeKind,
    *,
    occurred_at: datetime,
    base_url: str,
    recipients: tuple[Recipient, ...],
    state: str | None = None,
    reason: str | None = None,
) -> Notice:
    requester = session.get(User, request.requester_id)
    assert requester is not None
    integ = session.get(Integration, request.integration_id)
    resources, access = _resources_and_access(
        session, request, integ, kind in (NoticeKind.GRANTED, NoticeKind.EXPIRING)
    )
    shown = resources[0] if len(resources) == 1 else f"{len(resources)} resources"
    summary = (
        f"{requester.username} requests {request.permission} on {shown} "
        f"for {_duration(request.duration_seconds)}"
    )
    return Notice(
        kind=kind,
        request_id=request.id,
        requester=recipient(requester),
        summary=summary,
        justification=request.justification,
        integration=integ.name if integ else "",
        resource_type=request.resource_type,
        resources=resources,
        permission=request.permission,
        duration_seconds=request.duration_seconds,
        state=state or request.state,
        occurred_at=occurred_at,
        link=f"{base_url.rstrip('/')}/requests/{request.id}",
        recipients=recipients,
        reason=reason,
        expires_at=request.expires_at,
        access=access,
    )
