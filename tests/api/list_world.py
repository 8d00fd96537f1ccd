"""A world of access requests for the list-page tests, grown a few rows at a time.

``abe`` approves through the group ``approvers``; ``rita`` asks a lot. Each ``grow(n)`` adds,
with their own users, resources, grants and approvals:
n pending requests of rita's, n pending requests of new members naming ``approvers``,
n decided ones (granted, each approved by a new member), n pending ones naming only a group
abe is not in, and n audit events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.flows import FlowDefinition
from grantflow.services.audit import trail as audit
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import transaction
from grantflow.store.models import (
    AccessFlow,
    AccessRequest,
    Approval,
    Connector,
    DirectoryPrincipal,
    Grant,
    Group,
    GroupMembership,
    Integration,
    Resource,
    User,
)
from grantflow.store.types import utcnow
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_config

STORE = "d-lists"
CONFIG = integration_config(sso_portal=f"https://{STORE}.awsapps.com/start")


@dataclass
class ListWorld:
    api: Api
    sessions: sessionmaker[Session]
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    grown: int = 0

    def get(self, who: str, path: str, **params: Any) -> Any:
        token = self.api.admin_token if who == "admin" else self.tokens[who]
        got = self.api.client.get(path, params=params,
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert got.status_code == 200, got.text
        return got

    def user(self, session: Session, name: str, email: str | None = None) -> User:
        user = User(username=name, email=email, display_name=name.title(), source="local")
        session.add(user)
        session.flush()
        return user

    def approval(self, *refs: str) -> dict[str, Any]:
        return {"mode": "any", "sets": [{"label": "named groups", "why": "named in the flow",
                                         "principals": list(refs), "required": 1}]}  # fmt: skip

    def request(self, session: Session, requester: str, state: str,
                approval: dict[str, Any], resources: int = 2) -> AccessRequest:  # fmt: skip
        created = utcnow() - timedelta(minutes=1000 - self.grown)
        row = AccessRequest(
            requester_id=requester, integration_id=self.ids["integration"],
            flow_id=self.ids["flow"], resource_type="aws-account", permission="ReadOnly",
            duration_seconds=3600, state=state, approval=approval, created_at=created,
            granted_at=created if state == "granted" else None,
            expires_at=created + timedelta(hours=1) if state == "granted" else None,
        )  # fmt: skip
        session.add(row)
        session.flush()
        for _ in range(resources):
            self.grown += 1
            account = f"{100000000000 + self.grown:012d}"
            resource = Resource(integration_id=self.ids["integration"], type="aws-account",
                                aws_id=account, name=f"acct-{self.grown}",
                                account_id=account)  # fmt: skip
            session.add(resource)
            session.flush()
            session.add(Grant(request_id=row.id, resource_id=resource.id,
                              state="granted" if state == "granted" else "pending",
                              handle={"permission_set_name": "ReadOnly"}))  # fmt: skip
        return row

    def grow(self, n: int) -> None:
        with transaction(self.sessions) as session:
            named = self.approval(f"group:{self.ids['approvers']}")
            elsewhere = self.approval(f"group:{self.ids['others']}")
            for _ in range(n):
                k = self.grown
                also = self.user(session, f"named{k}").id
                both = self.approval(f"group:{self.ids['approvers']}", f"user:{also}")
                self.request(session, self.ids["rita"], "pending", both)
                self.request(session, self.user(session, f"asker{k}").id, "pending", named)
                done = self.request(session, self.user(session, f"done{k}").id, "granted", named)
                voter = self.user(session, f"voter{k}")
                session.add(Approval(request_id=done.id, approver_id=voter.id,
                                     decision="approve"))  # fmt: skip
                self.request(session, self.user(session, f"other{k}").id, "pending", elsewhere)
                audit.record(session, SYSTEM, "sync.finished", "integration",
                             self.ids["integration"], {"n": k})  # fmt: skip


def build(api: Api) -> ListWorld:
    sessions: sessionmaker[Session] = api.client.app.state.ctx.sessions  # type: ignore[attr-defined]
    world = ListWorld(api, sessions)
    with transaction(sessions) as session:
        session.add(Connector(id="gfc-lists", name="lists", kind="managed", token_hash="l" * 64,
                              token_prefix="gf_con_l"))  # fmt: skip
        session.flush()
        integ = Integration(name="Lists", type="aws-organization", connector_id="gfc-lists",
                            status="active", resource_types=["aws-account"],
                            facts={"identity_store_id": STORE}, config=CONFIG)  # fmt: skip
        session.add(integ)
        session.flush()
        world.ids["integration"] = integ.id
        definition = FlowDefinition.model_validate({
            "requestors": {"everyone": True}, "scope": {"resource_types": ["aws-account"]},
            "permissions": {"aws-account": ["ReadOnly"]}, "max_extensions": 2,
            "approval": {"mode": "any", "groups": [{"kind": "users", "user_ids": ["x"]}]},
        })  # fmt: skip
        flow = AccessFlow(name="lists", integration_id=integ.id,
                          definition=definition.model_dump(mode="json"))  # fmt: skip
        session.add(flow)
        approvers, others = Group(name="approvers"), Group(name="others")
        session.add_all([approvers, others])
        session.flush()
        world.ids.update(flow=flow.id, approvers=approvers.id, others=others.id)
        for name in ("abe", "rita"):
            user = world.user(session, name, f"{name}@corp.example")
            world.ids[name] = user.id
            world.tokens[name] = create_personal_token(session, user, "t", SYSTEM).plaintext
        session.add(GroupMembership(group_id=approvers.id, user_id=world.ids["abe"]))
        # abe's other account (same email), and a member whose Identity Center user has
        # abe's email: both one person with abe, whose requests abe never approves
        alt = world.user(session, "abe.alt", "ABE@corp.example ")
        twin = world.user(session, "abe.twin")
        session.add(DirectoryPrincipal(identity_store_id=STORE, principal_id="p-twin",
                                       user_id=twin.id, user_name="abe.twin",
                                       email="abe@corp.example", matched_by="admin"))  # fmt: skip
        session.flush()
        for who in (alt, twin):
            world.ids[who.username] = who.id
            world.request(session, who.id, "pending", world.approval(f"group:{approvers.id}"))
    return world
