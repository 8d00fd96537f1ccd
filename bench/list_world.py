"""A seedable population for the list-page benchmark (``bench/list_pages.py``).

Mixed on purpose: two integrations, 60 groups, users in 3 to 7 groups each, flows whose approvers
are groups, users or both (modes any and all), requests in every state with their grants,
approvals and approval snapshots as ``services.access_requests`` writes them, resources of
several types, and an audit log of realistic actions. Rows are bulk-inserted (executemany;
COPY for the audit log on PostgreSQL). The audit rows carry placeholder hashes: the reads
measured never verify the chain, and nothing here claims it is intact.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session

from grantflow.domain.flows import FlowDefinition
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import session_factory, transaction
from grantflow.store.models import (
    AccessFlow,
    AccessRequest,
    Approval,
    AuditEvent,
    Connector,
    Grant,
    Group,
    GroupMembership,
    Integration,
    Resource,
    User,
)

STATES = (  # (state, weight): a company's mix, most requests long over
    ("pending", 15), ("granted", 10), ("expired", 35), ("rejected", 10), ("cancelled", 10),
    ("revoked", 12), ("failed", 5), ("approved", 3),
)  # fmt: skip
TYPES = ("aws-account", "s3-bucket", "rds-instance", "ec2-instance", "identity-center-group")
ACTIONS = (  # (action, weight)
    ("request.created", 12), ("request.approve", 8), ("request.approval_recorded", 4),
    ("request.reject", 2), ("request.start_grant", 8), ("grant.granted", 10),
    ("request.expire", 8), ("grant.revoked", 9), ("request.cancel", 2), ("sync.finished", 20),
    ("user.signed_in", 15), ("token.created", 1), ("flow.updated", 1),
)  # fmt: skip
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
CONFIG = {"region": "us-east-1", "sso_region": "us-east-1",
          "sso_portal": "https://d-bench.awsapps.com/start",
          "management_role_arn": "arn:aws:iam::111111111111:role/GrantflowManagement"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Size:
    requests: int = 10_000
    audit_events: int = 1_000_000
    resources: int = 100_000
    users: int = 1_000
    groups: int = 60
    flows: int = 40

    @classmethod
    def quick(cls) -> Size:
        return cls(requests=300, audit_events=5_000, resources=1_500, users=60, flows=8)


@dataclass
class World:
    """Who to call as: ``approver`` (in several approver groups), ``requester`` (with many
    requests of their own), each with a personal token; figures for the report."""

    tokens: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    search: str = ""  # a name fragment that finds a few resources
    deep_seq: int = 0  # an audit cursor about nine tenths down the log


def _ids(n: int, rng: random.Random) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def _chunks(rows: list[dict[str, Any]], size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _bulk(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        session.execute(insert(model), chunk)


def _flows(rng: random.Random, n: int, integrations: list[str], groups: list[str],
           users: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """Flow rows and, per flow, the approval snapshot its requests carry."""
    rows, snapshots = [], []
    for i in range(n):
        sets, approver_groups = [], []
        for _ in range(rng.choice((1, 1, 2))):
            named = rng.sample(groups, rng.choice((1, 2)))
            approver_groups.append({"kind": "groups", "group_ids": named, "required": 1})
            sets.append({"label": "named groups", "why": "named in the flow",
                         "principals": [f"group:{g}" for g in named], "required": 1})  # fmt: skip
        if rng.random() < 0.3:
            named = rng.sample(users, 2)
            approver_groups.append({"kind": "users", "user_ids": named, "required": 1})
            sets.append({"label": "named users", "why": "named in the flow",
                         "principals": [f"user:{u}" for u in named], "required": 1})  # fmt: skip
        mode = rng.choice(("any", "any", "all"))
        kind = TYPES[i % len(TYPES)]
        definition = FlowDefinition.model_validate({
            "requestors": {"group_ids": rng.sample(groups, 3)},
            "scope": {"resource_types": [kind]}, "permissions": {kind: ["ReadOnly", "Admin"]},
            "approval": {"mode": mode, "groups": approver_groups}, "max_extensions": i % 3,
        }).model_dump(mode="json")  # fmt: skip
        rows.append({"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                     "name": f"flow-{i:03d}", "integration_id": integrations[i % 2],
                     "definition": definition, "enabled": True})  # fmt: skip
        snapshots.append({"mode": mode, "sets": sets})
    return rows, snapshots


def _resources(rng: random.Random, n: int, integrations: list[str]) -> list[dict[str, Any]]:
    words = ("billing", "ledger", "search", "orders", "payments", "reports", "ingest", "api")
    return [{
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "integration_id": integrations[i % 2], "type": TYPES[i % len(TYPES)],
        "aws_id": f"res-{i:07d}", "arn": None,
        "name": f"{rng.choice(words)}-{rng.choice(words)}-{i:06d}",
        "account_id": f"{100_000_000_000 + i % 1_000:012d}", "region": "us-east-1",
        "ou_path": ["r-root", f"ou-root-{i % 7:08d}", f"ou-root-{i % 7:02d}{i % 29:06d}"],
        "tags": {"team": f"team-{i % 60}", "env": rng.choice(("prod", "stage", "dev"))},
        "attributes": {}, "owners": [], "sync_generation": 1,
    } for i in range(n)]  # fmt: skip


def _requests(rng: random.Random, size: Size, users: list[str], heavy: str,
              flows: list[dict[str, Any]], snapshots: list[dict[str, Any]],
              resources: list[str]) -> tuple[list[dict[str, Any]], ...]:  # fmt: skip
    weights = [w for _, w in STATES]
    requests, grants, approvals = [], [], []
    for i in range(size.requests):
        f = rng.randrange(len(flows))
        state = rng.choices([s for s, _ in STATES], weights)[0]
        requester = heavy if rng.random() < 0.02 else rng.choice(users)
        created = EPOCH + timedelta(minutes=i * 13 + rng.randrange(10))
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        ended = state in ("expired", "rejected", "cancelled", "revoked", "failed")
        requests.append({
            "id": rid, "requester_id": requester, "integration_id": flows[f]["integration_id"],
            "flow_id": flows[f]["id"], "resource_type": TYPES[f % len(TYPES)],
            "permission": "ReadOnly", "justification": f"INC-{i}", "duration_seconds": 3600,
            "state": state, "approval": snapshots[f], "extensions": 0,
            "created_at": created, "updated_at": created,
            "approved_at": created + timedelta(minutes=5) if state != "pending" else None,
            "granted_at": created + timedelta(minutes=6) if state in ("granted", "expired")
            else None,
            "expires_at": created + timedelta(hours=1) if state in ("granted", "expired")
            else None,
            "ended_at": created + timedelta(hours=1) if ended else None,
            "end_reason": "expired" if state == "expired" else None,
        })  # fmt: skip
        for _ in range(rng.choice((1, 1, 2, 3))):
            grants.append({"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                           "request_id": rid, "resource_id": rng.choice(resources),
                           "state": "granted" if state == "granted" else "revoked",
                           "handle": {"permission_set_name": "ReadOnly"}, "spec": {},
                           "tuple_key": "", "created_at": created,
                           "updated_at": created})  # fmt: skip
        if state not in ("pending", "cancelled"):
            for approver in rng.sample(users, rng.choice((1, 2))):
                if approver != requester:
                    approvals.append({
                        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                        "request_id": rid, "approver_id": approver,
                        "decision": "reject" if state == "rejected" else "approve",
                        "reason": "ok", "created_at": created + timedelta(minutes=4),
                    })  # fmt: skip
    return requests, grants, approvals


def _audit_rows(rng: random.Random, n: int, first: int, users: list[str],
                requests: list[str]) -> Iterator[tuple[Any, ...]]:  # fmt: skip
    actions = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    start = EPOCH - timedelta(days=30)
    step = (timedelta(days=200) / max(n, 1)).total_seconds()
    for seq in range(first, first + n):
        action = rng.choices(actions, weights)[0]
        target = rng.choice(requests) if action.startswith(("request.", "grant.")) else None
        actor = rng.choice(users) if rng.random() < 0.6 else None
        digest = hashlib.sha256(f"bench-{seq}".encode()).hexdigest()
        yield (
            seq, str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            start + timedelta(seconds=seq * step), "user" if actor else "system", actor,
            action, "access_request" if target else None, target, "api", None,
            json.dumps({"from": "pending", "to": "granted"} if target else {}),
            "", digest, None,
        )  # fmt: skip


AUDIT_COLUMNS = ("seq", "id", "occurred_at", "actor_type", "actor_id", "action", "target_type",
                 "target_id", "source", "request_id", "data", "prev_hash", "hash", "key_id")  # fmt: skip


def _insert_audit(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            columns = ", ".join(AUDIT_COLUMNS)
            with cursor.copy(f"COPY audit_events ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('audit_events', 'seq'), "
                "(SELECT max(seq) FROM audit_events))"
            )
            cursor.execute("ANALYZE")  # what autovacuum does after a load; SQLite: never run
            raw.commit()
        finally:
            raw.close()
        return
    with engine.begin() as conn:
        batch: list[dict[str, Any]] = []
        for row in rows:
            values = dict(zip(AUDIT_COLUMNS, row, strict=True))
            values["data"] = json.loads(values["data"])
            batch.append(values)
            if len(batch) == 20_000:
                conn.execute(insert(AuditEvent), batch)
                batch = []
        if batch:
            conn.execute(insert(AuditEvent), batch)


def build(engine: Engine, seed: int, size: Size) -> World:
    """Fill an empty, migrated database (the bootstrap admin may already exist)."""
    rng = random.Random(seed)
    world = World()
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        session.add(Connector(id="gfc-listbenchlistbench", name="bench", kind="managed",
                              token_hash="b" * 64, token_prefix="gf_con_b"))  # fmt: skip
        session.flush()
        integrations = _ids(2, rng)
        for n, iid in enumerate(integrations):
            session.add(Integration(id=iid, name=f"org-{n}", type="aws-organization",
                                    connector_id="gfc-listbenchlistbench", status="active",
                                    resource_types=list(TYPES),
                                    facts={"identity_store_id": f"d-bench{n}"},
                                    config=CONFIG))  # fmt: skip
        groups, users = _ids(size.groups, rng), _ids(size.users, rng)
        _bulk(session, Group, [{"id": g, "name": f"team-{i}", "source": "local"}
                               for i, g in enumerate(groups)])  # fmt: skip
        _bulk(session, User, [{"id": u, "username": f"user{i:04d}", "active": True,
                               "email": f"user{i:04d}@corp.example", "role": "member",
                               "source": "local", "attributes": {}}
                              for i, u in enumerate(users)])  # fmt: skip
        members = [{"group_id": g, "user_id": u} for u in users
                   for g in rng.sample(groups, rng.randint(3, 7))]  # fmt: skip
        _bulk(session, GroupMembership, members)
        flows, snapshots = _flows(rng, size.flows, integrations, groups, users)
        _bulk(session, AccessFlow, flows)
        resources = _resources(rng, size.resources, integrations)
        _bulk(session, Resource, resources)
        world.search = resources[len(resources) // 3]["name"].split("-", 2)[2][:5]
        approver = users[0]
        heavy = users[1]
        requests, grants, approvals = _requests(
            rng, size, users[1:], heavy, flows, snapshots, [r["id"] for r in resources]
        )
        _bulk(session, AccessRequest, requests)
        _bulk(session, Grant, grants)
        _bulk(session, Approval, approvals)
        # the approver: in five groups that approve flows, named in some flows' snapshots
        named = {p.partition(":")[2] for s in snapshots for x in s["sets"] for p in x["principals"]
                 if p.startswith("group:")}  # fmt: skip
        mine = {m["group_id"] for m in members if m["user_id"] == approver}
        extra = [g for g in sorted(named) if g not in mine][:5]
        _bulk(session, GroupMembership, [{"group_id": g, "user_id": approver} for g in extra])
        for name, uid in (("approver", approver), ("requester", heavy)):
            user = session.get(User, uid)
            assert user is not None
            world.tokens[name] = create_personal_token(session, user, "bench", SYSTEM).plaintext
        world.counts = {"requests": len(requests), "grants": len(grants),
                        "resources": len(resources), "users": len(users),
                        "memberships": len(members) + len(extra), "flows": len(flows),
                        "audit_events": size.audit_events}  # fmt: skip
        request_ids = [r["id"] for r in requests]
        first = (session.scalar(select(func.max(AuditEvent.seq))) or 0) + 1
    # after the few events written above (the tokens), numbered on from them
    _insert_audit(engine, _audit_rows(rng, size.audit_events, first, users, request_ids))
    world.deep_seq = first + max(1, size.audit_events // 10)
    return world
