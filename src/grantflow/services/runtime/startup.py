"""What `serve` and `demo` do before they answer HTTP: reach the DB, migrate, bootstrap."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from grantflow.services.auth.tokens import ensure_bootstrap_admin
from grantflow.settings import Settings
from grantflow.store.db import build_engine, check_connection, session_factory, transaction
from grantflow.store.migrate import upgrade


class PortInUse(RuntimeError):
    """The HTTP port is taken."""


@dataclass(frozen=True)
class StartupReport:
    database: str
    bootstrap_token: str | None


def prepare_database(settings: Settings) -> StartupReport:
    engine = build_engine(settings.database_url, settings.db_pool_size)
    try:
        check_connection(engine)
        upgrade(engine)
        with transaction(session_factory(engine)) as session:
            admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
            token = ensure_bootstrap_admin(session, admin_token)
        return StartupReport(engine.url.render_as_string(hide_password=True), token)
    finally:
        engine.dispose()


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # Same as uvicorn: connections of a previous run lingering in TIME_WAIT don't count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise PortInUse(
                f"cannot listen on {host}:{port} ({err.strerror}); stop what uses it or pass "
                "--port / set GRANTFLOW_PORT"
            ) from err
