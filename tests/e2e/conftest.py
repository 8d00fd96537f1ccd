"""An emulated organization with Grantflow deployed into it, and a live server whose managed
connector runs against it — the demo's setup, for end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from grantflow.aws.registry import REGISTRY
from grantflow.demo.deploy import (
    create_connector_role,
    deploy_member_roles,
    deploy_stack,
    management_session,
    stack_set_targets,
)
from grantflow.demo.moto_server import MotoServer, free_loopback_port
from grantflow.demo.org_summary import OrgSummary
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import User
from tests.fixtures.integrations import integration_body
from tests.fixtures.live import LiveServer


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@dataclass
class Deployed:
    live: LiveServer
    org: OrgSummary
    moto: MotoServer
    connector_id: str
    management_role_arn: str

    def admin(self) -> httpx.Client:
        return self.live.http()

    def token_for(self, username: str) -> str:
        engine = build_engine(self.live.db_url)
        try:
            with transaction(session_factory(engine)) as session:
                from sqlalchemy import select

                user = session.scalars(select(User).where(User.username == username)).one()
                return create_personal_token(session, user, "test", SYSTEM).plaintext
        finally:
            engine.dispose()

    def as_user(self, username: str) -> httpx.Client:
        return self.live.http(self.token_for(username))

    def integration_body(self, **config: Any) -> dict[str, Any]:
        """Every resource type, in the emulated organization."""
        org = {
            "sso_region": self.org.sso_region,
            "sso_portal": f"https://{self.org.identity_store_id}.awsapps.com/start",
            "management_role_arn": self.management_role_arn,
            "exclude_ou_ids": list(self.org.excluded_ou_ids),
            "sync_regions": list(self.org.regions),
        }
        return integration_body(
            self.connector_id, [rt.key for rt in REGISTRY], "Emulated Org", **{**org, **config}
        )

    def create_integration(self, **config: Any) -> dict[str, Any]:
        with self.admin() as c:
            r = c.post("/api/v1/integrations", json=self.integration_body(**config))
            assert r.status_code == 201, r.text
            return dict(r.json())

    def wait_status(self, integration_id: str, statuses: set[str], timeout: float = 120) -> dict:
        with self.admin() as c:
            return dict(
                wait_for(
                    lambda: (
                        (got := c.get(f"/api/v1/integrations/{integration_id}").json())["status"]
                        in statuses
                        and got
                    ),
                    timeout,
                    f"integration status in {statuses}",
                )
            )


@pytest.fixture
def deployed(
    small_org: OrgSummary, aws: MotoServer, db_url: str, tmp_path: Path
) -> Iterator[Deployed]:
    session = management_session(aws.endpoint)
    connector_role = create_connector_role(session)
    port = free_loopback_port()
    live = LiveServer(
        url=f"http://127.0.0.1:{port}", port=port, db_url=db_url, tmp=tmp_path,
        extra_env={"GRANTFLOW_MANAGED_CONNECTOR": "true",
                   "GRANTFLOW_CONNECTOR_ROLE_ARN": connector_role},
    )  # fmt: skip
    live.start()
    try:
        with live.http() as c:
            managed = [x for x in c.get("/api/v1/connectors").json() if x["kind"] == "managed"]
        connector_id = managed[0]["id"]
        _, role_arn = deploy_stack(session, connector_id, connector_role, small_org.root_id)
        targets = stack_set_targets(small_org.root_id, [(o.id, o.path) for o in small_org.ous])
        deploy_member_roles(session, role_arn, targets, ["us-east-1"])
        yield Deployed(live, small_org, aws, connector_id, role_arn)
    finally:
        live.stop_all()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end scenarios run on SQLite; those marked ``both_backends`` also on PostgreSQL
    (the store, API and connector-protocol suites cover PostgreSQL exhaustively)."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_pg = callspec is not None and callspec.params.get("db_url") == "postgresql"
        in_e2e = "/tests/e2e/" in str(item.fspath)
        if in_e2e and on_pg and item.get_closest_marker("both_backends") is None:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
