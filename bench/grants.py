"""Benchmark: grant and revoke throughput and latency, and the eligibility query.

Part 1 runs the real thing: a moto server with a small emulated organization, Grantflow's
template deployed into it, `grantflow serve` with its managed connector, an auto-approved
flow, and N requests (default 500) with the shortest duration (60 s). It prints
request→granted latency (p50/p99; Identity Center operations stay IN_PROGRESS for the
``--async`` time: GRANTFLOW_EMULATE_IC_ASYNC, 2 s by default), expiry→revoked lag (p50/p99)
and assignments per second.

Part 2 loads 100k resources and 500 flows into a fresh database and times
`GET /api/v1/requestable` for a member (p50/p95).

    .venv/bin/python bench/grants.py --requests 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from tests.fixtures.live import LiveServer

from grantflow.demo.deploy import (
    create_connector_role,
    deploy_member_roles,
    deploy_stack,
    management_session,
    stack_set_targets,
)
from grantflow.demo.moto_server import free_loopback_port, start_moto_server
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape
from grantflow.services.audit import SYSTEM
from grantflow.services.tokens import create_personal_token
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import DirectoryPrincipal, User


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _wait(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.5)
    raise TimeoutError("benchmark step timed out")


def _tokens(db_url: str) -> dict[str, str]:
    engine = build_engine(db_url)
    tokens = {}
    with transaction(session_factory(engine)) as session:
        # the users the sync matched to an Identity Center principal (those can be granted)
        matched = select(DirectoryPrincipal.user_id).where(DirectoryPrincipal.user_id.is_not(None))
        for user in session.scalars(select(User).where(User.id.in_(matched))):
            tokens[user.username] = create_personal_token(session, user, "bench", SYSTEM).plaintext
    engine.dispose()
    return tokens


def grants_part(n: int, tmp: Path, emulated_async: str = "in_progress=2s") -> None:
    moto = start_moto_server()
    os.environ.update(AWS_ENDPOINT_URL=moto.endpoint, AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    org = build_org(moto.endpoint, OrgShape.small())
    session = management_session(moto.endpoint)
    role = create_connector_role(session)
    port = free_loopback_port()
    live = LiveServer(url=f"http://127.0.0.1:{port}", port=port,
                      db_url=f"sqlite:///{tmp}/bench.db", tmp=tmp,
                      extra_env={"GRANTFLOW_MANAGED_CONNECTOR": "true",
                                 "GRANTFLOW_CONNECTOR_ROLE_ARN": role,
                                 "GRANTFLOW_LOG_LEVEL": "WARNING",
                                 "GRANTFLOW_EMULATE_IC_ASYNC": emulated_async})  # fmt: skip
    print(f"emulated Identity Center asynchrony: {emulated_async or 'off'}")
    live.start()
    try:
        with live.http() as admin:
            cid = next(c["id"] for c in admin.get("/api/v1/connectors").json())
            _, mrole = deploy_stack(session, cid, role, org.root_id)
            deploy_member_roles(session, mrole, stack_set_targets(
                org.root_id, [(o.id, o.path) for o in org.ous]), ["us-east-1"])  # fmt: skip
            body = {"name": "bench", "connector_id": cid, "resource_types": ["aws-account"],
                    "config": {"region": "us-east-1", "sso_region": org.sso_region,
                               "sso_portal": "https://d-bench.awsapps.com/start",
                               "management_role_arn": mrole,
                               "exclude_ou_ids": list(org.excluded_ou_ids)}}  # fmt: skip
            integ = admin.post("/api/v1/integrations", json=body).json()
            _wait(lambda: admin.get(f"/api/v1/integrations/{integ['id']}").json()["status"]
                  == "active", 300)  # fmt: skip
            flow = {"requestors": {"everyone": True},
                    "scope": {"resource_types": ["aws-account"], "mode": "all"},
                    "permissions": {"aws-account": [p.name for p in org.permission_sets]},
                    "approval": {"mode": "auto"}, "max_duration_seconds": 3600,
                    "default_duration_seconds": 60}  # fmt: skip
            admin.post("/api/v1/access-flows", json={"name": "bench", "integration_id":
                       integ["id"], "definition": flow})  # fmt: skip
            found = admin.get("/api/v1/resources", params={
                "integration_id": integ["id"], "type": "aws-account", "limit": 500}).json()["items"]  # fmt: skip
            # suspended accounts are never requestable
            accounts = [a for a in found if a["attributes"].get("account_status") == "ACTIVE"]
        tokens = _tokens(live.db_url)
        users = sorted(tokens)
        perms = [p.name for p in org.permission_sets]
        plan = [(users[i % len(users)], accounts[(i // len(users)) % len(accounts)]["id"],
                 perms[(i // (len(users) * len(accounts))) % len(perms)]) for i in range(n)]  # fmt: skip

        def submit(item: tuple[str, str, str]) -> str:
            user, resource, perm = item
            with httpx.Client(base_url=live.url, timeout=60,
                              headers={"Authorization": f"Bearer {tokens[user]}"}) as c:  # fmt: skip
                r = c.post("/api/v1/access-requests", json={"resource_ids": [resource],
                           "permission": perm, "duration_seconds": 60})  # fmt: skip
                r.raise_for_status()
                return str(r.json()["id"])

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(submit, plan))
        print(f"submitted {n} requests in {time.perf_counter() - started:.1f}s")
        with live.http() as admin:

            def finished() -> list[dict[str, Any]] | None:
                rows = admin.get("/api/v1/access-requests",
                                 params={"scope": "all", "limit": 500}).json()  # fmt: skip
                done = [r for r in rows if r["state"] in ("expired", "failed")]
                return rows if len(done) >= len(ids) else None

            rows = _wait(finished, 60 + 600)
        granted = [r for r in rows if r["granted_at"]]
        lat = [(ts(r["granted_at"]) - ts(r["created_at"])).total_seconds() for r in granted]
        lag = [(ts(r["ended_at"]) - ts(r["expires_at"])).total_seconds()
               for r in granted if r["ended_at"]]  # fmt: skip
        span = (max(ts(r["granted_at"]) for r in granted)
                - min(ts(r["created_at"]) for r in granted)).total_seconds()  # fmt: skip
        failed = len([r for r in rows if r["state"] == "failed"])
        print(
            f"request→granted: p50 {pct(lat, 0.5):.2f}s p99 {pct(lat, 0.99):.2f}s "
            f"({len(granted)} granted, {failed} failed)"
        )
        print(f"expiry→revoked lag: p50 {pct(lag, 0.5):.2f}s p99 {pct(lag, 0.99):.2f}s")
        print(f"throughput: {len(granted) / span:.1f} grants/s sustained over {span:.0f}s")
    finally:
        live.stop_all()
        moto.stop()


def eligibility_part(resources: int, flows: int, tmp: Path, samples: int = 20) -> None:
    from grantflow.services.startup import prepare_database
    from grantflow.settings import Settings
    from grantflow.store.models import (
        AccessFlow,
        Connector,
        Group,
        GroupMembership,
        Integration,
        Resource,
    )

    db_url = f"sqlite:///{tmp}/elig.db"
    settings = Settings(database_url=db_url, admin_token="gf_pat_bench-admin-token-0123456789")
    prepare_database(settings)
    engine = build_engine(db_url)
    with transaction(session_factory(engine)) as s:
        s.add(Connector(id="gfc-benchbenchbenchbench", name="c", kind="managed",
                        token_hash="x" * 64, token_prefix="x"))  # fmt: skip
        s.flush()
        integ = Integration(name="bench", type="aws-organization",
                            connector_id="gfc-benchbenchbenchbench",
                            resource_types=["aws-account", "s3-bucket"],
                            facts={"identity_store_id": "d-bench"},
                            config={"region": "us-east-1", "sso_region": "us-east-1",
                                    "sso_portal": "https://x.awsapps.com/start",
                                    "management_role_arn": "arn:aws:iam::111111111111:role/r"})  # fmt: skip
        groups = [Group(name=f"team-{i}") for i in range(50)]
        member = User(username="member")
        s.add_all([integ, member, *groups])
        s.flush()
        s.add(DirectoryPrincipal(identity_store_id="d-bench", principal_id="u-1",
                                 user_id=member.id, user_name="member", matched_by="admin"))  # fmt: skip
        s.add_all(GroupMembership(group_id=g.id, user_id=member.id) for g in groups[:3])
        s.bulk_insert_mappings(Resource, [
            {"id": str(uuid.uuid4()), "integration_id": integ.id, "type": "s3-bucket",
             "aws_id": f"bucket-{i}", "name": f"bucket-{i}", "account_id": f"{i % 1000:012d}",
             "region": "us-east-1", "ou_path": ["r-1", f"ou-1-{i % 40:08d}"],
             "tags": {"owner": f"team-{i % 50}"}, "attributes": {}, "owners": [],
             "sync_generation": 1} for i in range(resources)])  # fmt: skip
        s.add_all(AccessFlow(name=f"flow-{i}", integration_id=integ.id, definition={
            "requestors": {"group_ids": [groups[i % 50].id]},
            "scope": {"resource_types": ["s3-bucket"], "mode": "tag",
                      "tag": {"key": "owner", "value": f"team-{i % 50}"}},
            "permissions": {"s3-bucket": ["read-only"]}, "approval": {"mode": "auto"}})
            for i in range(flows))  # fmt: skip
        token = create_personal_token(s, member, "bench", SYSTEM).plaintext
    engine.dispose()
    from fastapi.testclient import TestClient

    from grantflow.api.app import create_app

    times = []
    with TestClient(create_app(settings, run_workers=False)) as client:
        for _ in range(samples):
            t = time.perf_counter()
            r = client.get("/api/v1/requestable", params={"limit": 50},
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            times.append(time.perf_counter() - t)
            total = r.json()["total"]
    print(
        f"eligibility ({resources} resources, {flows} flows, {total} requestable): "
        f"p50 {pct(times, 0.5) * 1000:.0f} ms, p95 {pct(times, 0.95) * 1000:.0f} ms, "
        f"mean {statistics.mean(times) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--flows", type=int, default=500)
    parser.add_argument("--skip-grants", action="store_true")
    parser.add_argument("--async", dest="async_spec", default="in_progress=2s",
                        help="GRANTFLOW_EMULATE_IC_ASYNC for the managed connector ('' = off)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        eligibility_part(args.resources, args.flows, Path(tmp))
        if not args.skip_grants:
            grants_part(args.requests, Path(tmp), args.async_spec)


if __name__ == "__main__":
    main()
