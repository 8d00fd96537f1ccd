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
import dataclasses
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
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
from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import AccessRequest, DirectoryPrincipal, User
from grantflow.store.types import utcnow


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


# Identity Center calls of a grant and of a revoke (reads before a create count as the grant's)
GRANT_OPS = ("CreateAccountAssignment", "DescribeAccountAssignmentCreationStatus",
             "ListAccountAssignmentCreationStatus", "ListAccountAssignments",
             "ListAccountAssignmentsForPrincipal")  # fmt: skip
REVOKE_OPS = ("DeleteAccountAssignment", "DescribeAccountAssignmentDeletionStatus",
              "ListAccountAssignmentDeletionStatus")  # fmt: skip


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


class CallSampler:
    """Samples the connector's call counter (the fault injector at rate 0: a botocore
    ``before-call`` hook on every sso-admin client) to find the most calls in any second."""

    def __init__(self, path: Path, every: float = 0.25) -> None:
        self.path, self.every = path, every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append((time.monotonic(), int(_json(self.path).get("calls", 0))))

    def __enter__(self) -> CallSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_per_second(self) -> int:
        peak = 0
        for i, (t0, c0) in enumerate(self.samples):
            for t1, c1 in self.samples[i + 1 :]:
                if t1 - t0 > 1.0 + 1e-6:
                    break
                peak = max(peak, c1 - c0)
        return peak


def _sso_ops(path: Path) -> Counter[str]:
    ops = _json(path).get("operations", {})
    return Counter({k.removeprefix("sso-admin."): int(v) for k, v in ops.items()})


def _per(ops: Counter[str], names: tuple[str, ...], count: int) -> str:
    total = sum(ops[name] for name in names)
    detail = ", ".join(f"{name} {ops[name]}" for name in names if ops[name])
    return f"{total / max(count, 1):.2f} ({total} calls: {detail or 'none'})"


def grants_part(n: int, tmp: Path, emulated_async: str = "in_progress=2s", users: int = 30) -> None:
    moto = start_moto_server()
    os.environ.update(AWS_ENDPOINT_URL=moto.endpoint, AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    org = build_org(moto.endpoint, dataclasses.replace(OrgShape.small(), users=users))
    session = management_session(moto.endpoint)
    role = create_connector_role(session)
    port = free_loopback_port()
    calls_path, async_path = tmp / "ic_calls.json", tmp / "ic_async.json"
    extra_env = {"GRANTFLOW_MANAGED_CONNECTOR": "true", "GRANTFLOW_CONNECTOR_ROLE_ARN": role,
                 "GRANTFLOW_LOG_LEVEL": "WARNING",
                 # counts every sso-admin call (rate 0: no faults are injected)
                 "GRANTFLOW_FAULT_INJECTION": f"rate=0,services=sso-admin,stats={calls_path}"}  # fmt: skip
    if emulated_async:
        extra_env["GRANTFLOW_EMULATE_IC_ASYNC"] = f"{emulated_async},stats={async_path}"
    live = LiveServer(url=f"http://127.0.0.1:{port}", port=port,
                      db_url=f"sqlite:///{tmp}/bench.db", tmp=tmp, extra_env=extra_env)  # fmt: skip
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
        names = sorted(tokens)
        perms = [p.name for p in org.permission_sets]
        plan = [(names[i % len(names)], accounts[(i // len(names)) % len(accounts)]["id"],
                 perms[(i // (len(names) * len(accounts))) % len(perms)]) for i in range(n)]  # fmt: skip
        print(f"{n} requests on {len(set(plan))} distinct (user, account, permission set) "
              f"tuples ({len(names)} users x {len(accounts)} accounts x {len(perms)} sets)")  # fmt: skip

        def submit(item: tuple[str, str, str]) -> str:
            user, resource, perm = item
            with httpx.Client(base_url=live.url, timeout=60,
                              headers={"Authorization": f"Bearer {tokens[user]}"}) as c:  # fmt: skip
                for attempt in range(10):  # 503: the server did not answer in time (busy)
                    r = c.post("/api/v1/access-requests", json={"resource_ids": [resource],
                               "permission": perm, "duration_seconds": 60})  # fmt: skip
                    if r.status_code != 503:
                        break
                    time.sleep(0.5 * (attempt + 1))
                r.raise_for_status()
                return str(r.json()["id"])

        before = _sso_ops(calls_path)  # the sync's calls
        with CallSampler(calls_path) as sampler:
            started = time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                ids = list(pool.map(submit, plan))
            print(f"submitted {n} requests in {time.perf_counter() - started:.1f}s")
            with live.http() as admin:

                def finished() -> list[dict[str, Any]] | None:
                    rows = admin.get("/api/v1/access-requests",
                                     params={"scope": "all", "limit": 500}).json()  # fmt: skip
                    done = [r for r in rows if r["state"] in ("expired", "failed")]
                    return rows if len(done) >= len(ids) else None

                rows = _wait(finished, 60 + 600)
        ops = _sso_ops(calls_path) - before
        granted = [r for r in rows if r["granted_at"]]
        ended = [r for r in granted if r["ended_at"]]
        lat = [(ts(r["granted_at"]) - ts(r["created_at"])).total_seconds() for r in granted]
        lag = [(ts(r["ended_at"]) - ts(r["expires_at"])).total_seconds() for r in ended]
        span = (max(ts(r["granted_at"]) for r in granted)
                - min(ts(r["created_at"]) for r in granted)).total_seconds()  # fmt: skip
        revoke_span = (max(ts(r["ended_at"]) for r in ended)
                       - min(ts(r["expires_at"]) for r in ended)).total_seconds()  # fmt: skip
        failed = len([r for r in rows if r["state"] == "failed"])
        print(
            f"request→granted: p50 {pct(lat, 0.5):.2f}s p99 {pct(lat, 0.99):.2f}s "
            f"({len(granted)} granted, {failed} failed)"
        )
        print(f"expiry→revoked lag: p50 {pct(lag, 0.5):.2f}s p99 {pct(lag, 0.99):.2f}s")
        print(f"throughput: {len(granted) / span:.1f} grants/s sustained over {span:.0f}s; "
              f"{len(ended) / max(revoke_span, 1e-9):.1f} revokes/s over {revoke_span:.0f}s")  # fmt: skip
        _report_calls(ops, len(granted), len(ended))
        stats = _json(calls_path)
        emulated = _json(async_path)
        in_flight = emulated.get("max_in_flight", "n/a (moto answers at once)")
        print(f"limits: most assignment operations IN_PROGRESS at once {in_flight} (AWS: 10); "
              f"most sso-admin calls in any 1 s {sampler.peak_per_second()} (AWS: 20/s); "
              f"retried attempts (throttling and errors) {stats.get('retries', 0)}; "
              f"failed requests {failed}")  # fmt: skip
        if emulated:
            print(f"  emulated Identity Center: {dict(sorted(emulated.get('counts', {}).items()))}")
    finally:
        live.stop_all()
        moto.stop()


def _report_calls(ops: Counter[str], granted: int, revoked: int) -> None:
    print(f"Identity Center calls per grant: {_per(ops, GRANT_OPS, granted)}")
    print(f"Identity Center calls per revoke: {_per(ops, REVOKE_OPS, revoked)}")
    other = {k: v for k, v in ops.items() if v and k not in GRANT_OPS + REVOKE_OPS}
    print(f"  all sso-admin calls: {sum(ops.values())} "
          f"({sum(ops.values()) / max(granted, 1):.2f} per grant-and-revoke); "
          f"other operations: {other or 'none'}")  # fmt: skip


def burst_part(n: int, tmp: Path, emulated_async: str, users: int) -> None:
    """A burst that drains: ``n`` requests queued while the (self-hosted) connector is
    stopped, then the connector starts and works through all of them at once; assignments/s
    is measured from its start to the last grant, so the submission pace does not bound it."""
    from bench import hardening_env as env

    calls_path, async_path = tmp / "ic_calls.json", tmp / "ic_async.json"
    connector_env = {"GRANTFLOW_FAULT_INJECTION": f"rate=0,services=sso-admin,stats={calls_path}"}
    if emulated_async:
        connector_env["GRANTFLOW_EMULATE_IC_ASYNC"] = f"{emulated_async},stats={async_path}"
    shape = dataclasses.replace(OrgShape.small(), name="burst", member_accounts=12, users=users)
    stack = env.build_stack(tmp, f"sqlite:///{tmp}/burst.db", connector_env=connector_env,
                            accounts=shape.member_accounts, shape=shape, permission_sets=4)  # fmt: skip
    print(f"emulated Identity Center asynchrony: {emulated_async or 'off'}")
    try:
        names = sorted(stack.tokens)
        tuples = [(u, a["id"], p) for p in sorted(stack.permission_sets)
                  for a in stack.accounts for u in names][:n]  # fmt: skip
        if len(tuples) < n:
            raise SystemExit(f"{n} requests need {n} tuples; the organization has {len(tuples)}")
        assert stack.connector is not None
        stack.connector.terminate()  # jobs queue up while it is away
        before = _sso_ops(calls_path)

        def submit(item: tuple[str, str, str]) -> str:
            user, resource, perm = item
            with httpx.Client(base_url=stack.live.url, timeout=60,
                              headers={"Authorization": f"Bearer {stack.tokens[user]}"}) as c:  # fmt: skip
                for attempt in range(10):  # 503: the server did not answer in time (busy)
                    r = c.post("/api/v1/access-requests", json={"resource_ids": [resource],
                               "permission": perm, "duration_seconds": 60})  # fmt: skip
                    if r.status_code != 503:
                        break
                    time.sleep(0.5 * (attempt + 1))
                r.raise_for_status()
                return str(r.json()["id"])

        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            ids = set(pool.map(submit, tuples))
        print(f"queued {n} requests on distinct tuples ({len(names)} users x "
              f"{len(stack.accounts)} accounts x {len(stack.permission_sets)} sets) "
              f"in {time.perf_counter() - started:.1f}s, the connector stopped")  # fmt: skip
        with CallSampler(calls_path) as sampler:
            began = utcnow()
            stack.start_connector()

            def rows() -> list[AccessRequest] | None:
                with transaction(stack.sessions()) as session:
                    found = [r for r in session.scalars(select(AccessRequest)) if r.id in ids]
                    session.expunge_all()
                done = [r for r in found if r.state in ("expired", "failed")]
                return found if len(done) >= len(ids) else None

            found = _wait(rows, 1800)
        ops = _sso_ops(calls_path) - before
        granted = [r for r in found if r.granted_at is not None]
        ended = [r for r in granted if r.ended_at is not None and r.expires_at is not None]
        span = (max(r.granted_at for r in granted if r.granted_at) - began).total_seconds()
        first_expiry = min(r.expires_at for r in ended if r.expires_at)
        revoke_span = (max(r.ended_at for r in ended if r.ended_at) - first_expiry).total_seconds()
        lag = [(r.ended_at - r.expires_at).total_seconds() for r in ended
               if r.ended_at and r.expires_at]  # fmt: skip
        failed = len(found) - len(granted)
        times = sorted(r.granted_at for r in granted if r.granted_at)
        tenth = (times[-1] - times[9]).total_seconds() if len(times) > 10 else 0.0
        after_start = f"{(len(times) - 10) / tenth:.1f}/s" if tenth > 0 else "n/a"
        print(f"burst: {len(granted)} granted in {span:.1f}s from the connector's start = "
              f"**{len(granted) / span:.1f} assignments/s** ({after_start} from the 10th grant "
              f"on: the connector's start-up left out); {failed} failed")  # fmt: skip
        print(f"their expiries: {len(ended)} revoked within {revoke_span:.1f}s of the first "
              f"({len(ended) / max(revoke_span, 1e-9):.1f}/s); expiry→revoked "
              f"p50 {pct(lag, 0.5):.2f}s p99 {pct(lag, 0.99):.2f}s")  # fmt: skip
        _report_calls(ops, len(granted), len(ended))
        stats, emulated = _json(calls_path), _json(async_path)
        in_flight = emulated.get("max_in_flight", "n/a (moto answers at once)")
        print(f"limits: most assignment operations IN_PROGRESS at once {in_flight} (AWS: 10); "
              f"most sso-admin calls in any 1 s {sampler.peak_per_second()} (AWS: 20/s); "
              f"retried attempts (throttling and errors) {stats.get('retries', 0)}")  # fmt: skip
        if emulated:
            print(f"  emulated Identity Center: {dict(sorted(emulated.get('counts', {}).items()))}")
    finally:
        stack.stop()


def eligibility_part(resources: int, flows: int, tmp: Path, samples: int = 20) -> None:
    from grantflow.services.runtime.startup import prepare_database
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
    parser.add_argument("--skip-eligibility", action="store_true")
    parser.add_argument("--burst", action="store_true",
                        help="queue the requests while a self-hosted connector is stopped, then "
                             "time how fast it drains them")  # fmt: skip
    parser.add_argument("--users", type=int, default=30,
                        help="directory users: requests cycle users, then accounts, then sets")  # fmt: skip
    parser.add_argument("--async", dest="async_spec", default="in_progress=2s",
                        help="GRANTFLOW_EMULATE_IC_ASYNC for the managed connector ('' = off)")  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_eligibility:
            eligibility_part(args.resources, args.flows, Path(tmp))
        if args.burst:
            burst_part(args.requests, Path(tmp), args.async_spec, args.users)
        elif not args.skip_grants:
            grants_part(args.requests, Path(tmp), args.async_spec, args.users)


if __name__ == "__main__":
    main()
