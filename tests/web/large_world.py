"""The eligibility benchmark's organization (``bench/eligibility.py``: 1,000 accounts under a
3-level OU tree, 100,000 resources with tags on several keys, 500 flows of every scope kind
with exclusions; a member in 5 of 60 groups) written straight into a live server's database.

Rows are bulk-inserted as the sync ingest would have left them (``ou_path``, the account's
status in ``attributes``) and the eligibility index is rebuilt once
(``store.resource_index.reindex``), instead of ingesting account by account: seconds, not
minutes."""

from __future__ import annotations

import random
import uuid
from typing import Any

from bench.eligibility import Size, build_world, flow_definitions
from sqlalchemy import insert

from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import (
    AccessFlow,
    Connector,
    Group,
    GroupMembership,
    Integration,
    Resource,
)
from grantflow.store.resource_index import reindex
from tests.fixtures.live import LiveServer
from tests.web.world import CONFIG

CONNECTOR = "gfc-largeworld00000000000"
TYPES = ["aws-account", "s3-bucket", "ec2-instance", "iam-role", "rds-instance"]


def _rows(integration_id: str, seed: int, size: Size) -> tuple[list[dict[str, Any]], Any]:
    rng = random.Random(seed)
    world = build_world(rng, size)
    rows = []
    for account, (path, status) in world.accounts.items():
        for record in world.resources[account]:
            rows.append({
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "integration_id": integration_id, "type": record.type, "aws_id": record.aws_id,
                "arn": record.arn, "name": record.name, "account_id": record.account_id,
                "region": record.region, "ou_path": path, "tags": record.tags,
                "attributes": {**record.attributes, "ou_names": path, "account_status": status},
                "owners": [], "sync_generation": 1,
            })  # fmt: skip
    return rows, (world, rng)


def seed(live: LiveServer, member_id: str, seed: int = 7) -> int:
    """The organization, its flows, and ``member_id`` in 5 of the 60 groups; returns how many
    resources were written."""
    size = Size.full()
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.add(Connector(id=CONNECTOR, name="large", kind="self_hosted",
                                  token_hash="l" * 64, token_prefix="gf_con_l"))  # fmt: skip
            session.flush()
            integ = Integration(name="Large Org", type="aws-organization",
                                connector_id=CONNECTOR, status="active",
                                resource_types=TYPES, config=CONFIG,
                                facts={"identity_store_id": "d-web"})  # fmt: skip
            groups = [Group(name=f"team-{i}") for i in range(size.groups)]
            session.add_all([integ, *groups])
            session.flush()
            rows, (world, rng) = _rows(integ.id, seed, size)
            for i in range(0, len(rows), 5_000):
                session.execute(insert(Resource), rows[i : i + 5_000])
            reindex(session)
            session.add_all(GroupMembership(group_id=g.id, user_id=member_id)
                            for g in rng.sample(groups, 5))  # fmt: skip
            ids = sorted(r["id"] for r in rows)
            definitions = flow_definitions(rng, world, [g.id for g in groups], size.flows, ids)
            session.add_all(
                AccessFlow(name=f"flow-{i:03d}", integration_id=integ.id, definition=d)
                for i, d in enumerate(definitions)
            )
            return len(rows)
    finally:
        engine.dispose()
