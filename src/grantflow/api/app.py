"""The app factory: settings in, a ready FastAPI app out (engine, metrics, workers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from grantflow import __version__
from grantflow.api.context import AppContext
from grantflow.api.errors import document_errors, install_error_handlers
from grantflow.api.middleware import install_middleware
from grantflow.api.routes import (
    access_flows,
    access_requests,
    audit,
    auth,
    auth_oidc,
    catalog,
    connector_protocol,
    connectors,
    device_auth,
    directory,
    health,
    integrations,
    invitations,
    me,
    notifications,
    reports,
    requestable,
    resources,
    scim,
    session_audit,
    slack,
    user_identities,
    users,
)
from grantflow.metrics import Metrics
from grantflow.services.audit import audit_keys
from grantflow.services.audit.trail import use_keyring
from grantflow.services.runtime import scheduler
from grantflow.settings import Settings
from grantflow.store.db import build_engine, session_factory
from grantflow.web import install as install_web
from grantflow.web.device_login import router as device_pages
from grantflow.web.invite import router as invite_pages

DESCRIPTION = (
    "Just-in-time access for AWS Organizations. Authenticate with "
    '`Authorization: Bearer <token>`. Errors are `{"error": {"code", "message", "field"}}`.'
)


def build_context(settings: Settings) -> AppContext:
    engine = build_engine(settings.database_url, settings.db_pool_size)
    # the audit key (outside the database) keys every event this app's sessions record
    sessions = use_keyring(session_factory(engine), audit_keys.load(settings).keyring)
    return AppContext(settings=settings, engine=engine, sessions=sessions, metrics=Metrics())


def create_app(settings: Settings, *, run_workers: bool = True) -> FastAPI:
    ctx = build_context(settings)
    scheduler.install(ctx.workers, ctx.sessions, ctx.metrics, settings)
    scheduler.install_notifications(ctx.workers, ctx.sessions, ctx.metrics, settings)
    scheduler.install_audit_checkpoints(ctx.workers, ctx.sessions, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if run_workers:
            ctx.workers.start()
        try:
            yield
        finally:
            await ctx.workers.stop()
            ctx.engine.dispose()

    app = FastAPI(
        title="Grantflow",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    install_middleware(app, ctx.metrics)
    app.include_router(health.router)
    auth_oidc.install(app, settings)
    app.include_router(auth.router)
    app.include_router(auth_oidc.router)
    app.include_router(device_auth.router)
    app.include_router(me.router)
    app.include_router(users.router)
    app.include_router(user_identities.router)
    app.include_router(connectors.router)
    app.include_router(connector_protocol.router)
    app.include_router(catalog.router)
    app.include_router(integrations.router)
    app.include_router(resources.router)
    app.include_router(access_flows.router)
    app.include_router(access_requests.router)
    app.include_router(requestable.router)
    app.include_router(directory.router)
    app.include_router(scim.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(session_audit.router)
    app.include_router(notifications.router)
    app.include_router(slack.router)
    app.include_router(device_pages)
    app.include_router(invitations.admin_router)
    app.include_router(invitations.public_router)
    app.include_router(invite_pages)
    install_web(app)
    document_errors(app)
    return app
