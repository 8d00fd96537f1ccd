"""Hardening: grant/revoke cycles while AWS fails a share of the connector's calls.

A moto server with a small organization, `grantflow serve` (SQLite) and a self-hosted
`grantflow connector run` whose AWS clients fail ``--rate`` of their HTTP attempts
(``GRANTFLOW_FAULT_INJECTION``: throttling, 429, 409 conflicts on writes, 500, 503, connection
resets, read timeouts). ``--cycles`` requests (60 s, auto-approved, overlapping on a few
accounts and permission sets) are submitted at a steady pace; half are revoked a few seconds
after they are granted, half expire. At the end: AWS holds exactly what it held before, no
assignment was ever duplicated, every request ended with all its audit events, and the audit
chain verifies. Exits 1 on any problem. With ``GRANTFLOW_EMULATE_IC_ASYNC`` set (``make
hardening``) and no ``lost=`` in it, 5 % of the emulated create/delete answers are lost after
the operation started (botocore sends it again and meets ``ConflictException``).

    PYTHONPATH=. .venv/bin/python bench/faults.py --cycles 200 --rate 0.2 --seed 7
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench import hardening_env as env

KINDS = "throttle,toomany,conflict,500,503,reset,timeout"
LOST_ANSWERS = 0.05  # with GRANTFLOW_EMULATE_IC_ASYNC: share of create/delete answers lost


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
        emulated = env.fault_stats(tmp / "ic_async.json").get("counts", {})
        if emulated:  # the emulated asynchrony is on (run_and_exit names its stats file)
            report.figures["emulated answers lost / creates of an existing assignment"] = (
                f"{emulated.get('answers_lost', 0)} / {emulated.get('create_of_existing', 0)}"
            )
            report.check(not emulated.get("create_of_existing"),
                         "a create was sent for an assignment that already existed")  # fmt: skip
        return report.timed(wall, started)
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    emulated = os.environ.get(env.IC_ASYNC_VAR, "").strip()
    if emulated and "lost=" not in emulated:  # answers lost after AWS did the work, too
        os.environ[env.IC_ASYNC_VAR] = f"{emulated},lost={LOST_ANSWERS}"
    env.run_and_exit(
        f"faults: {args.cycles} cycles, {args.rate:.0%} of AWS attempts failing",
        lambda tmp: run(args.cycles, args.rate, args.seed, tmp),
    )


if __name__ == "__main__":
    main()
