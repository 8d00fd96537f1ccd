"""Hardening: grant/revoke cycles while AWS fails a share of the connector's calls.

A moto server with a small organization, `grantflow serve` (SQLite) and a self-hosted
`grantflow connector run` whose AWS clients fail ``--rate`` of their HTTP attempts
(``GRANTFLOW_FAULT_INJECTION``: throttling, 429, 409 conflicts on writes, 500, 503, connection
resets, read timeouts). ``--cycles`` requests (60 s, auto-approved, overlapping on a few
accounts and permission sets) are submitted at a steady pace; half are revoked a few seconds
after they are granted, half expire. At the end: AWS holds exactly what it held before, no
assignment was ever duplicated, every request ended with all its audit events, and the audit
chain verifies. Exits 1 on any problem.

    PYTHONPATH=. .venv/bin/python bench/faults.py --cycles 200 --rate 0.2 --seed 7
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench import hardening_env as env

KINDS = "throttle,toomany,conflict,500,503,reset,timeout"


def run(cycles: int, rate: float, seed: int, tmp: Path, *, fast_expiry: bool = False,
        submit_per_second: float = 4.0, timeout: float = 1800) -> env.Report:  # fmt: skip
    started = time.monotonic()
    stats = tmp / "faults.json"
    spec = f"rate={rate},seed={seed},kinds={KINDS},stats={stats}"
    stack = env.build_stack(tmp, f"sqlite:///{tmp}/faults.db",
                            connector_env={"GRANTFLOW_FAULT_INJECTION": spec})  # fmt: skip
    try:
        baseline = env.aws_assignments(stack)
        driver = env.Driver(stack, env.plan_cycles(stack, cycles, seed),
                            submit_per_second=submit_per_second, fast_expiry=fast_expiry)  # fmt: skip
        wall = driver.run(timeout)
        report = env.verify(stack, driver, baseline)
        injected = env.fault_stats(stats)
        report.check(sum(injected.get("faults", {}).values()) > 0, "no fault was injected")
        report.figures["faults injected"] = (
            f"{sum(injected.get('faults', {}).values())} of {injected.get('attempts')} AWS "
            f"attempts, by kind {dict(sorted(injected.get('faults', {}).items()))}"
        )
        report.figures["botocore retries"] = injected.get("retries")
        return report.timed(wall, started)
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    env.run_and_exit(
        f"faults: {args.cycles} cycles, {args.rate:.0%} of AWS attempts failing",
        lambda tmp: run(args.cycles, args.rate, args.seed, tmp),
    )


if __name__ == "__main__":
    main()
