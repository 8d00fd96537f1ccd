"""Benchmark: a discovery sync end to end — server, connector process, job, report, ingest.

For each size in ``--accounts`` (member accounts, ~20 resources each), with the organization in
a moto server that outlives the run (built once per size and reused; see bench/sync_org.py):

1. ``grantflow serve`` on a new SQLite database (its own process, no managed connector), a
   self-hosted connector registered through the API and ``grantflow connector run`` (its own
   process, running as the connector role);
2. an integration created through the API (all resource types, the organization's regions,
   the excluded OU): its verify job, then its first sync — the connector's ``sync`` job walks
   the organization, streams each account's inventory to the server, which ingests it, then
   reports the summary, which the server lands (sweep, permissions, directory, owners);
3. the processes stopped, then the floor: a bare boto3 script making the calls the walk needs
   with the same concurrency (bench/sync_floor.py).

Printed per size: the sync's wall time (the sync run's start to its end, as the server
recorded them), the AWS calls the connector made (counted by its botocore ``before-call``
hook, per operation: the summary's ``aws_calls_by_operation``) against the floor's (the
minimum), the wall-time ratio to the floor, and the peak RSS of the server process and of the
connector process, each sampled from /proc (VmRSS of the process and its children, every
0.1 s, and the kernel's VmHWM high-water mark).

    PYTHONPATH=. .venv/bin/python bench/sync.py --accounts 100,300,1000
    PYTHONPATH=. .venv/bin/python bench/sync.py --accounts 110 --managed   # serve with its managed connector
    PYTHONPATH=. .venv/bin/python bench/sync.py --stop-moto                # stop the cached moto servers
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from tests.fixtures.live import LiveServer, Proc

from bench.sync_floor import run_floor
from bench.sync_org import CachedOrg, ensure_org, stop_cached
from grantflow.aws import registry
from grantflow.demo.moto_server import free_loopback_port
from grantflow.store.db import build_engine
from grantflow.store.models import Job, SyncRun

SYNC_TIMEOUT_SECONDS = 3 * 3600
FINAL = ("succeeded", "warning", "failed")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                stack.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class RssSampler:
    """Samples the summed VmRSS of each named process tree; keeps the peak and the last."""

    pids: dict[str, int]
    every: float = 0.1
    peak_kb: dict[str, int] = field(default_factory=dict)
    last_kb: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for name, pid in self.pids.items():
            rss = sum(_status_kb(p, "VmRSS") for p in _tree(pid))
            self.last_kb[name] = rss
            self.peak_kb[name] = max(self.peak_kb.get(name, 0), rss)

    def high_water_kb(self, name: str) -> int:
        return max(_status_kb(p, "VmHWM") for p in _tree(self.pids[name]))

    def start(self) -> RssSampler:
        def loop() -> None:
            while not self._stop.wait(self.every):
                self.sample()

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


@dataclass
class Result:
    accounts: int
    synced_accounts: int
    resources: int
    state: str
    wall_seconds: float
    connector_seconds: float
    calls: int
    calls_by_op: dict[str, int]
    floor_calls: int
    floor_by_op: dict[str, int]
    floor_seconds: float
    server_peak_mb: float
    server_hwm_mb: float
    server_after_mb: float
    connector_peak_mb: float
    connector_hwm_mb: float
    server_idle_mb: float
    connector_idle_mb: float
    org_reused: bool

    @property
    def calls_ratio(self) -> float:
        return self.calls / self.floor_calls if self.floor_calls else float("nan")

    @property
    def time_ratio(self) -> float:
        return self.wall_seconds / self.floor_seconds


def _integration_body(org: CachedOrg, connector_id: str) -> dict[str, Any]:
    return {
        "name": f"bench-{org.accounts}",
        "connector_id": connector_id,
        "resource_types": [rt.key for rt in registry.REGISTRY],
        "config": {
            "region": "us-east-1", "sync_regions": org.regions, "sso_region": org.sso_region,
            "sso_portal": "https://d-bench.awsapps.com/start",
            "management_role_arn": org.management_role_arn,
            "exclude_ou_ids": org.excluded_ou_ids,
        },
    }  # fmt: skip


def _wait_for_sync(live: LiveServer, integration_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + SYNC_TIMEOUT_SECONDS
    with live.http() as admin:
        while time.monotonic() < deadline:
            assert live.server is not None and live.server.process is not None
            if live.server.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{live.server.logs()[-4000:]}")
            try:
                answer = admin.get(f"/api/v1/integrations/{integration_id}")
            except httpx.TransportError:  # a busy machine: ask again
                answer = None
            if answer is None or answer.status_code != 200:  # e.g. 503 "did not answer in time"
                time.sleep(1.0)
                continue
            found = answer.json()
            last = found.get("last_sync")
            if last and last["state"] in FINAL and not found.get("current_sync"):
                return dict(last)
            if found["status"] == "error" and not found.get("current_sync"):
                raise RuntimeError(f"integration failed: {found['status_message']}")
            time.sleep(0.5)
    raise TimeoutError("the sync did not end in time")


def _start_server(live: LiveServer, within: float = 600.0) -> None:
    """``grantflow serve``, waiting longer than the tests do: this machine may be busy."""
    live.server = Proc([sys.executable, "-m", "grantflow.cli.main", "serve"], live.env(),
                       live.tmp / "server.log").start()  # fmt: skip
    assert live.server.process is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if live.server.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{live.server.logs()}")
        try:
            if httpx.get(f"{live.url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server did not become ready:\n{live.server.logs()}")


def _start_connector(live: LiveServer, org: CachedOrg, managed: bool) -> tuple[str, Proc | None]:
    with live.http() as admin:
        if managed:
            listed = admin.get("/api/v1/connectors").json()
            items = listed["items"] if isinstance(listed, dict) else listed
            return next(c["id"] for c in items if c["kind"] == "managed"), None
        created = admin.post(
            "/api/v1/connectors", json={"name": "bench", "kind": "self_hosted"}
        ).json()
    proc = live.start_connector(
        created["id"],
        created["token"],
        env={"GRANTFLOW_CONNECTOR_ROLE_ARN": org.connector_role_arn},
    )
    return created["id"], proc


def run_one(
    accounts: int, resources: int, *, fresh: bool, managed: bool, workers: int, floor: bool = True
) -> Result:
    org, reused = ensure_org(accounts, resources, fresh=fresh)
    os.environ.update(org.env())
    tmp = Path(tempfile.mkdtemp(prefix=f"gf-sync-{accounts}-"))
    db_url = f"sqlite:///{tmp / 'grantflow.db'}"
    port = free_loopback_port()
    extra = {"GRANTFLOW_LOG_LEVEL": "WARNING", "GRANTFLOW_LOG_FORMAT": "json"}
    if managed:
        extra.update(GRANTFLOW_MANAGED_CONNECTOR="true",
                     GRANTFLOW_CONNECTOR_ROLE_ARN=org.connector_role_arn)  # fmt: skip
    live = LiveServer(url=f"http://127.0.0.1:{port}", port=port, db_url=db_url, tmp=tmp,
                      extra_env=extra)  # fmt: skip
    _start_server(live)
    try:
        connector_id, connector = _start_connector(live, org, managed)
        assert live.server is not None and live.server.process is not None
        pids = {"server": live.server.process.pid}
        if connector is not None and connector.process is not None:
            pids["connector"] = connector.process.pid
        sampler = RssSampler(pids)
        sampler.sample()
        idle = dict(sampler.last_kb)  # before the sync: what the processes need anyway
        sampler.start()
        with live.http() as admin:
            created = admin.post("/api/v1/integrations", json=_integration_body(org, connector_id))
            created.raise_for_status()
        run = _wait_for_sync(live, created.json()["id"])
        sampler.stop()
        hwm = {name: sampler.high_water_kb(name) for name in pids}
        summary = _summary(db_url, run["id"])
    finally:
        live.stop_all()
    print(f"sync of {accounts} accounts: {run['state']}, run {run['started_at']} → "
          f"{run['finished_at']}, {summary.get('aws_calls')} AWS calls; RSS peak server "
          f"{sampler.peak_kb['server'] / 1024:.0f} MB, connector "
          f"{sampler.peak_kb.get('connector', 0) / 1024:.0f} MB (idle {idle}); floor next",
          flush=True)  # fmt: skip
    floored = run_floor(org, connector_id, workers) if floor else None
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    mb = 1 / 1024
    return Result(
        accounts=accounts, synced_accounts=org.synced_accounts, resources=org.resources,
        state=run["state"], wall_seconds=(finished - started).total_seconds(),
        connector_seconds=float(summary.get("duration_seconds", 0.0)),
        calls=int(summary["aws_calls"]), calls_by_op=dict(summary["aws_calls_by_operation"]),
        floor_calls=floored.total if floored else 0,
        floor_by_op=dict(floored.calls) if floored else {},
        floor_seconds=floored.seconds if floored else float("nan"),
        server_peak_mb=sampler.peak_kb["server"] * mb, server_hwm_mb=hwm["server"] * mb,
        server_after_mb=sampler.last_kb["server"] * mb,
        connector_peak_mb=sampler.peak_kb.get("connector", 0) * mb,
        connector_hwm_mb=hwm.get("connector", 0) * mb, server_idle_mb=idle["server"] * mb,
        connector_idle_mb=idle.get("connector", 0) * mb, org_reused=reused,
    )  # fmt: skip


def _summary(db_url: str, run_id: str) -> dict[str, Any]:
    """The sync job's result: the connector's summary with its per-operation call counts."""
    engine = build_engine(db_url)
    try:
        with engine.connect() as conn:
            job_id = conn.scalar(select(SyncRun.job_id).where(SyncRun.id == run_id))
            result = conn.scalar(select(Job.result).where(Job.id == job_id))
    finally:
        engine.dispose()
    return dict(result or {})


def _print(r: Result) -> None:
    print(
        f"\n== {r.accounts} member accounts ({r.synced_accounts} read, {r.resources} resources; "
        f"organization {'reused' if r.org_reused else 'built'}) — sync {r.state}\n"
        f"wall {r.wall_seconds:.1f} s (connector's walk {r.connector_seconds:.1f} s); "
        f"floor {r.floor_seconds:.1f} s → {r.time_ratio:.2f}x\n"
        f"AWS calls {r.calls} vs minimum {r.floor_calls} → {r.calls_ratio:.3f}x\n"
        f"server RSS peak {r.server_peak_mb:.0f} MB (VmHWM {r.server_hwm_mb:.0f} MB, "
        f"{r.server_after_mb:.0f} MB after the sync, {r.server_idle_mb:.0f} MB before it); "
        f"connector RSS peak {r.connector_peak_mb:.0f} MB (VmHWM {r.connector_hwm_mb:.0f} MB, "
        f"{r.connector_idle_mb:.0f} MB before the sync)",
        flush=True,
    )
    ops = sorted(set(r.calls_by_op) | set(r.floor_by_op))
    differing = [(op, r.calls_by_op.get(op, 0), r.floor_by_op.get(op, 0)) for op in ops
                 if r.calls_by_op.get(op, 0) != r.floor_by_op.get(op, 0)]  # fmt: skip
    for op, ours, theirs in differing:
        print(f"  {op}: grantflow {ours}, floor {theirs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", default="100,300,1000",
                        help="member accounts per organization, comma separated")  # fmt: skip
    parser.add_argument("--resources", type=int, default=20, help="resources per account")
    parser.add_argument("--workers", type=int, default=8,
                        help="the floor's concurrency (the sync reads 8 accounts at a time)")  # fmt: skip
    parser.add_argument("--fresh", action="store_true", help="build the organizations again")
    parser.add_argument("--managed", action="store_true",
                        help="the server's managed connector instead of a connector process")  # fmt: skip
    parser.add_argument("--no-floor", action="store_true", help="skip the bare boto3 floor")
    parser.add_argument("--stop-moto", action="store_true", help="stop the cached moto servers")
    args = parser.parse_args()
    if args.stop_moto:
        print("stopped:", ", ".join(stop_cached()) or "none")
        return
    results = []
    for n in (int(x) for x in args.accounts.split(",")):
        results.append(run_one(n, args.resources, fresh=args.fresh, managed=args.managed,
                               workers=args.workers, floor=not args.no_floor))  # fmt: skip
        _print(results[-1])
    print("\n| accounts | resources | wall | AWS calls / minimum | ÷ boto3 floor "
          "| server RSS peak | connector RSS peak |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for r in results:
        connector = "in server" if args.managed else f"{r.connector_peak_mb:.0f} MB"
        print(f"| {r.accounts} | {r.resources} | {r.wall_seconds:.0f} s | {r.calls} / "
              f"{r.floor_calls} = {r.calls_ratio:.3f}x | {r.time_ratio:.2f}x "
              f"| {r.server_peak_mb:.0f} MB | {connector} |")  # fmt: skip


if __name__ == "__main__":
    main()
