"""Run the HTTP server (uvicorn) for an app built by the factory."""

from __future__ import annotations

import uvicorn

from grantflow.api.app import create_app
from grantflow.logs import configure_logging
from grantflow.services.startup import ensure_port_free
from grantflow.settings import Settings


def run_server(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    ensure_port_free(settings.host, settings.port)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
