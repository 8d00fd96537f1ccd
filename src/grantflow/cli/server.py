"""Run the HTTP server (uvicorn) for an app built by the factory, with the managed connector."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import uvicorn
from fastapi import FastAPI

from grantflow.api.app import create_app
from grantflow.api.context import AppContext
from grantflow.connector.process import ConnectorOptions, run_managed
from grantflow.logs import configure_logging
from grantflow.services.integrations.managed_connector import ensure_managed_connector
from grantflow.services.runtime.startup import ensure_port_free
from grantflow.settings import Settings
from grantflow.store.db import transaction


def local_url(settings: Settings) -> str:
    # A server bound to every interface is reached on loopback (compared here, never bound).
    everywhere = ("0.0.0.0", "::", "")  # noqa: S104  # nosec B104
    host = "127.0.0.1" if settings.host in everywhere else settings.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def attach_managed_connector(app: FastAPI, settings: Settings, wait_seconds: float = 5.0) -> str:
    ctx = app.state.ctx
    assert isinstance(ctx, AppContext)
    with transaction(ctx.sessions) as session:
        connector_id, token = ensure_managed_connector(session, settings)
    options = ConnectorOptions(
        url=local_url(settings),
        connector_id=connector_id,
        token=token,
        role_arn=settings.connector_role_arn,
        wait_seconds=wait_seconds,
        lease_seconds=settings.connector_lease_seconds,
        # It reports to this very server, which is going away when it stops: a job not done
        # by then is let go (its lease lapses and the queue retries it), not waited for.
        shutdown_grace_seconds=2.0,
    )
    ctx.workers.service("managed-connector", partial(run_managed, options))
    return connector_id


@dataclass(frozen=True)
class BuiltServer:
    server: uvicorn.Server
    managed_connector_id: str | None

    def run(self) -> None:
        self.server.run()


def build_server(
    settings: Settings, *, graceful_seconds: int = 10, lease_wait_seconds: float = 5.0
) -> BuiltServer:
    """``graceful_seconds``: how long a stop waits for requests in flight; it outlasts the
    managed connector's lease long-poll (``lease_wait_seconds``), which ends by itself."""
    configure_logging(settings.log_level, settings.log_format)
    ensure_port_free(settings.host, settings.port)
    app = create_app(settings)
    managed = (
        attach_managed_connector(app, settings, lease_wait_seconds)
        if settings.managed_connector
        else None
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=settings.proxy_headers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=graceful_seconds,
    )
    return BuiltServer(uvicorn.Server(config), managed)


def run_server(settings: Settings) -> None:
    build_server(settings).run()
