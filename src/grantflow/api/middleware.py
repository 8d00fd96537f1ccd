"""Request ids (X-Request-ID, bound into every log line) and HTTP metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from starlette.routing import Match

from grantflow.api.metrics import Metrics

log = structlog.get_logger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _route_template(request: Request) -> str:
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(route, "path", request.url.path))
    return "unmatched"


def install_middleware(app: FastAPI, metrics: Metrics) -> None:
    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("x-request-id", "")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        request.state.request_id = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        elapsed = time.perf_counter() - started
        route = _route_template(request)
        metrics.http_requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.http_latency.labels(request.method, route).observe(elapsed)
        response.headers["X-Request-ID"] = request_id
        if route not in ("/healthz", "/metrics"):
            log.info(
                "http_request",
                method=request.method,
                route=route,
                status=response.status_code,
                ms=round(elapsed * 1000, 1),
                request_id=request_id,
            )
        return response
