"""A control plane that keeps answering 5xx to a job report: the connector used to retry it
forever, holding the job's slot and extending its lease, so the job never ran again."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from grantflow.connector.agent import AgentSettings, ConnectorAgent
from grantflow.connector.client import ControlPlaneUnavailable, LeasedJob, Rejected

JOB = LeasedJob(
    id="job-1",
    type="ping",
    payload={},
    attempt=1,
    lease_id="lease-1",
    lease_expires_at=datetime.now(UTC),
)


class FailingClient:
    connector_id = "gfc-reportsreportsreport"

    def __init__(self, failures: list[ControlPlaneUnavailable]) -> None:
        self.failures = failures
        self.completes = 0

    def complete(self, job: LeasedJob, result: dict[str, Any]) -> None:
        self.completes += 1
        if self.failures:
            raise self.failures.pop(0)


def _agent(client: FailingClient) -> ConnectorAgent:
    settings = AgentSettings(report_retry_seconds=0.01, max_backoff_seconds=0.02,
                             report_attempts_on_5xx=4)  # fmt: skip
    return ConnectorAgent(client, object(), settings=settings,  # type: ignore[arg-type]
                          handlers={"ping": lambda ctx, payload: {"ok": True}})  # fmt: skip


def test_a_report_failing_with_5xx_is_given_up_and_the_slot_freed() -> None:
    client = FailingClient([ControlPlaneUnavailable("HTTP 500", status=500)] * 100)
    agent = _agent(client)
    agent._inflight[JOB.id] = object()  # type: ignore[assignment]
    runner = threading.Thread(target=agent._run, args=(JOB,), daemon=True)
    runner.start()
    runner.join(10)
    assert not runner.is_alive(), "the report is still being retried"
    assert client.completes == 4
    assert agent._inflight == {}  # no more lease extensions: the queue takes the job back


def test_an_unreachable_control_plane_is_waited_for() -> None:
    client = FailingClient([ControlPlaneUnavailable("ConnectError")] * 6)
    agent = _agent(client)
    agent._run(JOB)
    assert client.completes == 7  # kept trying until the server came back


class RefusingClient(FailingClient):
    """A control plane that refuses the report itself (413: larger than it accepts)."""

    def __init__(self) -> None:
        super().__init__([])
        self.failed: list[tuple[str, bool]] = []

    def complete(self, job: LeasedJob, result: dict[str, Any]) -> None:
        self.completes += 1
        raise Rejected("HTTP 413: the request body is larger than 1048576 bytes")

    def fail(self, job: LeasedJob, message: str, retryable: bool) -> None:
        self.failed.append((message, retryable))


def test_a_refused_report_fails_the_job_for_good_with_the_servers_reason() -> None:
    client = RefusingClient()
    _agent(client)._run(JOB)
    assert client.completes == 1  # a refusal is not retried
    ((message, retryable),) = client.failed
    assert "413" in message and "larger than" in message
    assert retryable is False
