"""The connector leases grant and revoke jobs into slots of their own: many wait on Identity
Center at once (sharing reads and status rounds) without taking the slots of other jobs."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime

import boto3

from grantflow.aws.session import ClientFactory
from grantflow.connector.agent import AgentSettings, ConnectorAgent, _InFlight
from grantflow.connector.client import ControlPlaneClient, LeasedJob


def _agent() -> ConnectorAgent:
    client = ControlPlaneClient("http://127.0.0.1:9", "gfc-slots", "token")
    aws = ClientFactory(boto3.Session(region_name="us-east-1"))
    return ConnectorAgent(client, aws, settings=AgentSettings(concurrency=4, assignment_jobs=20))


def _running(agent: ConnectorAgent, job_type: str, count: int) -> None:
    for _ in range(count):
        n = len(agent._inflight)
        job = LeasedJob(id=f"job-{n}", type=job_type, payload={}, attempt=1,
                        lease_id=f"lease-{n}", lease_expires_at=datetime.now(UTC))  # fmt: skip
        agent._inflight[job.id] = _InFlight(job, Future())


def test_grant_and_revoke_jobs_have_slots_of_their_own() -> None:
    agent = _agent()
    assert agent._free_slots() == 24
    _running(agent, "sync", 4)
    assert agent._free_slots() == 20  # other jobs are full: grants and revokes still come
    _running(agent, "grant", 12)
    _running(agent, "revoke", 8)
    assert agent._free_slots() == 0
    agent.client.close()


def test_grants_do_not_take_the_slots_of_other_jobs() -> None:
    agent = _agent()
    _running(agent, "grant", 20)
    assert agent._free_slots() == 4
    _running(agent, "sync", 2)
    assert agent._free_slots() == 2
    agent.client.close()


def test_a_lease_never_asks_for_more_than_the_pool_has_threads() -> None:
    agent = _agent()
    _running(agent, "sync", 10)  # other jobs leased into free grant slots
    assert agent._free_slots() == 14
    agent.client.close()


def test_a_busy_connector_leases_grants_in_batches_an_idle_one_at_once() -> None:
    agent = _agent()  # lease_batch 5
    assert agent._wait_for_a_batch() is False  # idle
    _running(agent, "sync", 2)
    assert agent._wait_for_a_batch() is False  # no grant or revoke running
    _running(agent, "grant", 15)
    assert agent._wait_for_a_batch() is False  # 5 grant slots free: lease them together
    _running(agent, "revoke", 1)
    assert agent._wait_for_a_batch() is True  # 4 free: wait for one more
    agent.client.close()
