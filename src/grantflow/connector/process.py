"""Build and run a connector agent: as its own process, or as the server's managed connector."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass

import structlog

from grantflow.aws.session import ClientFactory
from grantflow.connector.agent import AgentSettings, ConnectorAgent
from grantflow.connector.client import ControlPlaneClient

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ConnectorOptions:
    url: str
    connector_id: str
    token: str
    role_arn: str | None = None  # assume this role first (when not given by the environment)
    region: str | None = None
    concurrency: int = 4
    wait_seconds: float = 10.0
    lease_seconds: int = 60
    shutdown_grace_seconds: float = 20.0  # after a stop, for in-flight jobs to report


def aws_factory(options: ConnectorOptions) -> ClientFactory:
    """Credentials the standard way (env, profile, instance/IRSA role); honours
    AWS_ENDPOINT_URL. With ``role_arn``, the connector runs as that role."""
    base = ClientFactory.from_environment(region=options.region)
    if options.role_arn:
        return base.assume_role(options.role_arn, None, "grantflow-connector")
    return base


def build_agent(options: ConnectorOptions) -> ConnectorAgent:
    client = ControlPlaneClient(options.url, options.connector_id, options.token)
    settings = AgentSettings(
        concurrency=options.concurrency,
        wait_seconds=options.wait_seconds,
        lease_seconds=options.lease_seconds,
        heartbeat_seconds=min(15.0, options.lease_seconds / 3),
        shutdown_grace_seconds=options.shutdown_grace_seconds,
    )
    return ConnectorAgent(client, aws_factory(options), settings=settings)


def run_forever(options: ConnectorOptions) -> None:
    """`grantflow connector run`: until SIGTERM/SIGINT, then finish or release jobs."""
    agent = build_agent(options)

    def _stop(signum: int, _frame: object) -> None:
        log.info("connector_stopping", signal=signal.Signals(signum).name)
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    agent.run()
    log.info("connector_stopped")


async def run_managed(options: ConnectorOptions) -> None:
    """The managed connector inside the server: a thread, stopped when the task is cancelled."""
    agent = build_agent(options)
    try:
        await asyncio.to_thread(agent.run)
    except asyncio.CancelledError:
        agent.stop()
        raise
