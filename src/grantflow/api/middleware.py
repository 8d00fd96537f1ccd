"""Request ids (X-Request-ID, bound into every log line) and HTTP metrics.

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware, which hides client disconnects
from long-polling handlers).
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grantflow.api.metrics import Metrics

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


def install_middleware(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(RequestContext, fastapi_app=app, metrics=metrics)
