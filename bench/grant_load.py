"""Benchmark: grant latency under a steady load, and how fast a burst drains, with Identity
Center's asynchrony emulated.

A moto server with an organization of 40 users, 11 active accounts and 4 permission sets,
`grantflow serve` (SQLite) and a self-hosted `grantflow connector run` whose Identity Center
operations stay IN_PROGRESS for ``--async``'s time (``GRANTFLOW_EMULATE_IC_ASYNC``; moto
alone answers at once). Two phases, each request on its own (user, account, permission set),
so every grant creates an assignment and every expiry deletes one:

1. steady: ``--rate`` requests/s for ``--minutes``, each for ``--duration`` seconds
   (auto-approved); reports request→granted and expiry→revoked p50/p95/p99 against the goals
   (p99 ≤ 1 s, resp. ≤ 2 s, plus the emulated latency);
2. burst: ``--burst`` requests at once; reports how fast they are granted (assignments/s,
   goal ≥ 10/s) and how fast their expiries are revoked.

After each phase the hardening checks run (AWS holds what it held before, no duplicate
assignment, every request ended with its audit events, the audit chain verifies); exits 1 on a
problem. Also reported: Identity Center calls per grant and per revoke (counted by the fault
injector at rate 0), the most operations IN_PROGRESS at once, and the emulator's counts.

    PYTHONPATH=. .venv/bin/python bench/grant_load.py                 # 5/s for 5 min, burst 1000
    PYTHONPATH=. .venv/bin/python bench/grant_load.py --quick         # the suite's short run
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bench import hardening_env as env
from bench.grants import pct
from grantflow.aws.emulated_async import AsyncSpec
from grantflow.demo.org_shape import OrgShape
from grantflow.store.db import transaction
from grantflow.store.models import AccessRequest

SHAPE = dataclasses.replace(OrgShape.small(), name="grant-load", member_accounts=12, users=40,
                            resources_per_account=1)  # fmt: skip
DEFAULT_ASYNC = "in_progress=2s"
GRANT_GOAL, REVOKE_GOAL, DRAIN_GOAL = 1.0, 2.0, 10.0  # seconds over the emulated latency; /s


@dataclasses.dataclass(frozen=True)
class Options:
    minutes: float = 5.0
    rate: float = 5.0
    duration: int = 120
    burst: int = 1000
    async_spec: str = DEFAULT_ASYNC
    fast_expiry: bool = False  # move expiry to "now" once granted (the suite's short run)
    concurrency: int | None = None  # the connector's --concurrency (default: its own)
    timeout: float = 3600.0
    shape: OrgShape = SHAPE
    permission_sets: int = 4

    @classmethod
    def quick(cls) -> Options:
        return cls(minutes=2 / 60, rate=5, burst=10, async_spec="in_progress=1s,failed=0.2,seed=3",
                   fast_expiry=True, timeout=240, shape=OrgShape.small(),
                   permission_sets=2)  # fmt: skip


class _Paced(env.Driver):
    """Submits at the pace even when one submission takes longer than the gap (16 at once)."""

    def _submitter(self) -> None:
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            for n, cycle in enumerate(self.cycles):
                time.sleep(max(0.0, started + n / self.submit_per_second - time.monotonic()))
                pool.submit(self._submit, cycle)


class _Burst(env.Driver):
    """Submits every cycle at once (16 at a time) instead of at a pace."""

    def _submitter(self) -> None:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(self._submit, self.cycles))


def _cycles(stack: env.Stack, n: int, start: int) -> list[env.Cycle]:
    """``n`` requests on distinct tuples (user, account, permission set), dealt in a fixed
    order from ``start`` so that consecutive phases reuse a tuple only long after."""
    users = sorted(stack.tokens)
    tuples = list(itertools.product(users, stack.accounts, sorted(stack.permission_sets)))
    if n > len(tuples):
        raise SystemExit(f"{n} requests need {n} tuples; the organization has {len(tuples)}")
    picked = [tuples[(start + i) % len(tuples)] for i in range(n)]
    return [env.Cycle(i, user, account["id"], perm, None) for i, (user, account, perm)
            in enumerate(picked)]  # fmt: skip


def _rows(stack: env.Stack, ids: set[str]) -> list[AccessRequest]:
    with transaction(stack.sessions()) as session:
        rows = [r for r in session.scalars(select(AccessRequest)) if r.id in ids]
        session.expunge_all()
        return rows


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return (b - a).total_seconds() if a is not None and b is not None else None


def _line(values: list[float]) -> str:
    return (f"p50 {pct(values, 0.5):.2f}s, p95 {pct(values, 0.95):.2f}s, "
            f"p99 {pct(values, 0.99):.2f}s (n={len(values)})")  # fmt: skip


def _goal(value: float, goal: float) -> str:
    return f"{'met' if value <= goal else 'MISSED'} (goal ≤ {goal:.1f}s)"


def _latencies(rows: list[AccessRequest]) -> tuple[list[float], list[float]]:
    granted = [s for r in rows if (s := _seconds(r.created_at, r.granted_at)) is not None]
    revoked = [s for r in rows if r.end_reason == "expired"
               and (s := _seconds(r.expires_at, r.ended_at)) is not None]  # fmt: skip
    return granted, revoked


def _steady(stack: env.Stack, opts: Options, latency: float, report: env.Report) -> int:
    n = max(1, round(opts.rate * opts.minutes * 60))
    baseline = env.aws_assignments(stack)
    driver = _Paced(stack, _cycles(stack, n, 0), submit_per_second=opts.rate,
                        fast_expiry=opts.fast_expiry, duration_seconds=opts.duration)  # fmt: skip
    wall = driver.run(opts.timeout)
    checked = env.verify(stack, driver, baseline)
    report.problems += [f"steady: {p}" for p in checked.problems]
    granted, revoked = _latencies(_rows(stack, set(driver.request_ids.values())))
    report.figures["steady load"] = (
        f"{n} requests at {opts.rate:g}/s over {opts.minutes:g} min, {opts.duration} s each; "
        f"{wall:.0f}s until all ended; requests {checked.figures.get('requests')}"
    )
    report.figures["steady request→granted"] = (
        f"{_line(granted)} — p99 {_goal(pct(granted, 0.99), GRANT_GOAL + latency)}"
    )
    report.figures["steady expiry→revoked"] = (
        f"{_line(revoked)} — p99 {_goal(pct(revoked, 0.99), REVOKE_GOAL + latency)}"
    )
    report.figures["steady grant/revoke jobs"] = checked.figures.get("grant/revoke jobs")
    return n


def _burst(stack: env.Stack, opts: Options, start: int, report: env.Report) -> None:
    baseline = env.aws_assignments(stack)
    driver = _Burst(stack, _cycles(stack, opts.burst, start), fast_expiry=opts.fast_expiry,
                    duration_seconds=opts.duration)  # fmt: skip
    wall = driver.run(opts.timeout)
    checked = env.verify(stack, driver, baseline)
    report.problems += [f"burst: {p}" for p in checked.problems]
    rows = _rows(stack, set(driver.request_ids.values()))
    granted = [r for r in rows if r.granted_at is not None]
    if not granted:
        report.problems.append("burst: nothing was granted")
        return
    first = min(r.created_at for r in rows)
    submitted = max(r.created_at for r in rows)
    span = max(_seconds(first, r.granted_at) or 0.0 for r in granted)
    drain = len(granted) / span if span > 0 else float("inf")
    report.figures["burst"] = (
        f"{len(rows)} requests submitted in {_seconds(first, submitted):.1f}s; "
        f"{len(granted)} granted in {span:.1f}s = {drain:.1f} assignments/s — "
        f"{'met' if drain >= DRAIN_GOAL else 'MISSED'} (goal ≥ {DRAIN_GOAL:g}/s); "
        f"{wall:.0f}s until all ended"
    )
    expired = [r for r in rows if r.end_reason == "expired" and r.ended_at and r.expires_at]
    if expired:
        out = max(r.ended_at for r in expired if r.ended_at)
        began = min(r.expires_at for r in expired if r.expires_at)
        revoke_span = (out - began).total_seconds()
        _, lag = _latencies(expired)
        report.figures["burst expiry→revoked"] = (
            f"{len(expired)} revoked within {revoke_span:.1f}s of the first expiry "
            f"({len(expired) / max(revoke_span, 1e-9):.1f}/s); {_line(lag)}"
        )


def _ic_figures(tmp: Path, report: env.Report) -> None:
    calls = env.fault_stats(tmp / "calls.json").get("operations", {})
    emulated = env.fault_stats(tmp / "async.json")
    counts = emulated.get("counts", {})
    sso = {k.removeprefix("sso-admin."): v for k, v in calls.items() if k.startswith("sso-admin.")}
    creates = counts.get("create_started", 0)
    deletes = counts.get("delete_started", 0)
    total = sum(sso.values())
    ops = creates + deletes
    report.figures["Identity Center calls"] = (
        f"{total} sso-admin calls for {creates} creates + {deletes} deletes "
        f"= {total / ops if ops else float('nan'):.2f} per assignment operation; "
        f"by operation {dict(sorted(sso.items(), key=lambda kv: -kv[1]))}"
    )
    report.figures["emulated Identity Center"] = (
        f"in_progress {emulated.get('in_progress_seconds')}s, failed share "
        f"{emulated.get('failed_share')}; most IN_PROGRESS at once: "
        f"{emulated.get('max_in_flight')} (AWS allows 10); counts {dict(sorted(counts.items()))}"
    )


def run(opts: Options, tmp: Path) -> env.Report:
    started = time.monotonic()
    spec = AsyncSpec.parse(opts.async_spec)  # a malformed spec fails here, not in the connector
    connector_env = {
        "GRANTFLOW_EMULATE_IC_ASYNC": f"{opts.async_spec},stats={tmp / 'async.json'}",
        "GRANTFLOW_FAULT_INJECTION": f"rate=0,services=sso-admin,stats={tmp / 'calls.json'}",
    }
    args = ("--concurrency", str(opts.concurrency)) if opts.concurrency else ()
    stack = env.build_stack(tmp, f"sqlite:///{tmp}/grant_load.db", connector_env=connector_env,
                            accounts=opts.shape.member_accounts, shape=opts.shape,
                            permission_sets=opts.permission_sets, connector_args=args)  # fmt: skip
    report = env.Report()
    report.figures["setup"] = (
        f"{time.monotonic() - started:.0f}s ({len(stack.tokens)} users x "
        f"{len(stack.accounts)} accounts x {len(stack.permission_sets)} permission sets)"
    )
    try:
        n = _steady(stack, opts, spec.in_progress, report)
        if opts.burst:
            _burst(stack, opts, n, report)
        _ic_figures(tmp, report)
        report.figures["total time (with setup)"] = f"{time.monotonic() - started:.0f}s"
        return report
    finally:
        stack.stop()


def _options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="steady phase length")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
    parser.add_argument("--duration", type=int, default=120, help="seconds each request lasts")
    parser.add_argument("--burst", type=int, default=1000, help="requests at once (0: none)")
    parser.add_argument("--async", dest="async_spec", default=DEFAULT_ASYNC,
                        help="GRANTFLOW_EMULATE_IC_ASYNC for the connector")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=None,
                        help="the connector's --concurrency (default: its own)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="the suite's short run")
    args = parser.parse_args()
    if args.quick:
        return Options.quick()
    return Options(minutes=args.minutes, rate=args.rate, duration=args.duration,
                   burst=args.burst, async_spec=args.async_spec,
                   concurrency=args.concurrency)  # fmt: skip


def main() -> None:
    opts = _options()
    # SIGTERM stops the stack too (the finally in run), not only this process
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env.run_and_exit(
        f"grant load: {opts.rate:g}/s for {opts.minutes:g} min, burst {opts.burst}, "
        f"emulated Identity Center {opts.async_spec}",
        lambda tmp: run(opts, tmp),
    )


if __name__ == "__main__":
    main()
