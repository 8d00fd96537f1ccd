"""One person, one vote: Grantflow users that are one person (they share an Identity Center
user, or an email with it or with each other) neither approve each other's requests nor count
twice.

The identity store holds ``pat``, ``pam`` and ``vic`` (each with an email at corp.example),
``olga``, ``rita`` and ``walt``. Before its sync Grantflow had a local ``pam`` without an
email (it links to the identity store's ``pam`` by username); after it, an admin made second
local accounts with the same emails: ``pat.alt`` (an admin, so it sees every request),
``pam.alt`` and ``vic2``. Before the fix, ``pat.alt`` was mapped to the same Identity Center
user as ``pat`` and approved ``pat``'s request, and ``vic`` + ``vic2`` were two approvals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.flows import ApprovalMode, ApproverSet, FlowDefinition
from grantflow.domain.inventory import DirectorySnapshot, DirectoryUser
from grantflow.domain.request_states import Vote, approval_complete
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.services.directory import identity_store
from grantflow.services.directory import people as directory
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessFlow,
    Connector,
    DirectoryPrincipal,
    Integration,
    Permission,
    Resource,
    User,
)
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_config

STORE = "d-votes"
ACCOUNT = "111111111111"
PS = "arn:aws:sso:::permissionSet/ssoins-1/ps-"


@dataclass
class World:
    api: Api
    users: dict[str, str]  # username -> id
    tokens: dict[str, str]
    resource_id: str

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.api.client.post(path, json=body, headers=headers)

    def request(self, who: str, permission: str) -> Any:
        body = {"resource_ids": [self.resource_id], "permission": permission}
        return self.post(who, "/api/v1/access-requests", body)

    def approve(self, who: str, request_id: str) -> Any:
        return self.post(who, f"/api/v1/access-requests/{request_id}/approve", {})

    def state(self, request_id: str) -> str:
        got = self.api.client.get(
            f"/api/v1/access-requests/{request_id}", headers=self.api.as_admin()
        )
        return str(got.json()["state"])


def _principal(name: str, email: str | None = None) -> DirectoryUser:
    return DirectoryUser(identity_store_user_id=f"p-{name}", username=name, email=email)


def _flow(integration_id: str, name: str, permission: str, approvers: list[str],
          required: int) -> AccessFlow:  # fmt: skip
    definition = FlowDefinition.model_validate({
        "requestors": {"everyone": True},
        "scope": {"resource_types": ["aws-account"]},
        "permissions": {"aws-account": [permission]},
        "approval": {"mode": "any", "groups": [
            {"kind": "users", "user_ids": approvers, "required": required}]},
    })  # fmt: skip
    return AccessFlow(name=name, integration_id=integration_id,
                      definition=definition.model_dump(mode="json"))  # fmt: skip


def _seed(session: Session) -> tuple[str, str]:
    session.add(Connector(id="gfc-votes", name="votes", kind="managed", token_hash="v" * 64,
                          token_prefix="gf_con_v"))  # fmt: skip
    session.flush()
    integ = Integration(
        name="Org", type="aws-organization", connector_id="gfc-votes", status="active",
        resource_types=["aws-account"],
        facts={"instance_arn": "arn:aws:sso:::instance/ssoins-1", "identity_store_id": STORE},
        config=integration_config(sso_portal="https://d-votes.awsapps.com/start"),
    )  # fmt: skip
    session.add(integ)
    session.flush()
    resource = Resource(integration_id=integ.id, type="aws-account", aws_id=ACCOUNT,
                        name="prod", account_id=ACCOUNT)  # fmt: skip
    session.add(resource)
    for name in ("ReadOnlyAccess", "AdministratorAccess"):
        session.add(Permission(integration_id=integ.id, resource_type="aws-account", name=name,
                               aws_ref=PS + name))  # fmt: skip
    session.flush()
    return integ.id, resource.id


def _world(api: Api) -> World:
    sessions: sessionmaker[Session] = api.client.app.state.ctx.sessions  # type: ignore[attr-defined]
    with transaction(sessions) as session:
        integration_id, resource_id = _seed(session)
        session.add(User(username="pam", source="local"))
        session.flush()
        snapshot = DirectorySnapshot(
            identity_store_id=STORE, instance_arn="arn:aws:sso:::instance/ssoins-1", groups=[],
            users=[_principal(name, f"{name}@corp.example") for name in ("pat", "pam", "vic")]
                  + [_principal("olga"), _principal("rita"), _principal("walt")],
        )  # fmt: skip
        identity_store.apply_identity_store_snapshot(session, snapshot, SYSTEM)
        for name, email, role in (
            ("pat.alt", "PAT@corp.example", "admin"),
            ("pam.alt", "pam@corp.example", "member"),
            ("vic2", "Vic@corp.example", "member"),
        ):
            directory.create_local_user(session, name, email, "", "x" * 16, role, SYSTEM)
        users = {u.username: u.id for u in session.scalars(select(User))}
        tokens = {
            name: create_personal_token(session, session.get_one(User, uid), "t", SYSTEM).plaintext
            for name, uid in users.items()
        }
        session.add_all([
            _flow(integration_id, "read-only", "ReadOnlyAccess",
                  [users["pat.alt"], users["pam.alt"], users["olga"]], 1),
            _flow(integration_id, "two approvals", "AdministratorAccess",
                  [users["vic"], users["vic2"], users["walt"]], 2),
        ])  # fmt: skip
    return World(api, users, tokens, resource_id)


def _links(api: Api) -> set[tuple[str, str | None, str | None]]:
    sessions: sessionmaker[Session] = api.client.app.state.ctx.sessions  # type: ignore[attr-defined]
    with transaction(sessions) as session:
        return {
            (p.principal_id, p.user_id, p.matched_by)
            for p in session.scalars(select(DirectoryPrincipal))
        }


def test_accounts_of_one_identity_center_user_do_not_approve_each_other(api: Api) -> None:
    w = _world(api)
    links = _links(api)
    assert {("p-pat", w.users["pat"], "owner"), ("p-pam", w.users["pam"], "username")} <= links
    assert not {x for x in links if x[1] in {w.users["pat.alt"], w.users["pam.alt"]}}
    detail = api.client.get(f"/api/v1/users/{w.users['pat.alt']}", headers=api.as_admin())
    assert detail.json()["aws"]["reason"] == "principal_taken"

    mine = w.request("pat", "ReadOnlyAccess")
    assert mine.status_code == 201, mine.text
    (named,) = mine.json()["approval"]["sets"]
    assert f"user:{w.users['pat.alt']}" not in named["principals"]  # not even listed
    refused = w.approve("pat.alt", mine.json()["id"])
    assert refused.status_code == 403, refused.text
    assert "one person" in refused.json()["error"]["message"]
    assert w.state(mine.json()["id"]) == "pending"
    theirs = w.request("pat.alt", "ReadOnlyAccess")  # no principal of its own: no grants
    assert (theirs.status_code, theirs.json()["error"]["field"]) == (422, "requester")
    assert w.approve("olga", mine.json()["id"]).status_code == 200
    assert w.state(mine.json()["id"]) != "pending"

    # pam has no email of its own: the email of the principal it is makes pam.alt the same
    hers = w.request("pam", "ReadOnlyAccess")
    assert hers.status_code == 201, hers.text
    (named,) = hers.json()["approval"]["sets"]
    assert f"user:{w.users['pam.alt']}" not in named["principals"]
    assert w.approve("pam.alt", hers.json()["id"]).status_code in {403, 404}
    assert w.state(hers.json()["id"]) == "pending"


def test_two_accounts_of_one_person_count_once(api: Api) -> None:
    w = _world(api)
    r = w.request("rita", "AdministratorAccess")
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    assert w.approve("vic", request_id).status_code == 200
    again = w.approve("vic2", request_id)  # Vic's other account (same email)
    assert again.status_code == 409, again.text
    assert "one person, one vote" in again.json()["error"]["message"]
    assert w.state(request_id) == "pending"
    assert w.approve("walt", request_id).status_code == 200
    assert w.state(request_id) != "pending"


def test_votes_count_by_person() -> None:
    both = ApproverSet("named users", "named in the flow", ("user:v1", "user:v2", "user:w"), 2)
    one_person = [Vote("v1", frozenset(), True, "vic"), Vote("v2", frozenset(), True, "vic")]
    assert not approval_complete(ApprovalMode.ANY, (both,), one_person)
    two_people = [*one_person, Vote("w", frozenset(), True, "walt")]
    assert approval_complete(ApprovalMode.ANY, (both,), two_people)
    unknown = [Vote("v1", frozenset(), True), Vote("v2", frozenset(), True)]
    assert approval_complete(ApprovalMode.ANY, (both,), unknown)  # without persons: by account
