"""Hardening: grant/revoke cycles while the server and the connector are SIGKILLed.

`grantflow serve` (SQLite) and a self-hosted `grantflow connector run` run as separate
processes; at seeded random moments one of them is killed with SIGKILL and started again at
once. ``--cycles`` requests (60 s, auto-approved; half revoked a few seconds after they are
granted, half left to expire) are submitted meanwhile, retrying while the server is down.
At the end: AWS holds exactly what it held before (no assignment outlives its grant, nothing
duplicated), every request ended with each of its audit events recorded once, and the audit
chain verifies. Session cuts (issue 21) are on for the cycles' permission sets: every ended
grant's sessions are cut, AWS holds exactly the live cut statements, and once the sessions
have expired (``release_after`` moved into the past) every statement is lifted again — with
the kills going on meanwhile. Prints kills per process and recovery times. Exits 1 on any
problem.

    PYTHONPATH=. .venv/bin/python bench/chaos.py --cycles 200 --seed 7
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

from bench import hardening_env as env
from bench import session_cut_checks
from grantflow.store.db import transaction
from grantflow.store.models import Connector
from grantflow.store.types import utcnow


@dataclass
class Chaos:
    stack: env.Stack
    rng: random.Random
    every: tuple[float, float]
    next_at: float = 0.0
    kills: dict[str, int] = field(default_factory=lambda: {"server": 0, "connector": 0})
    recovery: dict[str, list[float]] = field(
        default_factory=lambda: {"server": [], "connector": []}
    )

    def __post_init__(self) -> None:
        self.next_at = time.monotonic() + self.rng.uniform(*self.every)

    def tick(self) -> None:
        if time.monotonic() < self.next_at:
            return
        # Random moments; the victim is whichever was killed less (a coin when even), so
        # even a short run kills both.
        fewest = min(self.kills.values())
        victim = self.rng.choice([name for name, n in self.kills.items() if n == fewest])
        self.kills[victim] += 1
        started, since = time.monotonic(), utcnow()
        if victim == "server":
            self.stack.live.kill()
            self.stack.live.start()  # returns once /readyz answers
        else:
            assert self.stack.connector is not None
            self.stack.connector.kill()
            self.stack.start_connector()
            env.wait_for(lambda: self._heartbeat_after(since), 60, "a connector heartbeat", 0.1)
        self.recovery[victim].append(time.monotonic() - started)
        self.next_at = time.monotonic() + self.rng.uniform(*self.every)

    def _heartbeat_after(self, since: object) -> bool:
        with transaction(self.stack.sessions()) as session:
            beat = session.scalar(
                select(Connector.last_heartbeat_at).where(Connector.id == self.stack.connector_id)
            )
        return beat is not None and beat > since  # type: ignore[operator]


def run(cycles: int, seed: int, tmp: Path, *, every: tuple[float, float] = (4.0, 12.0),
        fast_expiry: bool = False, submit_per_second: float = 2.0,
        timeout: float = 1800, session_cuts: bool = True) -> env.Report:  # fmt: skip
    started = time.monotonic()
    stack = env.build_stack(tmp, f"sqlite:///{tmp}/chaos.db")
    try:
        baseline = env.aws_assignments(stack)
        if session_cuts:
            session_cut_checks.opt_in(stack)
        driver = env.Driver(stack, env.plan_cycles(stack, cycles, seed),
                            submit_per_second=submit_per_second, fast_expiry=fast_expiry)  # fmt: skip
        chaos = Chaos(stack, random.Random(seed), every)
        wall = driver.run(timeout, on_tick=chaos.tick)
        try:  # the final state must hold with both processes up
            httpx.get(f"{stack.live.url}/readyz", timeout=5).raise_for_status()
        except httpx.HTTPError as err:
            raise RuntimeError("the server is not up at the end") from err
        report = env.verify(stack, driver, baseline)
        if session_cuts:
            session_cut_checks.check(stack, report, set(driver.request_ids.values()),
                                     on_tick=chaos.tick)  # fmt: skip
        report.check(sum(chaos.kills.values()) > 0, "nothing was killed")
        report.figures["kills"] = dict(chaos.kills)
        for victim, times in chaos.recovery.items():
            what = "ready" if victim == "server" else "heartbeating"
            report.figures[f"{victim} restart→{what}"] = (
                f"p50 {env.pct(times, 0.5):.1f}s, max {max(times):.1f}s" if times else "-"
            )
        return report.timed(wall, started)
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    env.run_and_exit(
        f"chaos: {args.cycles} cycles, server and connector SIGKILLed at random",
        lambda tmp: run(args.cycles, args.seed, tmp),
    )


if __name__ == "__main__":
    main()
