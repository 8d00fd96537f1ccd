"""Request ids (X-Request-ID, bound into every log line), HTTP metrics, bounded inputs.

Pure ASGI middlewares (not Starlette's BaseHTTPMiddleware, which hides client disconnects
from long-polling handlers). Outermost first: ``RequestContext`` (ids, metrics, access log),
then ``BoundedInputs`` (body size, JSON depth, query length; api/body_limits.py), then the
app's routing and authentication.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from anyio import to_thread
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grantflow.api.body_limits import BodyLimits, BoundedInputs, ConnectorCheck
from grantflow.api.context import AppContext
from grantflow.domain.authz import Requirement, authorize
from grantflow.metrics import Metrics
from grantflow.services.auth import tokens
from grantflow.store.db import transaction

log = structlog.get_logger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def _route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/connectors/{connector_id}``), never the raw
    path: metric labels must not grow with ids."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched")) if route is not None else "unmatched"


class RequestContext:
    def __init__(self, app: ASGIApp, fastapi_app: FastAPI, metrics: Metrics) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            self._observe(scope, status, time.perf_counter() - started, request_id)

    def _observe(self, scope: Scope, status: int, elapsed: float, request_id: str) -> None:
        route = _route_template(scope)
        method = str(scope.get("method", ""))
        self.metrics.http_requests.labels(method, route, str(status)).inc()
        self.metrics.http_latency.labels(method, route).observe(elapsed)
        if route not in _QUIET_ROUTES:
            log.info(
                "http_request",
                method=method,
                route=route,
                status=status,
                ms=round(elapsed * 1000, 1),
                request_id=request_id,
            )


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                return None
            return credentials.strip()
    return None


def connector_check(ctx: AppContext) -> ConnectorCheck:
    """Whether a request carries the valid token of the connector in its path (asked only
    when a report outgrows the normal body limit: one token lookup)."""

    def allowed(token: str, connector_id: str) -> bool:
        with transaction(ctx.sessions) as session:
            principal = tokens.resolve_bearer(session, token)
        decision = authorize(principal, Requirement.CONNECTOR, owner_id=connector_id)
        return decision.allowed

    async def check(scope: Scope, connector_id: str) -> bool:
        token = _bearer(scope)
        return token is not None and await to_thread.run_sync(allowed, token, connector_id)

    return check


def install_middleware(app: FastAPI, metrics: Metrics) -> None:
    ctx = app.state.ctx
    assert isinstance(ctx, AppContext)
    settings = ctx.settings
    limits = BodyLimits(
        max_body_bytes=settings.max_body_bytes,
        max_report_bytes=max(settings.max_connector_report_bytes, settings.max_body_bytes),
        max_json_depth=settings.max_json_depth,
    )
    app.add_middleware(BoundedInputs, limits=limits, connector_check=connector_check(ctx))
    app.add_middleware(RequestContext, fastapi_app=app, metrics=metrics)  # the outermost
