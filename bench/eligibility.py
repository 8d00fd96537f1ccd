"""Benchmark: "what can I request" at 100,000 resources and 500 mixed flows, on both backends.

Builds its own seedable organization (``--seed``): 1,000 accounts under a 3-level OU tree
(some suspended), 100 resources each of four types with tags on several keys, 60 groups and
500 access flows across every scope kind — tags (several keys, some with excluded OUs),
nested OUs with excluded sub-OUs, account lists with excluded resources, id lists, whole OUs
minus accounts, and a few whole-type flows. The requester is in 5 groups (~40 flows apply).

The resources land through the real sync ingest (``services.sync_ingest``), one transaction
per account as the connector protocol does (``--bulk``: inserted in bulk and indexed once by
``store.resource_index.reindex``, seconds instead of ~17 minutes; the initial sync is then not
measured); the queries go through the real app and its bearer-token authentication (FastAPI
TestClient). It prints p50/p95 of four ``GET /api/v1/requestable`` queries (first page, a
name search, a type filter, a deep page) served warm (the in-process eligibility cache holds
the listing and the flows' sets), the same queries cold (the cache emptied before each call:
what the first request after a change pays), the memory the cache holds, the cost of keeping
things current (the initial sync, a re-sync of every resource with some tags and OUs changed
and the first query after it, a flow edit and the first query after it), and the list pages
of ``bench/list_pages.py`` when it exists.

``--reuse DIR`` keeps the built organization (a SQLite file, a PostgreSQL template database)
keyed by backend, seed, size and build, and starts from a copy of it on the next run.

    PYTHONPATH=. .venv/bin/python bench/eligibility.py [--quick] [--seed 7] [--backend both]
        [--bulk] [--reuse /tmp/grantflow-bench]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from grantflow.api.app import create_app
from grantflow.domain.flows import FlowDefinition, FlowView, in_scope, requestor_matches
from grantflow.domain.inventory import (
    AccountInventory,
    AccountOutcome,
    PermissionSetRecord,
    ResourceRecord,
    SyncSummary,
)
from grantflow.logs import configure_logging
from grantflow.services.access import eligibility_cache, flow_views, policy_withdrawal
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.services.integrations import sync_ingest
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import LogFormat, Settings
from grantflow.store import resource_index
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import (
    AccessFlow,
    Connector,
    Group,
    GroupMembership,
    Integration,
    Resource,
    SyncRun,
    User,
)
from grantflow.store.types import utcnow

PG_ADMIN_DSN = os.environ.get(
    "GRANTFLOW_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN_TOKEN = "gf_pat_bench-eligibility-admin-0123456789"  # noqa: S105 (a throwaway database)
TYPES = ("s3-bucket", "ec2-instance", "iam-role", "rds-instance")
PERMS = {"aws-account": ["ReadOnlyAccess", "AdministratorAccess"], "s3-bucket": ["read-only"],
         "ec2-instance": ["session"], "iam-role": ["assume"], "rds-instance": ["connect"]}  # fmt: skip
TAG_KEYS = {"team": 60, "env": 3, "cost-center": 40, "data-class": 4, "app": 150}
WORDS = ("payments", "ledger", "search", "billing", "auth", "media", "orders", "risk", "ml")
ENVS = ("prod", "staging", "dev")


@dataclass(frozen=True)
class Size:
    accounts: int
    per_account: int
    flows: int
    groups: int
    samples: int

    @staticmethod
    def full() -> Size:
        return Size(accounts=1000, per_account=100, flows=500, groups=60, samples=30)

    @staticmethod
    def quick() -> Size:
        return Size(accounts=20, per_account=15, flows=40, groups=12, samples=3)


@dataclass
class World:
    """The organization: OU tree, accounts (id → OU path, status) and their resources."""

    root: str
    children: dict[str, list[str]]  # OU → child OUs
    accounts: dict[str, tuple[list[str], str]]
    resources: dict[str, list[ResourceRecord]] = field(default_factory=dict)

    def accounts_under(self, ou: str) -> list[str]:
        return [a for a, (path, _) in self.accounts.items() if ou in path]


def build_world(rng: random.Random, size: Size) -> World:
    root = "r-bnch"
    children: dict[str, list[str]] = {root: []}
    leaves = []
    for a in range(5):
        l1 = f"ou-bnch-1{a:07d}"
        children[root].append(l1)
        children[l1] = []
        for b in range(4):
            l2 = f"ou-bnch-2{a}{b:06d}"
            children[l1].append(l2)
            children[l2] = []
            for c in range(5):
                l3 = f"ou-bnch-3{a}{b}{c:05d}"
                children[l2].append(l3)
                children[l3] = []
                leaves.append([root, l1, l2, l3])
    world = World(root, children, {})
    for i in range(size.accounts):
        path = rng.choice(leaves)
        if rng.random() < 0.15:
            path = path[:3]  # some accounts sit in a level-2 OU
        status = "SUSPENDED" if rng.random() < 0.03 else "ACTIVE"
        account = f"{100000000000 + i * 7919:012d}"
        world.accounts[account] = (path, status)
        world.resources[account] = _resources(rng, account, size.per_account)
    return world


def _tags(rng: random.Random) -> dict[str, str]:
    tags = {}
    for key, values in TAG_KEYS.items():
        if rng.random() < (0.05 if key == "data-class" else 0.7):
            tags[key] = ENVS[rng.randrange(3)] if key == "env" else f"{key}-{rng.randrange(values)}"
    return tags


def _resources(rng: random.Random, account: str, n: int) -> list[ResourceRecord]:
    out = [ResourceRecord(type="aws-account", aws_id=account, name=f"acct-{account}",
                          account_id=account, tags=_tags(rng))]  # fmt: skip
    for i in range(n - 1):
        rtype = TYPES[i % len(TYPES)]
        name = f"{rng.choice(WORDS)}-{rng.choice(ENVS)}-{account[-4:]}-{i}"
        out.append(ResourceRecord(type=rtype, aws_id=f"{rtype[:3]}-{account}-{i}", name=name,
                                  account_id=account, region="us-east-1", tags=_tags(rng)))  # fmt: skip
    return out


def _types(rng: random.Random) -> list[str]:
    pool = ["aws-account", *TYPES]
    return sorted(rng.sample(pool, rng.randint(1, 3)))


def flow_definitions(
    rng: random.Random, world: World, groups: list[str], n: int, resource_ids: list[str]
) -> list[dict[str, Any]]:
    """``n`` flows, every scope kind in turn, with exclusions; requestors one or two groups."""
    accounts = sorted(world.accounts)
    out = []
    level2 = [ou for ou in world.children[world.root] for ou in world.children[ou]]
    level3 = [leaf for ou in level2 for leaf in world.children[ou]]
    for i in range(n):
        kind = i % 10
        types = _types(rng)
        scope: dict[str, Any] = {"resource_types": types}
        if kind in (0, 1, 2):  # a team's or an app's tag (several keys), some with exclusions
            key = rng.choice(["team", "team", "app", "cost-center"])
            scope.update(
                mode="tag", tag={"key": key, "value": f"{key}-{rng.randrange(TAG_KEYS[key])}"}
            )
            if kind == 2:
                scope["exclude_ou_ids"] = rng.sample(level2, 2)
                scope["exclude_account_ids"] = rng.sample(accounts, 3)
        elif kind == 3:  # a rare tag with any value, or one type in one environment
            tag: dict[str, Any] = {"key": "data-class", "value": None}
            if rng.random() < 0.5:
                tag = {"key": "env", "value": rng.choice(ENVS)}
                scope["resource_types"] = [rng.choice(TYPES)]
            scope.update(mode="tag", tag=tag, exclude_ou_ids=rng.sample(level2, 2))
        elif kind == 4:  # nested OUs with an excluded sub-OU
            top = rng.choice(level2)
            scope.update(
                mode="ous", ou_ids=[top], exclude_ou_ids=rng.sample(world.children[top], 1)
            )
        elif kind in (5, 6):  # account lists with excluded resources
            listed = rng.sample(accounts, rng.randint(2, 12))
            scope.update(mode="accounts", account_ids=listed)
            inside = [r.aws_id for a in listed for r in world.resources.get(a, [])]
            scope["exclude_resource_ids"] = rng.sample(inside, min(len(inside), 5))
        elif kind == 7:  # id lists: Grantflow ids and AWS ids
            picked = rng.sample(resource_ids, min(len(resource_ids), rng.randint(5, 40)))
            aws = [r.aws_id for a in rng.sample(accounts, 3) for r in world.resources[a][:5]]
            scope.update(mode="ids", resource_ids=picked + aws)
        elif kind == 8:  # a whole OU minus accounts
            top = rng.choice([ou for ou in level3 if len(world.accounts_under(ou)) > 3] or level2)
            under = world.accounts_under(top)
            scope.update(mode="ous", ou_ids=[top],
                         exclude_account_ids=rng.sample(under, min(3, len(under))))  # fmt: skip
        elif rng.random() < 0.2:  # every account, minus an OU
            scope.update(mode="all", resource_types=["aws-account"],
                         exclude_ou_ids=rng.sample(level2, 1))  # fmt: skip
        else:  # an OU's accounts
            scope.update(mode="ous", ou_ids=[rng.choice(level3)])
        picked_groups = rng.sample(groups, 1 if rng.random() < 0.8 else 2)
        definition = {"requestors": {"group_ids": picked_groups}, "scope": scope,
                      "permissions": {t: PERMS[t] for t in scope["resource_types"]},
                      "approval": {"mode": "auto"}}  # fmt: skip
        FlowDefinition.model_validate(definition)
        out.append(definition)
    return out


# ---- the database --------------------------------------------------------------------------


@contextmanager
def database(backend: str, tmp: Path, template: str | None = None) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new database on 127.0.0.1:5432 — empty, or a
    copy of ``template`` (a SQLite file's path, a PostgreSQL template database's name)."""
    if backend == "sqlite":
        path = tmp / f"{uuid.uuid4().hex[:8]}.db"
        if template is not None:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    name = f"bench_elig_run_{uuid.uuid4().hex[:10]}"
    suffix = f' TEMPLATE "{template}"' if template is not None else ""
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{suffix}')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Snapshots:
    """Built organizations kept between runs (``--reuse``): SQLite files in ``directory``,
    PostgreSQL template databases named after the same key."""

    directory: Path

    def key(self, backend: str, seed: int, size: Size, bulk: bool) -> str:
        build = "bulk" if bulk else "ingest"
        return f"elig_{backend}_s{seed}_{size.accounts}x{size.per_account}_f{size.flows}_{build}"

    def find(self, backend: str, key: str) -> str | None:
        if backend == "sqlite":
            path = self.directory / f"{key}.db"
            return str(path) if path.exists() else None
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                 (f"bench_{key}",)).fetchone()  # fmt: skip
        return f"bench_{key}" if found else None

    def keep(self, backend: str, key: str, db_url: str) -> None:
        """Copy the database at ``db_url`` (nobody connected to it) as the snapshot."""
        if backend == "sqlite":
            self.directory.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(db_url.removeprefix("sqlite:///"), self.directory / f"{key}.db")
            return
        source = db_url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "bench_{key}" TEMPLATE "{source}"')


@dataclass
class Figures:
    rows: list[tuple[str, float, float, str]] = field(default_factory=list)  # name, p50, p95
    costs: list[tuple[str, float, str]] = field(default_factory=list)  # name, seconds, note
    totals: dict[str, int] = field(default_factory=dict)
    expected_total: int | None = None
    cache_bytes: int | None = None
    cold: list[tuple[str, float, float, str]] = field(default_factory=list)  # as rows


class IndexTimer:
    """Time spent writing the eligibility index (``store.resource_index.write``), if any."""

    def __init__(self) -> None:
        self.seconds = 0.0
        try:
            from grantflow.store import resource_index
        except ImportError:  # the code before the index
            self.module: Any = None
            return
        self.module = resource_index
        original = resource_index.write

        def timed(*args: Any, **kwargs: Any) -> None:
            started = time.perf_counter()
            try:
                original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        resource_index.write = timed  # type: ignore[assignment]
        self.original = original

    def close(self) -> None:
        if self.module is not None:
            self.module.write = self.original


def _sync(factory: Any, integration_id: str, world: World, generation: int) -> tuple[float, int]:
    """One full sync through the ingest: each account in its own transaction, then finish."""
    with transaction(factory) as s:
        run = SyncRun(integration_id=integration_id, generation=generation, trigger="manual")
        s.add(run)
        s.flush()
        run_id = run.id
    started = time.perf_counter()
    count = 0
    for account, (path, status) in world.accounts.items():
        records = world.resources[account]
        inventory = AccountInventory(
            account_id=account, name=f"acct-{account}", status=status, ou_path=path,
            ou_names=path, outcome=AccountOutcome.SYNCED, types_read=["aws-account", *TYPES],
            resources=records,
        )  # fmt: skip
        count += len(records)
        with transaction(factory) as s:
            sync_ingest.ingest_account(s, run_id, inventory)
    summary = SyncSummary(
        organization_id="o-bench", management_account_id="999999999999", root_id=world.root,
        accounts_total=len(world.accounts), accounts_by_outcome={AccountOutcome.SYNCED:
        len(world.accounts)}, resources_by_type={}, aws_calls=0, duration_seconds=1.0,
        ou_ids=sorted(world.children),
        permission_sets=[PermissionSetRecord(arn=f"arn:aws:sso:::permissionSet/x/ps-{n}",
                                             name=n) for n in PERMS["aws-account"]],
    )  # fmt: skip
    with transaction(factory) as s:  # as runtime.job_outcomes finishes a sync (no directory)
        run, row = sync_ingest.run_of(s, run_id)
        sync_ingest.land_summary(s, run, row, summary)
        sync_ingest.close_run(s, run, row, summary)
        policy_withdrawal.end_access_in_inactive_accounts(
            s, row.id, run.accounts, sync_ingest.connector_actor(row)
        )
        sync_ingest.record_synced(s, run, row)
    return time.perf_counter() - started, count


def _change(rng: random.Random, world: World) -> str:
    """What a day changes: 5% of resources retagged, 2% of accounts moved to another OU."""
    retagged = moved = 0
    leaves = sorted({tuple(p) for p, _ in world.accounts.values()})
    for account, records in world.resources.items():
        for i, record in enumerate(records):
            if rng.random() < 0.05:
                records[i] = record.model_copy(update={"tags": _tags(rng)})
                retagged += 1
        if rng.random() < 0.02:
            world.accounts[account] = (list(rng.choice(leaves)), world.accounts[account][1])
            moved += 1
    return f"{retagged} resources retagged, {moved} accounts moved"


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return pick(0.5), pick(0.95)


def _expected_total(factory: Any, user_id: str) -> int:
    """The pure rule over every resource: ``domain.flows.in_scope`` for the user's flows."""
    with transaction(factory) as s:
        user = s.get(User, user_id)
        assert user is not None
        requester = flow_views.requester_view(s, user)
        flows: list[FlowView] = [
            f for f in flow_views.flow_views(s)
            if f.enabled and requestor_matches(f.definition.requestors, requester)
        ]  # fmt: skip
        count = 0
        for resource in s.scalars(select(Resource)):
            view = flow_views.resource_view(resource)
            if any(f.integration_id == view.integration_id
                   and in_scope(f.definition.scope, view) is None for f in flows):  # fmt: skip
                count += 1
        return count


def _bulk_load(factory: Any, integration_id: str, world: World) -> tuple[float, int]:
    """The organization as the ingest would have left it, inserted in bulk and indexed once."""
    started = time.perf_counter()
    rows = []
    for account, (path, status) in world.accounts.items():
        for record in world.resources[account]:
            rows.append({
                "id": str(uuid.uuid4()), "integration_id": integration_id, "type": record.type,
                "aws_id": record.aws_id, "arn": record.arn, "name": record.name,
                "account_id": record.account_id, "region": record.region, "ou_path": path,
                "tags": record.tags, "owners": [], "sync_generation": 1,
                "attributes": {**record.attributes, "ou_names": path, "account_status": status},
            })  # fmt: skip
    with transaction(factory) as s:
        for i in range(0, len(rows), 5_000):
            s.execute(insert(Resource), rows[i : i + 5_000])
        resource_index.reindex(s)
    return time.perf_counter() - started, len(rows)


@dataclass
class Setup:
    integration_id: str
    requester_id: str
    token: str
    world: World


def _setup(
    factory: Any, rng: random.Random, size: Size, bulk: bool, built: bool, figures: Figures
) -> Setup:
    """The organization, its flows and the requester: written (``built`` False), or read back
    from a kept copy — the random draws are the same either way, so the rest of the run is."""
    world = build_world(rng, size)
    with transaction(factory) as s:
        if built:
            integ = s.scalars(select(Integration).where(Integration.name == "bench")).one()
            requester = s.scalars(select(User).where(User.username == "requester")).one()
            by_name = {g.name: g for g in s.scalars(select(Group))}
            groups = [by_name[f"team-{i}"] for i in range(size.groups)]
            rng.sample(groups, 5)  # the draw the build made for the memberships
        else:
            s.add(Connector(id="gfc-bencheligibility00000", name="bench", kind="self_hosted",
                            token_hash=uuid.uuid4().hex * 2, token_prefix="x"))  # fmt: skip
            integ = Integration(name="bench", type="aws-organization",
                                connector_id="gfc-bencheligibility00000",
                                resource_types=["aws-account", *TYPES], status="active",
                                config={"region": "us-east-1", "sso_region": "us-east-1",
                                        "sso_portal": "https://d-bench.awsapps.com/start",
                                        "management_role_arn":
                                            "arn:aws:iam::999999999999:role/r"})  # fmt: skip
            groups = [Group(name=f"team-{i}") for i in range(size.groups)]
            requester = User(username="requester", role="member")
            s.add_all([integ, requester, *groups])
            s.flush()
            s.add_all(GroupMembership(group_id=g.id, user_id=requester.id)
                      for g in rng.sample(groups, 5))  # fmt: skip
        token = create_personal_token(s, requester, "bench", SYSTEM,
                                      utcnow() + timedelta(days=1)).plaintext  # fmt: skip
        setup = Setup(integ.id, requester.id, token, world)
        group_ids = [g.id for g in groups]
    if built:
        figures.costs.append(("initial sync", 0.0, "not measured: a kept copy (--reuse)"))
    else:
        timer = IndexTimer()
        try:
            if bulk:
                seconds, count = _bulk_load(factory, setup.integration_id, world)
                note = f"{count:,} resources bulk-inserted and reindexed (not the ingest)"
            else:
                seconds, count = _sync(factory, setup.integration_id, world, 1)
                note = f"{count:,} resources; index writes {timer.seconds:.1f} s"
        finally:
            timer.close()
        figures.costs.append(("initial sync (ingest)" if not bulk else "initial bulk load",
                              seconds, note))  # fmt: skip
    with transaction(factory) as s:
        ids = list(s.scalars(select(Resource.id).order_by(Resource.id)))
        definitions = flow_definitions(rng, world, group_ids, size.flows, ids)
        if not built:
            s.add_all(AccessFlow(name=f"flow-{i:03d}", integration_id=setup.integration_id,
                                 definition=d) for i, d in enumerate(definitions))  # fmt: skip
    return setup


def run_backend(
    db_url: str,
    seed: int,
    size: Size,
    check: bool = False,
    bulk: bool = False,
    built: bool = False,
    keep: Callable[[], None] | None = None,
    resync: bool = True,
) -> Figures:
    """The run on the database at ``db_url``: empty, or a kept copy when ``built``; ``keep``
    is called once the organization is written (the engine closed) to snapshot it."""
    rng = random.Random(seed)
    figures = Figures()
    settings = Settings(database_url=db_url, admin_token=ADMIN_TOKEN, managed_connector=False,
                        log_level="WARNING", log_format="console")  # type: ignore[call-arg]  # fmt: skip
    prepare_database(settings)
    engine = build_engine(db_url)
    factory = session_factory(engine)
    setup = _setup(factory, rng, size, bulk, built, figures)
    if keep is not None and not built:
        engine.dispose()
        keep()
    eligibility_cache.clear()
    timer = IndexTimer()
    try:
        app = create_app(settings, run_workers=False)
        with TestClient(app) as client:
            _queries(client, setup.token, size.samples, figures, rng)
            _flow_edit(client, factory, setup.requester_id, setup.token, figures)
            if resync:
                what = _change(rng, setup.world)
                timer.seconds = 0.0
                seconds, count = _sync(factory, setup.integration_id, setup.world, 2)
                figures.costs.append(("re-sync (ingest)", seconds,
                                      f"{count:,} resources, {what}; "
                                      f"index writes {timer.seconds:.1f} s"))  # fmt: skip
                started = time.perf_counter()
                first = _get(client, setup.token, {"limit": 50})
                figures.costs.append(("first page after re-sync (cold)",
                                      time.perf_counter() - started,
                                      f"total {first['total']:,}"))  # fmt: skip
                started = time.perf_counter()
                _get(client, setup.token, {"limit": 50})
                figures.costs.append(("the next call (warm)", time.perf_counter() - started, ""))
            figures.totals["after re-sync"] = int(_get(client, setup.token, {"limit": 1})["total"])
        if check:
            figures.expected_total = _expected_total(factory, setup.requester_id)
    finally:
        timer.close()
        engine.dispose()
    return figures


def _cache_bytes(client: TestClient, token: str) -> int:
    """What the eligibility cache holds after one first-page call from empty (tracemalloc:
    the allocations still alive, i.e. the listing and the requester's sets)."""
    eligibility_cache.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        _get(client, token, {"limit": 50})
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before


def _get(client: TestClient, token: str, params: dict[str, Any]) -> dict[str, Any]:
    r = client.get("/api/v1/requestable", params=params,
                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


def _timed(samples: int, call: Callable[[], dict[str, Any]]) -> tuple[list[float], int]:
    call()  # warm the caches and the pool
    times = []
    total = 0
    for _ in range(samples):
        started = time.perf_counter()
        total = int(call()["total"])
        times.append(time.perf_counter() - started)
    return times, total


def _queries(
    client: TestClient, token: str, samples: int, figures: Figures, rng: random.Random
) -> None:
    first = _get(client, token, {"limit": 50})
    deep = max(0, (int(first["total"]) - 1) // 50 * 50)
    word = rng.choice(WORDS)
    queries: dict[str, dict[str, Any]] = {
        "first page": {"limit": 50},
        f"search q={word}": {"limit": 50, "q": word},
        "type=ec2-instance": {"limit": 50, "type": "ec2-instance"},
        f"deep page offset={deep:,}": {"limit": 50, "offset": deep},
    }
    for name, params in queries.items():
        times, total = _timed(samples, partial(_get, client, token, params))
        p50, p95 = _percentiles(times)
        figures.rows.append((f"requestable {name}", p50, p95, f"total {total:,}"))
        figures.totals[name] = total
    cold_samples = max(1, min(5, samples))
    for name, params in queries.items():
        times = []
        for _ in range(cold_samples):
            eligibility_cache.clear()
            started = time.perf_counter()
            _get(client, token, params)
            times.append(time.perf_counter() - started)
        p50, p95 = _percentiles(times)
        figures.cold.append((f"requestable {name}", p50, p95,
                             f"cache emptied before each of {cold_samples} calls"))  # fmt: skip
    figures.cache_bytes = _cache_bytes(client, token)


def _flow_edit(
    client: TestClient, factory: Any, requester_id: str, token: str, figures: Figures
) -> None:
    """An admin narrows one of the requester's flows: the edit, then the first query."""
    with transaction(factory) as s:
        user = s.get(User, requester_id)
        assert user is not None
        requester = flow_views.requester_view(s, user)
        flow = next(
            row for row in s.scalars(select(AccessFlow).order_by(AccessFlow.name))
            if requestor_matches(FlowDefinition.stored(row.definition).requestors, requester)
        )  # fmt: skip
        flow_id, definition = flow.id, dict(flow.definition)
    scope = dict(definition["scope"])
    scope["exclude_account_ids"] = sorted({*scope.get("exclude_account_ids", []),
                                           "100000000000"})  # fmt: skip
    started = time.perf_counter()
    r = client.patch(f"/api/v1/access-flows/{flow_id}",
                     json={"definition": {**definition, "scope": scope}},
                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    r.raise_for_status()
    edit = time.perf_counter() - started
    started = time.perf_counter()
    _get(client, token, {"limit": 50})
    after = time.perf_counter() - started
    figures.costs.append(("flow edit (PATCH)", edit, "no index rows to rewrite"))
    figures.costs.append(("first page after the edit", after, ""))


def run_lists(db_url: str, seed: int) -> list[tuple[str, float, float]] | str:
    try:
        from bench.list_pages import run
    except ImportError as err:
        return f"bench/list_pages.py not available ({err})"
    rows: list[tuple[str, float, float]] = run(db_url, seed)
    return rows


def report(
    backend: str, figures: Figures, lists: list[tuple[str, float, float]] | str | None
) -> None:
    print(f"\n== {backend} ==")
    print(f"{'query (warm: the eligibility cache holds it)':46} {'p50 ms':>8} {'p95 ms':>8}")
    for name, p50, p95, note in figures.rows:
        print(f"{name:46} {p50:8.1f} {p95:8.1f}  {note}")
    if figures.cold:
        print("cold (what the first request after a change pays, unless warmed):")
    for name, p50, p95, note in figures.cold:
        print(f"{name:46} {p50:8.1f} {p95:8.1f}  {note}")
    if isinstance(lists, str):
        print(f"list pages: {lists}")
    elif lists is not None:
        for name, p50, p95 in lists:
            print(f"{name:46} {p50:8.1f} {p95:8.1f}")
    if figures.cache_bytes is not None:
        print(f"eligibility cache after one cold first page (listing + the requester's sets): "
              f"{figures.cache_bytes / 1e6:.1f} MB")  # fmt: skip
    print("keeping things current:")
    for name, seconds, note in figures.costs:
        print(f"  {name:44} {seconds * 1000:10.0f} ms  {note}")
    if figures.expected_total is not None:
        print(f"pure rule (domain.flows.in_scope): {figures.expected_total:,} requestable; "
              f"after re-sync the API said {figures.totals['after re-sync']:,}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a small world (300 resources)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--samples", type=int, default=None, help="timed calls per query")
    parser.add_argument("--skip-lists", action="store_true", help="skip bench/list_pages.py")
    parser.add_argument("--check", action="store_true",
                        help="compare the total with the pure rule over every resource")  # fmt: skip
    parser.add_argument(
        "--bulk",
        action="store_true",
        help="insert the organization in bulk instead of through the ingest",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the built organization (SQLite files in DIR, PostgreSQL "
        "template databases) and start from a copy of it next time",
    )
    parser.add_argument("--skip-resync", action="store_true", help="no re-sync through the ingest")
    args = parser.parse_args()
    configure_logging("WARNING", LogFormat.CONSOLE)
    size = Size.quick() if args.quick else Size.full()
    if args.samples:
        size = Size(size.accounts, size.per_account, size.flows, size.groups, args.samples)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(f"world: {size.accounts:,} accounts x {size.per_account} resources, {size.flows} "
          f"flows, {size.groups} groups, requester in 5; seed {args.seed}")  # fmt: skip
    snapshots = Snapshots(args.reuse) if args.reuse is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            key = snapshots.key(backend, args.seed, size, args.bulk) if snapshots else ""
            kept = snapshots.find(backend, key) if snapshots else None
            with database(backend, Path(tmp), template=kept) as url:
                keep = None
                if snapshots is not None and kept is None:
                    keep = partial(snapshots.keep, backend, key, url)
                figures = run_backend(url, args.seed, size, check=args.check or args.quick,
                                      bulk=args.bulk, built=kept is not None, keep=keep,
                                      resync=not args.skip_resync)  # fmt: skip
            lists: list[tuple[str, float, float]] | str | None = None
            if not args.skip_lists:
                with database(backend, Path(tmp)) as url:
                    lists = run_lists(url, args.seed)
            report(backend, figures, lists)


if __name__ == "__main__":
    main()
