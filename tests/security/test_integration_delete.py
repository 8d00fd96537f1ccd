"""Deleting an integration never answers 500 (issue 16, item 8), through HTTP on both backends.

Semantics: its pending requests fail, live grants need ``revoke_live`` (409 otherwise), its
access flows are deleted with it through the flow-deletion path (audited), and the history is
kept (an integration that requests refer to stays, disabled). Before, an integration with a
flow failed on the ``access_flows.integration_id`` foreign key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessFlow,
    AuditEvent,
    DirectoryPrincipal,
    Group,
    GroupMembership,
    Integration,
    Permission,
    Resource,
    SyncRun,
    User,
)
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_config

STORE = "d-9067delete"
CONFIG = integration_config(sso_portal=f"https://{STORE}.awsapps.com/start")


@dataclass
class World:
    api: Api
    ids: dict[str, str]
    headers: dict[str, dict[str, str]]

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.api.client.app.state.ctx.sessions  # type: ignore[attr-defined,no-any-return]

    @property
    def path(self) -> str:
        return f"/api/v1/integrations/{self.ids['integration']}"

    def call(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.client.request(method, path, headers=self.headers[who], **kw)

    def add_flow(self, name: str) -> str:
        definition = {
            "requestors": {"group_ids": [self.ids["dev"]]},
            "scope": {"resource_types": ["aws-account"]},
            "permissions": {"aws-account": ["ReadOnly"]},
            "approval": {"mode": "any",
                         "groups": [{"kind": "users", "user_ids": [self.ids["abe"]]}]},
            "max_duration_seconds": 3600,
            "default_duration_seconds": 1800,
        }  # fmt: skip
        body = {"name": name, "integration_id": self.ids["integration"], "definition": definition}
        r = self.call("admin", "POST", "/api/v1/access-flows", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def submit(self) -> str:
        body = {"resource_ids": [self.ids["account"]], "permission": "ReadOnly",
                "duration_seconds": 3600, "justification": "INC-7"}  # fmt: skip
        r = self.call("rita", "POST", "/api/v1/access-requests", json=body)
        assert (r.status_code, r.json().get("state")) == (201, "pending"), r.text
        return str(r.json()["id"])

    def granted(self) -> str:
        request_id = self.submit()
        r = self.call("abe", "POST", f"/api/v1/access-requests/{request_id}/approve",
                      json={"reason": "ok"})  # fmt: skip
        assert (r.status_code, r.json()["state"]) == (200, "granting"), r.text
        cid = self.ids["connector"]
        r = self.call("connector", "POST", f"/api/v1/connectors/{cid}/jobs/lease",
                      json={"wait_seconds": 0, "max_jobs": 20})  # fmt: skip
        assert r.status_code == 200, r.text
        for job in r.json()["jobs"]:
            if job["type"] == "grant":
                r = self.call("connector", "POST",
                              f"/api/v1/connectors/{cid}/jobs/{job['id']}/complete",
                              json={"lease_id": job["lease_id"],
                                    "result": {"handle": {"pre_existing": False}}})  # fmt: skip
                assert r.status_code == 200, r.text
        assert self.request(request_id)["state"] == "granted"
        return request_id

    def request(self, request_id: str) -> dict[str, Any]:
        r = self.call("admin", "GET", f"/api/v1/access-requests/{request_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def events(self, action: str, target_id: str) -> list[dict[str, Any]]:
        with transaction(self.sessions) as session:
            query = select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.target_id == target_id
            )
            return [dict(e.data) for e in session.scalars(query)]

    def flows_left(self) -> list[str]:
        with transaction(self.sessions) as session:
            query = select(AccessFlow.name).where(
                AccessFlow.integration_id == self.ids["integration"]
            )
            return sorted(session.scalars(query))


def _world(api: Api) -> World:
    r = api.client.post("/api/v1/connectors", json={"name": "delete"}, headers=api.as_admin())
    assert r.status_code == 201, r.text
    world = World(api, {"connector": r.json()["id"]},
                  {"admin": api.as_admin(),
                   "connector": {"Authorization": f"Bearer {r.json()['token']}"}})  # fmt: skip
    with transaction(world.sessions) as session:
        facts = {"identity_store_id": STORE, "instance_arn": "arn:aws:sso:::instance/ssoins-del"}
        integ = Integration(name="delete-org", type="aws-organization",
                            connector_id=world.ids["connector"], status="active",
                            resource_types=["aws-account"], config=CONFIG, facts=facts)  # fmt: skip
        session.add(integ)
        session.flush()
        account = Resource(integration_id=integ.id, type="aws-account", aws_id="111122223333",
                           name="prod", account_id="111122223333", ou_path=["r-root"])  # fmt: skip
        dev = Group(name="delete-dev")
        run = SyncRun(integration_id=integ.id, generation=1, trigger="create", state="ok")
        session.add_all([account, dev, run, Permission(
            integration_id=integ.id, resource_type="aws-account", name="ReadOnly",
            aws_ref="arn:aws:sso:::permissionSet/ssoins-del/ps-ro")])  # fmt: skip
        session.flush()
        world.ids.update(integration=integ.id, account=account.id, dev=dev.id)
        for name in ("rita", "abe"):
            user = User(username=name, email=f"{name}@example.com", role="member")
            session.add(user)
            session.flush()
            session.add(DirectoryPrincipal(identity_store_id=STORE, principal_id=f"p-{name}",
                                           user_id=user.id, user_name=name,
                                           email=user.email, matched_by="admin"))  # fmt: skip
            token = create_personal_token(session, user, "test", SYSTEM).plaintext
            world.ids[name] = user.id
            world.headers[name] = {"Authorization": f"Bearer {token}"}
        session.add(GroupMembership(group_id=dev.id, user_id=world.ids["rita"]))
    return world


def test_an_integration_with_flows_and_no_requests_is_deleted_with_its_flows(api: Api) -> None:
    w = _world(api)
    flows = [w.add_flow("dev read-only"), w.add_flow("ops read-only")]
    r = w.call("admin", "DELETE", w.path)  # before: 500 on access_flows.integration_id
    assert r.status_code == 204, r.text
    assert w.call("admin", "GET", w.path).status_code == 404  # nothing referred to it
    for flow_id in flows:
        assert w.call("admin", "GET", f"/api/v1/access-flows/{flow_id}").status_code == 404
        (event,) = w.events("access_flow.deleted", flow_id)
        assert event["integration_deleted"] == w.ids["integration"]
    (deleted,) = w.events("integration.deleted", w.ids["integration"])
    assert [f["name"] for f in deleted["deleted_flows"]] == ["dev read-only", "ops read-only"]
    with transaction(w.sessions) as session:  # its inventory and sync history went with it
        assert session.scalar(select(Resource.id).where(Resource.id == w.ids["account"])) is None
        gone = SyncRun.integration_id == w.ids["integration"]
        assert session.scalar(select(SyncRun.id).where(gone)) is None


def test_an_integration_with_flows_and_requests_keeps_the_history(api: Api) -> None:
    w = _world(api)
    flow_id = w.add_flow("dev read-only")
    pending_id = w.submit()
    r = w.call("admin", "DELETE", w.path)
    assert r.status_code == 204, r.text
    failed = w.request(pending_id)  # the request's page still works and says why it ended
    assert failed["state"] == "failed"
    assert "integration 'delete-org' was deleted" in failed["failure_reason"]
    assert failed["integration_id"] == w.ids["integration"]
    kept = w.call("admin", "GET", w.path).json()
    assert (kept["enabled"], kept["status"]) == (False, "disabled")
    assert w.flows_left() == []
    assert w.call("admin", "GET", f"/api/v1/access-flows/{flow_id}").status_code == 404
    (event,) = w.events("access_flow.deleted", flow_id)
    assert event["before"]["name"] == "dev read-only"
    assert len(w.events("request.policy_failed", pending_id)) == 1  # failed once, not twice
    assert w.call("admin", "DELETE", w.path).status_code == 204  # again: harmless


def test_live_grants_refuse_the_delete_and_leave_the_flows(api: Api) -> None:
    w = _world(api)
    w.add_flow("dev read-only")
    live_id = w.granted()
    r = w.call("admin", "DELETE", w.path)
    assert r.status_code == 409, r.text
    assert "1 grant(s)" in r.json()["error"]["message"]
    assert w.flows_left() == ["dev read-only"]  # refused: nothing changed
    r = w.call("admin", "DELETE", w.path, params={"revoke_live": "true"})
    assert r.status_code == 204, r.text
    assert w.request(live_id)["state"] == "revoking"
    assert w.flows_left() == []


def test_the_semantics_are_in_the_openapi_description(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    text = spec["paths"]["/api/v1/integrations/{integration_id}"]["delete"]["description"]
    assert "access flows are deleted with it" in text
    assert "History is kept" in text
