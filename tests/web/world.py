"""Rows a browser test needs, written straight into the live server's database (as a sync and
earlier decisions would have left them): an integration with one account, a permission and a
flow, and access requests in any state. No AWS is involved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from grantflow.domain.flows import FlowDefinition
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import (
    AccessFlow,
    AccessRequest,
    Grant,
    Group,
    GroupMembership,
    Integration,
    Permission,
    Resource,
    SyncRun,
)
from grantflow.store.types import utcnow
from tests.fixtures.integrations import integration_config
from tests.fixtures.live import LiveServer

CONFIG = integration_config()


@dataclass(frozen=True)
class Seeded:
    integration_id: str
    resource_id: str
    flow_id: str


def integration(
    live: LiveServer,
    name: str,
    account: str = "111111111111",
    approvers: dict[str, Any] | None = None,
    max_extensions: int = 0,
    permissions: tuple[str, ...] = ("ReadOnly",),
) -> Seeded:
    """An active integration (its connector made through the API) with account ``account``,
    permission ReadOnly and a flow "<name> flow" that everyone may use."""
    with live.http() as c:
        r = c.post("/api/v1/connectors", json={"name": f"{name}-conn", "kind": "self_hosted"})
        assert r.status_code == 201, r.text
        connector_id = r.json()["id"]
    approval = approvers or {"mode": "auto"}
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            integ = Integration(
                name=name, type="aws-organization", connector_id=connector_id, status="active",
                resource_types=["aws-account"], config=CONFIG, last_sync_at=utcnow(),
                next_sync_at=utcnow() + timedelta(days=1),
                facts={"organization_id": "o-web", "identity_store_id": "d-web"},
            )  # fmt: skip
            session.add(integ)
            session.flush()
            resource = Resource(
                integration_id=integ.id, type="aws-account", aws_id=account, name="prod",
                account_id=account, ou_path=["r-root"], attributes={"status": "ACTIVE"},
            )  # fmt: skip
            definition = FlowDefinition.model_validate({
                "requestors": {"everyone": True},
                "scope": {"resource_types": ["aws-account"]},
                "permissions": {"aws-account": ["ReadOnly"]},
                "approval": approval,
                "max_extensions": max_extensions,
            })  # fmt: skip
            flow = AccessFlow(name=f"{name} flow", integration_id=integ.id,
                              definition=definition.model_dump(mode="json"))  # fmt: skip
            session.add_all(
                [
                    resource,
                    flow,
                    *(
                        Permission(integration_id=integ.id, resource_type="aws-account", name=p)
                        for p in permissions
                    ),
                ]
            )
            session.flush()
            return Seeded(integ.id, resource.id, flow.id)
    finally:
        engine.dispose()


def access_request(
    live: LiveServer, seeded: Seeded, requester_id: str, state: str, **fields: Any
) -> str:
    """A request of ``requester_id`` in ``state`` (with ``fields`` such as expires_at,
    ended_at, end_reason, approval), with one grant on the seeded account."""
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            request = AccessRequest(
                requester_id=requester_id, integration_id=seeded.integration_id,
                flow_id=seeded.flow_id, resource_type="aws-account", permission="ReadOnly",
                duration_seconds=7200, justification="INC-1", state=state, **fields,
            )  # fmt: skip
            session.add(request)
            session.flush()
            grant_state = {"revoked": "revoked", "expired": "revoked", "granted": "granted"}
            session.add(Grant(request_id=request.id, resource_id=seeded.resource_id,
                              state=grant_state.get(state, "pending"),
                              expires_at=fields.get("expires_at"),
                              revoked_at=fields.get("ended_at")))  # fmt: skip
            return request.id
    finally:
        engine.dispose()


def hours(n: float) -> datetime:
    return utcnow() + timedelta(hours=n)


def group(live: LiveServer, name: str, member_ids: list[str]) -> str:
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            row = Group(name=name)
            session.add(row)
            session.flush()
            session.add_all([GroupMembership(group_id=row.id, user_id=u) for u in member_ids])
            return row.id
    finally:
        engine.dispose()


def sync_run(live: LiveServer, seeded: Seeded, counts: dict[str, Any]) -> str:
    """A finished sync run of the seeded integration with ``counts``."""
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            run = SyncRun(
                integration_id=seeded.integration_id, generation=1, trigger="manual",
                state="succeeded", finished_at=utcnow(), counts=counts, accounts_done=1,
                accounts_total=1,
            )  # fmt: skip
            session.add(run)
            session.flush()
            return run.id
    finally:
        engine.dispose()
