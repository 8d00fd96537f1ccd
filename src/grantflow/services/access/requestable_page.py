"""What a user can request, as the API pages it: the resources some enabled flow lets them
ask for (``requestable.page``), each with those flows, their permissions on its type, and who
would approve, by name. One read transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.flows import FlowView, resolve_approvers
from grantflow.services.access import requestable
from grantflow.services.access.eligibility_cache import Criteria
from grantflow.services.access.flow_views import resource_view
from grantflow.services.errors import NotFound
from grantflow.services.identity.approver_names import ApproverNames
from grantflow.store.db import read_transaction
from grantflow.store.models import Integration, Resource, User

View = dict[str, Any]


def _item(
    resource: Resource, flows: list[FlowView], namer: ApproverNames, integration_name: str
) -> View:
    view = resource_view(resource)
    options = [
        {
            "flow_id": f.id,
            "flow_name": f.name,
            "permissions": f.definition.permissions.get(resource.type, []),
            "approval": f.definition.approval.mode.value,
            "approvers": namer.of_sets(resolve_approvers(f, [view])),
            "max_duration_seconds": f.definition.max_duration_seconds,
            "justification_required": f.definition.justification_required,
        }
        for f in flows
    ]
    return {
        "resource_id": resource.id,
        "integration_id": resource.integration_id,
        "integration_name": integration_name,
        "type": resource.type,
        "name": resource.name,
        "aws_id": resource.aws_id,
        "account_id": resource.account_id,
        "region": resource.region,
        "tags": {str(k): str(v) for k, v in (resource.tags or {}).items()},
        "flows": options,
    }


def page(
    sessions: sessionmaker[Session], user_id: str, criteria: Criteria, offset: int, limit: int
) -> tuple[int, list[View]]:
    """How many resources ``user_id`` may request (matching ``criteria``) and ``limit`` of
    them from ``offset``."""
    with read_transaction(sessions) as session:
        me = session.get(User, user_id)
        if me is None:
            raise NotFound("user not found")
        flows = requestable.flows_for(session, me)
        total, rows = requestable.page(session, flows, criteria, offset, limit)
        namer = ApproverNames(session)
        names = {i.id: i.name for i in session.scalars(select(Integration))}
        items = [_item(resource, matching, namer, names.get(resource.integration_id, ""))
                 for resource, matching in rows]  # fmt: skip
    return total, items
