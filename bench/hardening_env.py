"""Shared by the hardening runs (bench/faults.py, bench/chaos.py, bench/replicas.py) and their
short variants under tests/hardening: an emulated organization with Grantflow deployed, a
self-hosted connector process, grant/revoke cycles driven through the API, and the checks.

The checks compare AWS (``ListAccountAssignments`` for every account and permission set the
cycles use) with Grantflow's database:

* no lost revocation: once every request has ended, AWS holds exactly the assignments it
  held before the run (what existed before Grantflow stays, everything granted is gone);
* no duplicate assignment: sampled while the cycles run and at the end (moto, unlike
  Identity Center, keeps a second copy when an assignment is created twice);
* every request and grant in a final state, with its audit events (created, approved,
  granted, expiry or revocation, ended) each recorded once, and the audit chain intact.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import boto3
import httpx
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from tests.fixtures.live import LiveServer, Proc

from grantflow.demo.deploy import (
    create_connector_role,
    deploy_member_roles,
    deploy_stack,
    management_session,
    stack_set_targets,
)
from grantflow.demo.moto_server import MotoServer, free_loopback_port, start_moto_server
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape
from grantflow.demo.org_summary import OrgSummary
from grantflow.domain.audit_chain import AuditKey, Keyring
from grantflow.services.audit import audit_verify
from grantflow.services.audit.trail import SYSTEM, use_keyring
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import AccessRequest, AuditEvent, DirectoryPrincipal, Grant, Job, User
from grantflow.store.types import utcnow

FINAL = ("expired", "revoked", "failed", "rejected", "cancelled")
AUDIT_KEY = "bench-audit-key-" + "0123456789abcdef" * 2  # every replica shares the one key
Tuple = tuple[str, str, str]  # (account id, permission set ARN, principal id)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


@dataclass
class Stack:
    """Moto + organization + Grantflow server(s) + one self-hosted connector process."""

    tmp: Path
    db_url: str
    moto: MotoServer
    org: OrgSummary
    role_arn: str  # the connector role
    servers: list[LiveServer]
    connector_id: str = ""
    connector_token: str = ""
    connector_env: dict[str, str] = field(default_factory=dict)
    connector_args: tuple[str, ...] = ()  # more `grantflow connector run` options
    connector: Proc | None = None
    integration_id: str = ""
    accounts: list[dict[str, Any]] = field(default_factory=list)  # Grantflow resources
    permission_sets: dict[str, str] = field(default_factory=dict)  # name → ARN
    tokens: dict[str, str] = field(default_factory=dict)  # username → personal token
    engine: Engine | None = None

    @property
    def live(self) -> LiveServer:
        return self.servers[0]

    def sessions(self) -> Any:
        if self.engine is None:
            self.engine = build_engine(self.db_url)
        return use_keyring(session_factory(self.engine), Keyring(AuditKey.from_text(AUDIT_KEY)))

    def start_connector(self) -> Proc:
        self.connector = self.live.start_connector(
            self.connector_id,
            self.connector_token,
            "--lease-seconds",
            "15",
            *self.connector_args,
            env={"GRANTFLOW_CONNECTOR_ROLE_ARN": self.role_arn, **self.connector_env},
        )
        return self.connector

    def stop(self) -> None:
        for server in self.servers:
            server.stop_all()
        if self.engine is not None:
            self.engine.dispose()
        self.moto.stop()


def _server(tmp: Path, db_url: str, name: str, extra: dict[str, str]) -> LiveServer:
    port = free_loopback_port()
    path = tmp / name
    path.mkdir(exist_ok=True)
    env = {"GRANTFLOW_MANAGED_CONNECTOR": "false", "GRANTFLOW_LOG_LEVEL": "WARNING",
           "GRANTFLOW_AUDIT_KEY": AUDIT_KEY, **extra}  # fmt: skip
    return LiveServer(url=f"http://127.0.0.1:{port}", port=port, db_url=db_url, tmp=path,
                      extra_env=env)  # fmt: skip


def build_stack(
    tmp: Path,
    db_url: str,
    *,
    replicas: int = 1,
    connector_env: dict[str, str] | None = None,
    server_env: dict[str, str] | None = None,
    accounts: int = 3,
    shape: OrgShape | None = None,
    permission_sets: int = 2,
    connector_args: tuple[str, ...] = (),
) -> Stack:
    moto = start_moto_server()
    os.environ.update(AWS_ENDPOINT_URL=moto.endpoint, AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    org = build_org(moto.endpoint, shape or OrgShape.small())
    mgmt = management_session(moto.endpoint)
    role = create_connector_role(mgmt)
    servers = [_server(tmp, db_url, f"server-{i}", server_env or {}) for i in range(replicas)]
    stack = Stack(tmp, db_url, moto, org, role, servers, connector_env=connector_env or {},
                  connector_args=connector_args)  # fmt: skip
    try:
        for server in servers:  # one after the other: the first one migrates the schema
            server.start()
        _deploy(stack, mgmt, accounts, permission_sets)
    except BaseException:
        stack.stop()
        raise
    return stack


def _deploy(stack: Stack, mgmt: boto3.Session, n_accounts: int, n_sets: int = 2) -> None:
    org = stack.org
    with stack.live.http() as admin:
        created = admin.post("/api/v1/connectors", json={"name": "hardening",
                                                          "kind": "self_hosted"}).json()  # fmt: skip
        stack.connector_id, stack.connector_token = created["id"], created["token"]
        _, mrole = deploy_stack(mgmt, stack.connector_id, stack.role_arn, org.root_id)
        deploy_member_roles(mgmt, mrole, stack_set_targets(
            org.root_id, [(o.id, o.path) for o in org.ous]), ["us-east-1"])  # fmt: skip
        stack.start_connector()
        body = {"name": "hardening", "connector_id": stack.connector_id,
                "resource_types": ["aws-account"],
                "config": {"region": "us-east-1", "sso_region": org.sso_region,
                           "sso_portal": "https://d-hardening.awsapps.com/start",
                           "management_role_arn": mrole,
                           "exclude_ou_ids": list(org.excluded_ou_ids)}}  # fmt: skip
        integ = admin.post("/api/v1/integrations", json=body).json()
        stack.integration_id = integ["id"]
        wait_for(lambda: admin.get(f"/api/v1/integrations/{integ['id']}").json()["status"]
                 == "active", 300, "the integration to become active")  # fmt: skip
        names = [p.name for p in org.permission_sets][:n_sets]
        stack.permission_sets = {n: org.permission_set_arns[n] for n in names}
        flow = {"requestors": {"everyone": True},
                "scope": {"resource_types": ["aws-account"], "mode": "all"},
                "permissions": {"aws-account": names}, "approval": {"mode": "auto"},
                "max_duration_seconds": 3600, "default_duration_seconds": 60}  # fmt: skip
        r = admin.post("/api/v1/access-flows", json={"name": "hardening",
                       "integration_id": integ["id"], "definition": flow})  # fmt: skip
        r.raise_for_status()
        found = admin.get("/api/v1/resources", params={
            "integration_id": integ["id"], "type": "aws-account", "limit": 500}).json()["items"]  # fmt: skip
        active = [a for a in found if a["attributes"].get("account_status") == "ACTIVE"]
        stack.accounts = sorted(active, key=lambda a: a["aws_id"])[:n_accounts]
    with transaction(stack.sessions()) as session:
        linked = select(DirectoryPrincipal.user_id).where(DirectoryPrincipal.user_id.is_not(None))
        for user in session.scalars(select(User).where(User.id.in_(linked))):
            stack.tokens[user.username] = create_personal_token(
                session, user, "hardening", SYSTEM
            ).plaintext


# --- AWS state -----------------------------------------------------------------------------


def aws_assignments(stack: Stack) -> Counter[Tuple]:
    """Every user assignment of the cycles' permission sets in their accounts (with copies)."""
    sso = boto3.client("sso-admin", region_name=stack.org.sso_region)
    found: Counter[Tuple] = Counter()
    for account in stack.accounts:
        for ps in stack.permission_sets.values():
            pages = sso.get_paginator("list_account_assignments").paginate(
                InstanceArn=stack.org.instance_arn, AccountId=account["aws_id"],
                PermissionSetArn=ps)  # fmt: skip
            for page in pages:
                for a in page["AccountAssignments"]:
                    if a["PrincipalType"] == "USER":
                        found[(a["AccountId"], a["PermissionSetArn"], a["PrincipalId"])] += 1
    return found


# --- the cycles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    index: int
    username: str
    resource_id: str
    permission: str
    revoke_after: float | None  # seconds after granted; None: let it expire
    server: int = 0  # which replica takes the request


def plan_cycles(stack: Stack, n: int, seed: int, revoke_share: float = 0.5) -> list[Cycle]:
    rng = random.Random(seed)
    users = sorted(stack.tokens)
    return [
        Cycle(
            i,
            rng.choice(users),
            rng.choice(stack.accounts)["id"],
            rng.choice(sorted(stack.permission_sets)),
            rng.uniform(0.0, 5.0) if rng.random() < revoke_share else None,
            i % len(stack.servers),
        )
        for i in range(n)
    ]


@dataclass
class Driver:
    """Submits cycles at a pace, revokes the ones that are to be revoked once granted,
    samples AWS for duplicates, and waits until every request has ended."""

    stack: Stack
    cycles: list[Cycle]
    submit_per_second: float = 4.0
    fast_expiry: bool = False  # move expiry to "now" once granted (tests cannot wait 60 s)
    duration_seconds: int = 60
    request_ids: dict[int, str] = field(default_factory=dict)
    submit_errors: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    duplicates_seen: dict[Tuple, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _client(self, cycle: Cycle, token: str) -> httpx.Client:
        server = self.stack.servers[cycle.server]
        return httpx.Client(base_url=server.url, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def _post(self, cycle: Cycle, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST, retrying while the server is down (the chaos run kills it)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                with self._client(cycle, token) as c:
                    r = c.post(path, json=body)
                if r.status_code < 500:
                    return r
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def _submit(self, cycle: Cycle) -> None:
        body = {"resource_ids": [cycle.resource_id], "permission": cycle.permission,
                "duration_seconds": self.duration_seconds}  # fmt: skip
        r = self._post(cycle, self.stack.tokens[cycle.username], "/api/v1/access-requests", body)
        if r.status_code != 201:
            self.submit_errors.append(f"{r.status_code} {r.text[:200]}")
            return
        self.request_ids[cycle.index] = r.json()["id"]

    def _submitter(self) -> None:
        started = time.monotonic()
        for n, cycle in enumerate(self.cycles):
            time.sleep(max(0.0, started + n / self.submit_per_second - time.monotonic()))
            self._submit(cycle)

    def _rows(self) -> list[AccessRequest]:
        with transaction(self.stack.sessions()) as session:
            rows = list(session.scalars(select(AccessRequest)))
            session.expunge_all()
            return rows

    def _act(self, rows: list[AccessRequest]) -> None:
        by_id = {r.id: r for r in rows}
        now = utcnow()
        for cycle in self.cycles:
            rid = self.request_ids.get(cycle.index)
            row = by_id.get(rid) if rid else None
            if row is None or row.state != "granted" or rid in self.revoked or rid is None:
                continue
            assert row.granted_at is not None
            held = (now - row.granted_at).total_seconds()
            if cycle.revoke_after is not None and held >= cycle.revoke_after:
                self.revoked.add(rid)
                r = self._post(cycle, self.stack.live.admin_token,
                               f"/api/v1/access-requests/{rid}/revoke", {})  # fmt: skip
                if r.status_code not in (200, 409):
                    self.submit_errors.append(f"revoke {r.status_code} {r.text[:200]}")
            elif cycle.revoke_after is None and self.fast_expiry and held >= 1.0:
                self.revoked.add(rid)
                with transaction(self.stack.sessions()) as session:
                    session.execute(update(AccessRequest).where(
                        AccessRequest.id == rid, AccessRequest.state == "granted")
                        .values(expires_at=utcnow()))  # fmt: skip

    def _sample(self) -> None:
        try:
            found = aws_assignments(self.stack)
        except Exception:  # noqa: BLE001 - moto busy; the next sample will do
            return
        self.samples += 1
        for key, copies in found.items():
            if copies > 1:
                self.duplicates_seen[key] = max(copies, self.duplicates_seen.get(key, 0))

    def run(self, timeout: float, on_tick: Callable[[], None] | None = None) -> float:
        """Drive every cycle to its end; returns the wall time in seconds."""
        started = time.monotonic()
        submitter = threading.Thread(target=self._submitter, daemon=True)
        submitter.start()
        last_sample = 0.0
        while True:
            if time.monotonic() - started > timeout:
                raise TimeoutError(self.progress())
            if on_tick is not None:
                on_tick()
            try:
                rows = self._rows()
            except Exception:  # noqa: BLE001 - e.g. SQLite busy during a restart
                time.sleep(0.5)
                continue
            self._act(rows)
            if time.monotonic() - last_sample > 5:
                self._sample()
                last_sample = time.monotonic()
            done = {r.id for r in rows if r.state in FINAL}
            if not submitter.is_alive() and set(self.request_ids.values()) <= done:
                return time.monotonic() - started
            time.sleep(0.5)

    def progress(self) -> str:
        states = Counter(r.state for r in self._rows())
        return f"{len(self.request_ids)}/{len(self.cycles)} submitted; states {dict(states)}"


# --- checks and figures --------------------------------------------------------------------


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def print(self, title: str) -> None:
        print(f"== {title}")
        for key, value in self.figures.items():
            print(f"{key}: {value}")
        print("problems: " + ("none" if not self.problems else ""))
        for problem in self.problems:
            print(f"  - {problem}")

    def timed(self, wall: float, started: float) -> Report:
        """Add the run's two durations: the cycles alone, and with setup."""
        self.figures["cycles wall time"] = f"{wall:.0f}s"
        self.figures["total time (with setup)"] = f"{time.monotonic() - started:.0f}s"
        return self


def run_and_exit(title: str, run: Callable[[Path], Report]) -> NoReturn:
    """A script's main: run in a scratch directory, print the figures, exit 1 on a problem.
    With ``GRANTFLOW_EMULATE_IC_ASYNC`` set (``make hardening`` sets it), the connectors see
    Identity Center's asynchrony emulated; the figures then say what the emulator did."""
    emulated = os.environ.get(IC_ASYNC_VAR, "").strip()
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "ic_async.json"
        if emulated and "stats=" not in emulated:
            os.environ[IC_ASYNC_VAR] = f"{emulated},stats={stats}"
        report = run(Path(tmp))
        if emulated:
            report.figures["emulated Identity Center asynchrony"] = emulated_figure(
                emulated, fault_stats(stats)
            )
    report.print(title)
    sys.exit(1 if report.problems else 0)


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a is not None and b is not None else None


EXPECTED_EVENTS = ("request.created", "request.approve", "request.start_grant", "request.granted")


def verify(stack: Stack, driver: Driver, baseline: Counter[Tuple]) -> Report:
    report = Report()
    final = aws_assignments(stack)
    lost = sorted(set(final) - set(baseline))
    gone = sorted(set(baseline) - set(final))
    dupes = {k: c for k, c in final.items() if c > 1} | driver.duplicates_seen
    report.check(not lost, f"{len(lost)} assignment(s) outlived their grant: {lost[:5]}")
    report.check(not gone, f"{len(gone)} assignment(s) that existed before were removed")
    report.check(not dupes, f"duplicate assignments: {list(dupes.items())[:5]}")
    report.check(not driver.submit_errors, f"API errors: {driver.submit_errors[:5]}")
    ids = set(driver.request_ids.values())
    with transaction(stack.sessions()) as session:
        requests = [r for r in session.scalars(select(AccessRequest)) if r.id in ids]
        grants = [g for g in session.scalars(select(Grant)) if g.request_id in ids]
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        jobs_ = [j for j in session.scalars(select(Job)) if j.type in ("grant", "revoke")]
        chain = audit_verify.verify(session)
        states = Counter(r.state for r in requests)
        report.check(len(requests) == len(driver.cycles),
                     f"{len(requests)} requests for {len(driver.cycles)} cycles")  # fmt: skip
        report.check(states.get("failed", 0) == 0, f"{states.get('failed')} request(s) failed")
        open_requests = [r.id for r in requests if r.state not in FINAL]
        report.check(not open_requests, f"requests not ended: {open_requests[:5]}")
        open_grants = [(g.id, g.state) for g in grants if g.state not in ("revoked", "failed")]
        report.check(not open_grants, f"grants not in a final state: {open_grants[:5]}")
        _check_audit(report, requests, grants, events)
        report.check(chain.ok, f"audit chain broken: {chain.as_dict()}")
        report.figures["requests"] = dict(states)
        report.figures["audit events"] = f"{chain.events} (chain verified: {chain.ok})"
        _timings(report, requests, events)
        _job_figures(report, grants, jobs_)
    report.figures["AWS assignments at the end"] = (
        f"{sum(final.values())} (= {sum(baseline.values())} before the run; "
        f"{len(lost)} left behind, {len(dupes)} duplicated; {driver.samples} samples)"
    )
    return report


def _check_audit(report: Report, requests: list[AccessRequest], grants: list[Grant],
                 events: list[AuditEvent]) -> None:  # fmt: skip
    per: Counter[tuple[str, str]] = Counter((e.target_id or "", e.action) for e in events)
    missing: list[tuple[str, str, int]] = []
    extra: list[tuple[str, str, int]] = []
    for r in requests:
        ended = "request.expire" if r.end_reason == "expired" else "request.revoke"
        for action in (*EXPECTED_EVENTS, ended, f"request.{r.state}"):
            n = per[(r.id, action)]
            (missing if n == 0 else extra if n > 1 else []).append((r.id, action, n))
    for g in grants:
        if g.state == "revoked":
            for action in ("grant.granted", "grant.revoked"):
                if per[(g.id, action)] == 0:
                    missing.append((g.id, action, 0))
    report.check(not missing, f"{len(missing)} audit event(s) missing: {missing[:5]}")
    report.check(not extra, f"{len(extra)} audit event(s) recorded twice: {extra[:5]}")


def _timings(report: Report, requests: list[AccessRequest], events: list[AuditEvent]) -> None:
    revoke_at = {e.target_id: e.occurred_at for e in events if e.action == "request.revoke"}
    granted = [s for r in requests if (s := _seconds(r.created_at, r.granted_at)) is not None]
    expired = [s for r in requests if r.end_reason == "expired"
               and (s := _seconds(r.expires_at, r.ended_at)) is not None]  # fmt: skip
    revoked = [s for r in requests if r.end_reason != "expired"
               and (s := _seconds(revoke_at.get(r.id), r.ended_at)) is not None]  # fmt: skip

    def line(values: list[float]) -> str:
        return f"p50 {pct(values, 0.5):.1f}s, p95 {pct(values, 0.95):.1f}s (n={len(values)})"

    report.figures["request→granted"] = line(granted)
    report.figures["expiry→revoked"] = line(expired)
    report.figures["revoke→revoked"] = line(revoked)


def _job_figures(report: Report, grants: list[Grant], jobs_: list[Job]) -> None:
    ours = {g.id for g in grants}
    mine = [j for j in jobs_ if j.payload.get("grant_id") in ours]
    runs: Counter[tuple[str, str]] = Counter()
    for j in mine:
        if j.state == "succeeded":
            runs[(str(j.payload["grant_id"]), j.type)] += 1
    extra_attempts = sum(max(0, j.attempts - 1) for j in mine)
    report.figures["grant/revoke jobs"] = (
        f"{len(mine)} jobs, {sum(j.attempts for j in mine)} attempts "
        f"({extra_attempts} job-level retries), failed: {sum(j.state == 'failed' for j in mine)}"
    )
    again = {k: n for k, n in runs.items() if n > 1}
    report.figures["grants run more than once (succeeded jobs)"] = len(again)
    report.figures["mean grant/revoke job time"] = (
        f"{statistics.mean(_seconds(j.created_at, j.finished_at) or 0 for j in mine):.1f}s"
        if mine
        else "-"
    )


IC_ASYNC_VAR = "GRANTFLOW_EMULATE_IC_ASYNC"


def emulated_figure(spec: str, stats: dict[str, Any]) -> str:
    """One line on what the emulated Identity Center did (its stats file's counters)."""
    counts = stats.get("counts", {})
    ops = ", ".join(
        f"{counts.get(f'{kind}_started', 0)} {kind}s ({counts.get(f'{kind}_failed', 0)} FAILED)"
        for kind in ("create", "delete", "provision")
    )
    return (f"{spec}: {ops}, {counts.get('conflicts', 0)} conflicts, "
            f"{counts.get('create_of_existing', 0)} creates of an existing assignment; most "
            f"IN_PROGRESS at once {stats.get('max_in_flight', 0)}")  # fmt: skip


def fault_stats(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def merged(stats: Iterable[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"attempts": 0, "calls": 0, "retries": 0, "faults": Counter()}
    for s in stats:
        for key in ("attempts", "calls", "retries"):
            out[key] += s.get(key, 0)
        out["faults"].update(s.get("faults", {}))
    out["faults"] = dict(out["faults"])
    return out
