"""Policy changes reach in-flight requests (issue 15, item 5), through HTTP on both backends.

Approve, start granting and extend re-check the request's flow, integration and requester;
deleting or disabling a flow or an integration fails its pending requests and, with
``revoke_live``, revokes its live grants through the normal revocation path. No AWS: the
integration is rows as a sync leaves them, and the test plays the connector over its protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessRequest,
    AuditEvent,
    DirectoryPrincipal,
    Group,
    GroupMembership,
    Integration,
    Permission,
    Resource,
    User,
)
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_config

STORE = "d-9067policy"
INSTANCE = "arn:aws:sso:::instance/ssoins-policy"
PS_ARN = "arn:aws:sso:::permissionSet/ssoins-policy/ps-readonly"
CONFIG = integration_config(sso_portal=f"https://{STORE}.awsapps.com/start")


@dataclass
class World:
    api: Api
    ids: dict[str, str]
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.api.client.app.state.ctx.sessions  # type: ignore[attr-defined,no-any-return]

    def call(self, who: str, method: str, path: str, **kw: Any) -> Any:
        return self.api.client.request(method, path, headers=self.headers[who], **kw)

    def request(self, request_id: str) -> dict[str, Any]:
        r = self.call("admin", "GET", f"/api/v1/access-requests/{request_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def flow_definition(self, **changes: Any) -> dict[str, Any]:
        definition: dict[str, Any] = {
            "requestors": {"group_ids": [self.ids["dev"]]},
            "scope": {"resource_types": ["aws-account"]},
            "permissions": {"aws-account": ["ReadOnly"]},
            "approval": {"mode": "any",
                         "groups": [{"kind": "users", "user_ids": [self.ids["abe"]]}]},
            "max_duration_seconds": 3600,
            "default_duration_seconds": 1800,
            "max_extensions": 2,
        }  # fmt: skip
        definition.update(changes)
        return definition

    def patch_flow(self, revoke_live: bool = False, **body: Any) -> Any:
        params = {"revoke_live": "true"} if revoke_live else {}
        return self.call("admin", "PATCH", f"/api/v1/access-flows/{self.ids['flow']}",
                         json=body, params=params)  # fmt: skip

    def submit(self) -> str:
        body = {"resource_ids": [self.ids["account"]], "permission": "ReadOnly",
                "duration_seconds": 3600, "justification": "INC-1"}  # fmt: skip
        r = self.call("rita", "POST", "/api/v1/access-requests", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "pending"
        return str(r.json()["id"])

    def approve(self, request_id: str) -> Any:
        return self.call("abe", "POST", f"/api/v1/access-requests/{request_id}/approve",
                         json={"reason": "ok"})  # fmt: skip

    def run_connector(self, job_type: str, result: dict[str, Any]) -> int:
        """Lease this connector's jobs and complete those of ``job_type``; how many."""
        cid = self.ids["connector"]
        r = self.call("connector", "POST", f"/api/v1/connectors/{cid}/jobs/lease",
                      json={"wait_seconds": 0, "max_jobs": 20})  # fmt: skip
        assert r.status_code == 200, r.text
        done = 0
        for job in r.json()["jobs"]:
            if job["type"] != job_type:
                continue
            done_path = f"/api/v1/connectors/{cid}/jobs/{job['id']}/complete"
            r = self.call("connector", "POST", done_path,
                          json={"lease_id": job["lease_id"], "result": result})  # fmt: skip
            assert r.status_code == 200, r.text
            done += 1
        return done

    def granted(self) -> str:
        """A request approved, granted by the connector, and live."""
        request_id = self.submit()
        r = self.approve(request_id)
        assert (r.status_code, r.json()["state"]) == (200, "granting"), r.text
        assert self.run_connector("grant", {"handle": {"pre_existing": False}}) == 1
        assert self.request(request_id)["state"] == "granted"
        return request_id

    def policy_failures(self, request_id: str) -> list[AuditEvent]:
        with transaction(self.sessions) as session:
            query = select(AuditEvent).where(
                AuditEvent.target_id == request_id, AuditEvent.action == "request.policy_failed"
            )
            return list(session.scalars(query))  # fmt: skip

    def set_row(self, model: type[Any], row_id: str, **values: Any) -> None:
        """A change made outside this API (a sync's outcome, or a change from before)."""
        with transaction(self.sessions) as session:
            row = session.get(model, row_id)
            for key, value in values.items():
                setattr(row, key, value)


def _world(api: Api) -> World:
    r = api.client.post("/api/v1/connectors", json={"name": "policy"}, headers=api.as_admin())
    assert r.status_code == 201, r.text
    world = World(api, {"connector": r.json()["id"]})
    world.headers = {"admin": api.as_admin(),
                     "connector": {"Authorization": f"Bearer {r.json()['token']}"}}  # fmt: skip
    with transaction(world.sessions) as session:
        facts = {"identity_store_id": STORE, "instance_arn": INSTANCE}
        integ = Integration(name="policy-org", type="aws-organization",
                            connector_id=world.ids["connector"], status="active",
                            resource_types=["aws-account"], config=CONFIG, facts=facts)  # fmt: skip
        session.add(integ)
        session.flush()
        account = Resource(integration_id=integ.id, type="aws-account", aws_id="111122223333",
                           name="prod", account_id="111122223333", ou_path=["r-root"])  # fmt: skip
        dev, other = Group(name="policy-dev"), Group(name="policy-other")
        session.add_all([account, dev, other, Permission(
            integration_id=integ.id, resource_type="aws-account", name="ReadOnly",
            aws_ref=PS_ARN)])  # fmt: skip
        session.flush()
        world.ids.update(integration=integ.id, account=account.id, dev=dev.id, other=other.id)
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
    body = {"name": "dev read-only", "integration_id": world.ids["integration"],
            "definition": world.flow_definition()}  # fmt: skip
    r = world.call("admin", "POST", "/api/v1/access-flows", json=body)
    assert r.status_code == 201, r.text
    world.ids["flow"] = r.json()["id"]
    return world


def _refused(response: Any, *words: str) -> str:
    assert response.status_code == 409, response.text
    message = str(response.json()["error"]["message"])
    assert all(w in message for w in words), message
    return message


# ---- approve --------------------------------------------------------------------------


def test_deleting_the_flow_fails_its_pending_request_and_approval_is_refused(api: Api) -> None:
    w = _world(api)
    request_id = w.submit()
    r = w.call("admin", "DELETE", f"/api/v1/access-flows/{w.ids['flow']}")
    assert r.status_code == 200, r.text
    assert r.json()["withdrawal"]["failed_requests"] == [request_id]
    failed = w.request(request_id)
    assert failed["state"] == "failed"
    assert "access flow 'dev read-only' was deleted" in failed["failure_reason"]
    (event,) = w.policy_failures(request_id)
    assert (event.actor_type, event.data["check"]) == ("user", "flow_deleted")
    _refused(w.approve(request_id), "already failed")
    assert w.run_connector("grant", {}) == 0


def test_approving_a_request_whose_flow_is_gone_fails_it_with_the_reason(api: Api) -> None:
    w = _world(api)
    request_id = w.submit()
    # a flow deleted before deletions failed their requests left it pending, without a flow
    w.set_row(AccessRequest, request_id, flow_id=None)
    _refused(w.approve(request_id), "request is now failed", "access flow that allowed this "
             "request was deleted")  # fmt: skip
    after = w.request(request_id)
    assert (after["state"], after["approvals"]) == ("failed", [])
    (event,) = w.policy_failures(request_id)
    assert (event.actor_id, event.data["check"]) == (w.ids["abe"], "flow_deleted")
    assert w.run_connector("grant", {}) == 0


def test_disabling_the_integration_fails_its_requests_and_approval_is_refused(
    api: Api,
) -> None:
    w = _world(api)
    request_id = w.submit()
    r = w.call("admin", "POST", f"/api/v1/integrations/{w.ids['integration']}/disable")
    assert r.status_code == 200, r.text
    assert r.json()["withdrawal"]["failed_requests"] == [request_id]
    assert "integration 'policy-org' was disabled" in w.request(request_id)["failure_reason"]
    _refused(w.approve(request_id), "already failed")
    assert w.run_connector("grant", {}) == 0


def test_approval_of_a_request_of_a_disabled_integration_is_refused(api: Api) -> None:
    w = _world(api)
    request_id = w.submit()
    w.set_row(Integration, w.ids["integration"], enabled=False)  # disabled outside this API
    _refused(w.approve(request_id), "integration 'policy-org' is disabled")
    assert w.request(request_id)["state"] == "failed"
    assert w.run_connector("grant", {}) == 0


def test_an_integration_in_error_refuses_approval_until_it_is_healthy(api: Api) -> None:
    w = _world(api)
    request_id = w.submit()
    w.set_row(Integration, w.ids["integration"], status="error", status_message="AccessDenied")
    _refused(w.approve(request_id), "cannot approve now", "'policy-org' is in error")
    assert w.request(request_id)["state"] == "pending"  # nothing was written
    w.set_row(Integration, w.ids["integration"], status="active", status_message=None)
    r = w.approve(request_id)
    assert (r.status_code, r.json()["state"]) == (200, "granting"), r.text


def test_a_requester_removed_from_the_flow_is_refused_at_approval(api: Api) -> None:
    w = _world(api)
    request_id = w.submit()
    r = w.patch_flow(definition=w.flow_definition(requestors={"group_ids": [w.ids["other"]]}))
    assert r.status_code == 200, r.text
    assert w.request(request_id)["state"] == "pending"  # a definition change waits for approve
    _refused(w.approve(request_id), "no longer lists rita as a requestor")
    failed = w.request(request_id)
    assert failed["state"] == "failed" and "rita" in failed["failure_reason"]
    (event,) = w.policy_failures(request_id)
    assert event.data["check"] == "not_a_requestor"
    assert w.run_connector("grant", {}) == 0


def test_a_lowered_maximum_refuses_the_approval_of_a_longer_request(api: Api) -> None:
    w = _world(api)
    request_id = w.submit()  # 3600 seconds
    r = w.patch_flow(definition=w.flow_definition(max_duration_seconds=1800))
    assert r.status_code == 200, r.text
    _refused(w.approve(request_id), "now allows at most 1800 seconds")
    assert w.request(request_id)["state"] == "failed"


def test_an_unchanged_policy_still_approves(api: Api) -> None:
    w = _world(api)
    request_id = w.submit()
    r = w.approve(request_id)
    assert (r.status_code, r.json()["state"]) == (200, "granting"), r.text
    assert w.policy_failures(request_id) == []


# ---- start granting -------------------------------------------------------------------


def test_auto_approval_does_not_grant_through_an_integration_in_error(api: Api) -> None:
    w = _world(api)
    r = w.patch_flow(definition=w.flow_definition(approval={"mode": "auto"}))
    assert r.status_code == 200, r.text
    w.set_row(Integration, w.ids["integration"], status="error", status_message="AccessDenied")
    body = {"resource_ids": [w.ids["account"]], "permission": "ReadOnly"}
    r = w.call("rita", "POST", "/api/v1/access-requests", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "failed"
    assert "not granted: integration 'policy-org' is in error" in r.json()["failure_reason"]
    assert w.run_connector("grant", {}) == 0


# ---- extend ---------------------------------------------------------------------------


def test_a_lowered_maximum_duration_refuses_the_extension(api: Api) -> None:
    w = _world(api)
    request_id = w.granted()  # for 3600 seconds
    path = f"/api/v1/access-requests/{request_id}/extend"
    r = w.call("rita", "POST", path, json={"seconds": 600})
    assert r.status_code == 200, r.text  # the policy allows it
    expires = r.json()["expires_at"]
    r = w.patch_flow(definition=w.flow_definition(max_duration_seconds=1800,
                                                  default_duration_seconds=600))  # fmt: skip
    assert r.status_code == 200, r.text
    _refused(w.call("rita", "POST", path, json={"seconds": 600}),
             "cannot extend", "now allows at most 1800 seconds")  # fmt: skip
    after = w.request(request_id)
    assert (after["state"], after["expires_at"]) == ("granted", expires)


def test_a_requester_removed_from_the_flow_cannot_extend(api: Api) -> None:
    w = _world(api)
    request_id = w.granted()
    r = w.patch_flow(definition=w.flow_definition(requestors={"user_ids": [w.ids["abe"]]}))
    assert r.status_code == 200, r.text
    r = w.call("rita", "POST", f"/api/v1/access-requests/{request_id}/extend",
               json={"seconds": 600})  # fmt: skip
    assert r.status_code == 403, r.text
    assert "no longer lists rita as a requestor" in r.json()["error"]["message"]


# ---- live grants when a flow or an integration goes ------------------------------------


def test_deleting_a_flow_with_revoke_live_revokes_its_live_grant(api: Api) -> None:
    w = _world(api)
    request_id = w.granted()
    pending_id = w.submit()
    r = w.call("admin", "DELETE", f"/api/v1/access-flows/{w.ids['flow']}",
               params={"revoke_live": "true"})  # fmt: skip
    assert r.status_code == 200, r.text
    withdrawal = r.json()["withdrawal"]
    assert (withdrawal["failed_requests"], withdrawal["revoking_requests"],
            withdrawal["live_requests"]) == ([pending_id], [request_id], [])  # fmt: skip
    assert w.request(request_id)["state"] == "revoking"
    assert w.run_connector("revoke", {"status": "revoked"}) == 1
    ended = w.request(request_id)
    assert (ended["state"], [g["state"] for g in ended["grants"]]) == ("revoked", ["revoked"])
    with transaction(w.sessions) as session:
        query = select(AuditEvent.data).where(
            AuditEvent.target_id == request_id, AuditEvent.action == "request.revoke"
        )
        (data,) = session.scalars(query).all()  # fmt: skip
    assert data["reason"] == "access flow 'dev read-only' was deleted"


def test_deleting_a_flow_without_revoke_live_says_what_is_left_and_how(api: Api) -> None:
    w = _world(api)
    request_id = w.granted()
    r = w.call("admin", "DELETE", f"/api/v1/access-flows/{w.ids['flow']}")
    assert r.status_code == 200, r.text
    withdrawal = r.json()["withdrawal"]
    assert (withdrawal["live_requests"], withdrawal["live_grants"]) == ([request_id], 1)
    assert "1 live grant(s) of 1 request(s)" in withdrawal["message"]
    assert "/api/v1/access-requests/<id>/revoke" in withdrawal["message"]
    assert w.request(request_id)["state"] == "granted"
    assert w.run_connector("revoke", {"status": "revoked"}) == 0


def test_disabling_a_flow_then_revoke_live_revokes_its_live_grant(api: Api) -> None:
    w = _world(api)
    request_id = w.granted()
    r = w.patch_flow(enabled=False)
    assert r.status_code == 200, r.text
    assert r.json()["withdrawal"]["live_requests"] == [request_id]
    assert "revoke_live=true" in r.json()["withdrawal"]["message"]
    r = w.patch_flow(revoke_live=True, enabled=False)
    assert r.status_code == 200, r.text
    assert r.json()["withdrawal"]["revoking_requests"] == [request_id]
    assert w.run_connector("revoke", {"status": "revoked"}) == 1
    assert w.request(request_id)["state"] == "revoked"


def test_revoke_live_on_an_enabled_flow_is_refused(api: Api) -> None:
    w = _world(api)
    r = w.patch_flow(revoke_live=True, description="x")
    assert (r.status_code, r.json()["error"]["field"]) == (422, "revoke_live")


def test_disabling_an_integration_with_revoke_live_revokes_its_live_grant(api: Api) -> None:
    w = _world(api)
    request_id = w.granted()
    path = f"/api/v1/integrations/{w.ids['integration']}/disable"
    r = w.call("admin", "POST", path, params={"revoke_live": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["withdrawal"]["revoking_requests"] == [request_id]
    assert w.run_connector("revoke", {"status": "revoked"}) == 1
    assert w.request(request_id)["state"] == "revoked"


def test_deleting_an_integration_fails_its_requests_and_revokes_live_only_when_asked(
    api: Api,
) -> None:
    w = _world(api)
    live_id = w.granted()
    pending_id = w.submit()
    path = f"/api/v1/integrations/{w.ids['integration']}"
    _refused(w.call("admin", "DELETE", path), "1 grant(s)", "revoke_live=true")
    assert w.request(pending_id)["state"] == "pending"  # refused: nothing changed
    r = w.call("admin", "DELETE", path, params={"revoke_live": "true"})
    assert r.status_code == 204, r.text
    failed = w.request(pending_id)
    assert failed["state"] == "failed"
    assert "integration 'policy-org' was deleted" in failed["failure_reason"]
    assert w.request(live_id)["state"] == "revoking"
    assert w.run_connector("revoke", {"status": "revoked"}) == 1
    assert w.request(live_id)["state"] == "revoked"
    kept = w.call("admin", "GET", path).json()  # its requests' history refers to it
    assert (kept["enabled"], kept["status"]) == (False, "disabled")
