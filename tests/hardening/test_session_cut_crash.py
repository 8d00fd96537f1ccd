"""A session cut survives SIGKILL: the connector is killed in the middle of a cut (the deny
statement written, the permission set's provisioning still IN_PROGRESS in the emulated
Identity Center), and the server in the middle of the cut's lift. Both recover from the
database: the same job runs again, the cut completes, the lift completes, and AWS ends up
holding exactly the live cut statements — none once lifted. Real processes (``grantflow
serve`` + ``grantflow connector run``) against the moto server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from bench import hardening_env as env
from bench import session_cut_checks as checks
from sqlalchemy import select

from grantflow.domain import session_cuts as rules
from grantflow.domain.jobs import JobState
from grantflow.store.db import transaction
from grantflow.store.models import Job
from grantflow.store.models_session_cuts import SessionCut
from grantflow.store.types import utcnow

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EMULATED = "in_progress=12s,conflicts=off,seed=3"  # the cut's provisioning: 12 s in flight


def _state(stack: env.Stack) -> tuple[str | None, list[Job]]:
    with transaction(stack.sessions()) as session:
        cut = session.scalar(select(SessionCut.state))
        found = list(session.scalars(select(Job).where(Job.type == "session_cuts")))
        session.expunge_all()
        return cut, found


def _leased(stack: env.Stack) -> Job | None:
    _cut, found = _state(stack)
    return next((j for j in found if j.state == JobState.LEASED.value), None)


def _statements(stack: env.Stack, arn: str) -> list[rules.Statement]:
    return rules.cut_statements_of(checks._policy(stack, arn))


def _granted_then_revoked(stack: env.Stack) -> str:
    username = sorted(stack.tokens)[0]
    permission = sorted(stack.permission_sets)[0]
    body = {"resource_ids": [stack.accounts[0]["id"]], "permission": permission,
            "duration_seconds": 600}  # fmt: skip
    auth = {"Authorization": f"Bearer {stack.tokens[username]}"}
    with httpx.Client(base_url=stack.live.url, timeout=30, headers=auth) as me:
        created = me.post("/api/v1/access-requests", json=body)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        env.wait_for(lambda: me.get(f"/api/v1/access-requests/{rid}").json()["state"]
                     == "granted", 180, "the grant")  # fmt: skip
    with stack.live.http() as admin:
        assert admin.post(f"/api/v1/access-requests/{rid}/revoke", json={}).status_code == 200
        env.wait_for(lambda: admin.get(f"/api/v1/access-requests/{rid}").json()["state"]
                     == "revoked", 180, "the revoke")  # fmt: skip
    return stack.permission_sets[permission]


def test_killed_mid_cut_and_mid_lift_the_cut_completes_and_is_lifted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION"):  # fmt: skip
        monkeypatch.setenv(key, "restored-after-the-test")
    stack = env.build_stack(tmp_path, f"sqlite:///{tmp_path}/cuts.db", accounts=1,
                            permission_sets=1,
                            connector_env={"GRANTFLOW_EMULATE_IC_ASYNC": EMULATED})  # fmt: skip
    try:
        checks.opt_in(stack)
        arn = _granted_then_revoked(stack)

        # Mid-cut: the job holds its lease, the statement is in the policy, provisioning runs.
        job = env.wait_for(lambda: (j := _leased(stack)) and _statements(stack, arn) and j,
                           120, "a cut written and still provisioning")  # fmt: skip
        assert _state(stack)[0] == "pending"
        killed_at = utcnow()
        assert stack.connector is not None
        stack.connector.kill()
        # Time passes for the dead connector's lease (15 s) instead of the test waiting it out.
        assert stack.live.expire_leases() == 1
        stack.start_connector()
        env.wait_for(lambda: _state(stack)[0] == "active", 180, "the cut to complete")
        with transaction(stack.sessions()) as session:
            cut = session.scalars(select(SessionCut)).one()
            rerun = session.get(Job, job.id)
            assert rerun is not None and rerun.state == JobState.SUCCEEDED.value
            assert rerun.attempts >= 2  # the killed attempt, then the one that finished
            assert cut.cut_at is not None and cut.cut_at > killed_at
        assert checks.aws_matches_database(stack) == []
        assert len(_statements(stack, arn)) == 1

        # Mid-lift: the sessions have expired; the server is killed while the lift runs.
        assert checks.expire_all(stack) == 1
        env.wait_for(lambda: _leased(stack), 120, "the lift's job leased")
        stack.live.kill()
        stack.live.start()
        env.wait_for(lambda: _state(stack)[0] == "released", 180, "the cut to be lifted")
        assert _statements(stack, arn) == []
        assert checks.aws_matches_database(stack) == []
    finally:
        stack.stop()
