"""Hardening: two `grantflow serve` replicas on one PostgreSQL database, one connector.

Both replicas run the whole scheduler (expiries, lease expiry, syncs, reconciliation); the
connector long-polls the first; ``--requests`` requests (60 s, auto-approved; half revoked a
few seconds after they are granted, half left to expire) are split across both replicas'
APIs. At the end: every grant's grant and revoke jobs succeeded once (a regrant after a
concurrent revoke of the same tuple is counted apart), Identity Center saw one create and one
delete per assignment made (counted by the connector), nothing was duplicated or left
behind, every expiry was processed once, and the audit chain verifies. Exits 1 on a problem.

Uses its own database ``grantflow_replicas`` (dropped and created again) on
127.0.0.1:5432 (trust auth), so it never touches the test suite's ``test`` database.

    PYTHONPATH=. .venv/bin/python bench/replicas.py --requests 500
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path

import psycopg
from sqlalchemy import select

from bench import hardening_env as env
from grantflow.store.db import transaction
from grantflow.store.models import AuditEvent, Grant, Job

DATABASE = "grantflow_replicas"
ADMIN_DSN = os.environ.get("GRANTFLOW_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")  # fmt: skip


def fresh_database(name: str = DATABASE) -> str:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _once_each(stack: env.Stack, driver: env.Driver, report: env.Report) -> None:
    ids = set(driver.request_ids.values())
    with transaction(stack.sessions()) as session:
        grants = {g.id for g in session.scalars(select(Grant)) if g.request_id in ids}
        runs: Counter[tuple[str, str]] = Counter()
        for job in session.scalars(select(Job).where(Job.type.in_(("grant", "revoke")))):
            if job.payload.get("grant_id") in grants and job.state == "succeeded":
                runs[(str(job.payload["grant_id"]), job.type)] += 1
        regranted = {
            e.target_id for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action == "grant.regranted"))
        }  # fmt: skip
    for kind in ("grant", "revoke"):
        never = [g for g in grants if runs[(g, kind)] == 0]
        report.check(not never, f"{len(never)} grant(s) without a succeeded {kind} job")
    twice = [g for g in grants if runs[(g, "revoke")] > 1]
    report.check(not twice, f"{len(twice)} grant(s) revoked more than once: {twice[:5]}")
    regrants = [g for g in grants if runs[(g, "grant")] > 1]
    unexplained = [g for g in regrants if g not in regranted]
    report.check(not unexplained, f"{len(unexplained)} grant(s) granted twice without cause")
    report.figures["grant jobs per grant"] = (
        f"1 for {len(grants) - len(regrants)} grants; 2+ for {len(regrants)} "
        "(each a recorded regrant after a concurrent revoke of the same tuple)"
    )


def run(requests: int, seed: int, tmp: Path, *, fast_expiry: bool = False,
        submit_per_second: float = 4.0, timeout: float = 2400) -> env.Report:  # fmt: skip
    started = time.monotonic()
    stats = tmp / "calls.json"
    stack = env.build_stack(tmp, fresh_database(), replicas=2,
                            connector_env={"GRANTFLOW_FAULT_INJECTION": f"rate=0,stats={stats}"},
                            server_env={"GRANTFLOW_DB_POOL_SIZE": "10"})  # fmt: skip
    try:
        baseline = env.aws_assignments(stack)
        driver = env.Driver(stack, env.plan_cycles(stack, requests, seed),
                            submit_per_second=submit_per_second, fast_expiry=fast_expiry)  # fmt: skip
        wall = driver.run(timeout)
        report = env.verify(stack, driver, baseline)
        _once_each(stack, driver, report)
        ops = env.fault_stats(stats).get("operations", {})
        creates = ops.get("sso-admin.CreateAccountAssignment", 0)
        deletes = ops.get("sso-admin.DeleteAccountAssignment", 0)
        report.check(creates == deletes, f"{creates} assignments created, {deletes} deleted")
        report.figures["Identity Center calls"] = (
            f"{creates} CreateAccountAssignment, {deletes} DeleteAccountAssignment, "
            f"{sum(ops.values())} in all"
        )
        split = Counter(c.server for c in driver.cycles)
        report.figures["requests per replica"] = dict(sorted(split.items()))
        return report.timed(wall, started)
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    env.run_and_exit(
        f"replicas: {args.requests} requests over 2 replicas on PostgreSQL",
        lambda tmp: run(args.requests, args.seed, tmp),
    )


if __name__ == "__main__":
    main()
