"""Session cuts under hardening runs (issue 21): opt the integration in, then check that every
ended grant's sessions were cut, that AWS holds exactly the cut statements the database says
are live (none missing, none stale), and that once the sessions have expired every statement
is lifted again — while the server and the connector may still be killed (``on_tick``).

The hour a cut lasts is not waited for: ``release_after`` is moved into the past, as if it had
passed, and the scheduler's duty lifts them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import boto3
from sqlalchemy import select, update

from bench import hardening_env as env
from grantflow.domain import session_cuts as rules
from grantflow.domain.jobs import FINAL_STATES, JobState
from grantflow.store.db import transaction
from grantflow.store.models import AuditEvent, Grant, Job
from grantflow.store.models_session_cuts import SessionCut
from grantflow.store.types import utcnow

Tick = Callable[[], None]


def opt_in(stack: env.Stack) -> None:
    """The cycles grant the organization's own permission sets: cut their sessions too."""
    with stack.live.http() as admin:
        r = admin.patch(f"/api/v1/integrations/{stack.integration_id}",
                        json={"config": {"cut_sessions_on_own_permission_sets": True}})  # fmt: skip
        r.raise_for_status()


def _unsettled(stack: env.Stack) -> int:
    """Cuts still to be written or lifted, and their jobs still to finish."""
    with transaction(stack.sessions()) as session:
        pending = session.scalars(select(SessionCut.id).where(SessionCut.state == "pending"))
        due = session.scalars(select(SessionCut.id).where(
            SessionCut.state == "active", SessionCut.release_after <= utcnow()))  # fmt: skip
        running = [j for j in session.scalars(select(Job).where(Job.type == "session_cuts"))
                   if JobState(j.state) not in FINAL_STATES]  # fmt: skip
        return len(list(pending)) + len(list(due)) + len(running)


def wait_settled(stack: env.Stack, timeout: float, on_tick: Tick | None = None) -> float:
    """Wait (killing on the way when ``on_tick`` does) until nothing is left to do; seconds."""
    started = time.monotonic()

    def settled() -> bool:
        if on_tick is not None:
            on_tick()
        try:
            return _unsettled(stack) == 0
        except Exception:  # noqa: BLE001 - e.g. SQLite busy while a server restarts
            return False

    env.wait_for(settled, timeout, "the session cuts to settle", 0.5)
    return time.monotonic() - started


def _policy(stack: env.Stack, arn: str) -> str:
    sso = boto3.client("sso-admin", region_name="us-east-1")
    found = sso.get_inline_policy_for_permission_set(
        InstanceArn=stack.org.instance_arn, PermissionSetArn=arn
    )
    return str(found.get("InlinePolicy") or "")


def aws_matches_database(stack: env.Stack) -> list[str]:
    """Problems: a permission set whose cut statements in AWS differ from its live cuts."""
    problems = []
    with transaction(stack.sessions()) as session:
        cuts = list(session.scalars(select(SessionCut)))
    for arn in sorted(set(stack.permission_sets.values()) | {c.permission_set_arn for c in cuts}):
        live = [rules.CutEntry(c.account_id, c.not_before, c.user_name)
                for c in cuts if c.permission_set_arn == arn and c.state == "active"]  # fmt: skip
        wanted = rules.cut_statements_of(rules.merge("", live).policy or "")
        found = rules.cut_statements_of(_policy(stack, arn))
        if rules.canonical(found) != rules.canonical(wanted):
            problems.append(f"{arn}: {len(found)} cut statement(s) in AWS, {len(wanted)} wanted")
    return problems


def ended_without_cut(stack: env.Stack, request_ids: set[str]) -> list[str]:
    """Access that ended without a cut: per (account, permission set, user) whose grants made
    by Grantflow are all revoked, a cut made at or after the last of those revocations (an
    earlier revoke that another live grant outlived rightly made none)."""
    with transaction(stack.sessions()) as session:
        grants = [g for g in session.scalars(select(Grant)) if g.request_id in request_ids]
        cuts = list(session.scalars(select(SessionCut)))
    last: dict[str, Any] = {}
    for g in grants:
        if g.state == "revoked" and g.pre_existing is False and g.handle and g.revoked_at:
            last[g.tuple_key] = max(last.get(g.tuple_key, g.revoked_at), g.revoked_at)
    live = {g.tuple_key for g in grants if g.state in ("granting", "granted", "revoking")}
    return [key for key, at in sorted(last.items()) if key not in live and not any(
        c.tuple_key == key and c.not_before >= at for c in cuts)]  # fmt: skip


def _audited(stack: env.Stack) -> tuple[int, int]:
    with transaction(stack.sessions()) as session:
        actions = list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(("sessions.revoked", "sessions.release")))))  # fmt: skip
    return actions.count("sessions.revoked"), actions.count("sessions.release")


def expire_all(stack: env.Stack) -> int:
    """An hour passes for every live cut: the sessions they target have expired."""
    with transaction(stack.sessions()) as session:
        moved = session.execute(
            update(SessionCut).where(SessionCut.state == "active")
            .values(release_after=utcnow() - timedelta(seconds=1))
        )  # fmt: skip
        return int(getattr(moved, "rowcount", 0) or 0)


def check(stack: env.Stack, report: env.Report, request_ids: set[str],
          on_tick: Tick | None = None, timeout: float = 300) -> None:  # fmt: skip
    """Cut, AWS = database, lift, AWS clean: each step into ``report``."""
    settle = wait_settled(stack, timeout, on_tick)
    missing = ended_without_cut(stack, request_ids)
    report.check(
        not missing, f"{len(missing)} ended access(es) without a session cut: {missing[:3]}"
    )
    drift = aws_matches_database(stack)
    report.check(not drift, f"cut statements in AWS differ from the live cuts: {drift[:3]}")
    with transaction(stack.sessions()) as session:
        states: dict[str, Any] = {}
        for state in session.scalars(select(SessionCut.state)):
            states[state] = states.get(state, 0) + 1
    lifted = expire_all(stack)
    release = wait_settled(stack, timeout, on_tick)
    leftover = aws_matches_database(stack)
    report.check(not leftover, f"cut statements left behind after their lift: {leftover[:3]}")
    with transaction(stack.sessions()) as session:
        live = list(session.scalars(select(SessionCut.id).where(SessionCut.state.in_(
            ("pending", "active")))))  # fmt: skip
    report.check(not live, f"{len(live)} cut(s) not lifted")
    with transaction(stack.sessions()) as session:
        released = len(list(session.scalars(
            select(SessionCut.id).where(SessionCut.state == "released"))))  # fmt: skip
    audited, wanted = _audited(stack), (sum(states.values()), released)
    report.check(audited == wanted, f"sessions.revoked / sessions.release events {audited}, "
                 f"wanted {wanted}: each cut and each lift recorded once")  # fmt: skip
    report.figures["session cuts"] = (
        f"{states} after the run (settled in {settle:.1f}s); {lifted} lifted in {release:.1f}s, "
        f"no statement left in AWS: {not leftover}"
    )
