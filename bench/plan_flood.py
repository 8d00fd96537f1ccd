"""Hardening: members flood dry runs (``GET …/plan``) while access expires.

A moto server with a small organization, `grantflow serve` (SQLite) and a self-hosted
`grantflow connector run`. ``--expiries`` requests (auto-approved, submitted at a steady pace)
are each expired a second after they are granted, while ``--calls`` plan calls are made
meanwhile by the requesters on their own live requests, 16 at a time. Dry runs are the one
connector work any member can ask for at will; revocations must never wait behind them.

At the end: every request expired and its assignment is gone from AWS (nothing duplicated,
audit complete, chain intact), as in bench/faults.py; expiry→revoked p99 is at most
``--p99`` seconds; no request ever had more than one dry run queued or running, no user more
than ``plans.QUEUED_PER_USER``; every refusal is a 429 with ``Retry-After`` and a message; no
plan call failed (a 503 "did not answer in time" is a dry run the busy connector had not
reached yet: counted, not a failure). Prints the figures; exits 1 on any problem.

    PYTHONPATH=. .venv/bin/python bench/plan_flood.py --calls 1000 --expiries 200
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

from bench import hardening_env as env
from grantflow.services.access import plans
from grantflow.store.db import transaction
from grantflow.store.models import AccessRequest, Job

FLOOD_THREADS = 16


@dataclass
class Flood:
    """Plan calls by each requester on their latest requests, paced to last the run."""

    stack: env.Stack
    driver: env.Driver
    calls: int
    per_second: float
    rng: random.Random
    statuses: Counter[int] = field(default_factory=Counter)
    bad_refusals: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # 5xx other than "wait longer" (503)
    latencies: list[float] = field(default_factory=list)
    made: int = 0
    max_per_request: int = 0
    max_per_user: int = 0
    samples: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)

    def _target(self) -> tuple[str, str] | None:
        """(token, request id): a requester and one of their five latest requests."""
        mine: dict[str, list[str]] = {}
        submitted = dict(self.driver.request_ids)  # a copy: the driver adds to it meanwhile
        for cycle in self.driver.cycles:
            rid = submitted.get(cycle.index)
            if rid is not None:
                mine.setdefault(cycle.username, []).append(rid)
        if not mine:
            return None
        user = self.rng.choice(sorted(mine))
        return self.stack.tokens[user], self.rng.choice(mine[user][-5:])

    def _call(self, client: httpx.Client, token: str, request_id: str) -> None:
        started = time.monotonic()
        try:
            r = client.get(f"/api/v1/access-requests/{request_id}/plan",
                           headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        except httpx.HTTPError as err:
            with self._lock:
                self.statuses[0] += 1
                self.bad_refusals.append(f"transport error: {err}")
            return
        with self._lock:
            self.statuses[r.status_code] += 1
            self.latencies.append(time.monotonic() - started)
            if r.status_code >= 500 and "did not answer in time" not in r.text:
                self.failures.append(f"{r.status_code} {r.text[:200]}")
            if r.status_code == 429:
                error = r.json().get("error", {})
                clear = error.get("code") == "rate_limited" and error.get("message")
                if not r.headers.get("Retry-After") or not clear:
                    self.bad_refusals.append(f"429 without Retry-After or message: {r.text}")

    def _sample(self) -> None:
        """The most dry runs queued or running for one request, and for one user, right now."""
        with transaction(self.stack.sessions()) as session:
            open_plans = session.scalars(
                select(Job).where(Job.type == "plan", Job.state.in_(("queued", "leased")))
            ).all()
            per_request = Counter(str(j.payload.get("request_id")) for j in open_plans)
            per_user = Counter(str(j.payload.get("requested_by")) for j in open_plans)
        self.max_per_request = max([self.max_per_request, *per_request.values()])
        self.max_per_user = max([self.max_per_user, *per_user.values()])
        self.samples += 1

    def _sampler(self) -> None:
        while not self._done.wait(0.5):
            try:
                self._sample()
            except Exception:  # noqa: BLE001, S112 - SQLite busy; the next sample will do
                continue

    def run(self) -> None:
        sampler = threading.Thread(target=self._sampler, daemon=True)
        sampler.start()
        while self._target() is None:  # the first request is on its way
            time.sleep(0.1)
        started = time.monotonic()
        limits = httpx.Limits(max_connections=FLOOD_THREADS)
        with httpx.Client(base_url=self.stack.live.url, timeout=60, limits=limits) as client, \
                ThreadPoolExecutor(FLOOD_THREADS) as pool:  # fmt: skip
            while self.made < self.calls:
                time.sleep(max(0.0, started + self.made / self.per_second - time.monotonic()))
                target = self._target()
                assert target is not None
                pool.submit(self._call, client, *target)
                self.made += 1
        self._done.set()
        sampler.join()


def run(calls: int, expiries: int, seed: int, max_p99: float, tmp: Path, *,
        submit_per_second: float = 4.0, timeout: float = 1800) -> env.Report:  # fmt: skip
    started = time.monotonic()
    stack = env.build_stack(tmp, f"sqlite:///{tmp}/plan_flood.db")
    try:
        baseline = env.aws_assignments(stack)
        driver = env.Driver(stack, env.plan_cycles(stack, expiries, seed, revoke_share=0.0),
                            submit_per_second=submit_per_second, fast_expiry=True)  # fmt: skip
        # Paced to end before the last expiries: every call is made while access is expiring.
        pace = calls / (0.9 * expiries / submit_per_second)
        flood = Flood(stack, driver, calls, pace, random.Random(seed))
        flooder = threading.Thread(target=flood.run, daemon=True)
        flooder.start()
        wall = driver.run(timeout)
        flooder.join(timeout=120)
        report = env.verify(stack, driver, baseline)
        _figures(report, stack, driver, flood, max_p99)
        return report.timed(wall, started)
    finally:
        stack.stop()


def _figures(report: env.Report, stack: env.Stack, driver: env.Driver, flood: Flood,
             max_p99: float) -> None:  # fmt: skip
    ids = set(driver.request_ids.values())
    with transaction(stack.sessions()) as session:
        rows = [r for r in session.scalars(select(AccessRequest)) if r.id in ids]
        plan_jobs = [j for j in session.scalars(select(Job).where(Job.type == "plan"))
                     if j.payload.get("request_id") in ids]  # fmt: skip
    expired = [(r.ended_at - r.expires_at).total_seconds() for r in rows
               if r.end_reason == "expired" and r.ended_at and r.expires_at]  # fmt: skip
    p99 = env.pct(expired, 0.99)
    report.check(len(expired) == len(driver.cycles),
                 f"{len(expired)} of {len(driver.cycles)} requests ended by expiry")  # fmt: skip
    report.check(p99 <= max_p99, f"expiry→revoked p99 {p99:.2f}s > {max_p99}s during the flood")
    report.check(flood.made == flood.calls, f"{flood.made} of {flood.calls} plan calls made")
    report.check(sum(flood.statuses.values()) == flood.made,
                 f"{flood.made - sum(flood.statuses.values())} plan calls never answered")  # fmt: skip
    # A dry run is the last thing a busy connector does: a 503 "did not answer in time" is
    # the honest answer then; any other 5xx is a failure.
    report.check(not flood.failures, f"plan calls that failed: {flood.failures[:3]}")
    report.check(not flood.bad_refusals, f"unclear refusals: {flood.bad_refusals[:3]}")
    report.check(flood.max_per_request <= 1,
                 f"{flood.max_per_request} dry runs waiting for one request at once")  # fmt: skip
    report.check(flood.max_per_user <= plans.QUEUED_PER_USER,
                 f"{flood.max_per_user} dry runs waiting for one user at once")  # fmt: skip
    report.check(flood.samples > 0 or flood.calls == 0, "the queue was never sampled")
    report.figures["plan calls"] = (
        f"{flood.made} by {len(stack.tokens)} members, answers {dict(sorted(flood.statuses.items()))}"
        f"; p50 {env.pct(flood.latencies, 0.5):.2f}s, p95 {env.pct(flood.latencies, 0.95):.2f}s"
    )
    report.figures["dry-run jobs queued"] = (
        f"{len(plan_jobs)} ({sum(j.state == 'succeeded' for j in plan_jobs)} succeeded); "
        f"at most {flood.max_per_request} waiting per request and {flood.max_per_user} per user "
        f"({flood.samples} samples)"
    )
    report.figures["expiry→revoked during the flood"] = (
        f"p50 {env.pct(expired, 0.5):.2f}s, p95 {env.pct(expired, 0.95):.2f}s, "
        f"p99 {p99:.2f}s, max {max(expired, default=float('nan')):.2f}s (n={len(expired)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--expiries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--p99", type=float, default=2.0, help="expiry→revoked bound, seconds")
    args = parser.parse_args()
    env.run_and_exit(
        f"plan flood: {args.calls} plan calls during {args.expiries} expiries",
        lambda tmp: run(args.calls, args.expiries, args.seed, args.p99, tmp),
    )


if __name__ == "__main__":
    main()
