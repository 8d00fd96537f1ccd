"""One error shape for every failure: ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from grantflow.services.errors import ServiceError
from grantflow.store.db import DatabaseUnavailable

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return {"error": body}


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": _field_path(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    return JSONResponse(
        status_code=422,
        content=error_body("validation_error", message, first["field"], details=errors),
    )


async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers) if exc.headers else None
    return JSONResponse(
        status_code=exc.status_code, content=error_body(code, message), headers=headers
    )


async def _service(_request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status, content=error_body(exc.code, exc.message, exc.field)
    )


async def _database(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database_unavailable", error=type(exc).__name__)
    return JSONResponse(
        status_code=503,
        content=error_body("unavailable", "the database is unreachable; try again shortly"),
        headers={"Retry-After": "5"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    log.error("unhandled_error", exc_info=exc, path=request.url.path)
    return JSONResponse(
        status_code=500,
        content=error_body("internal_error", "unexpected server error", request_id=request_id),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceError, _service)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseUnavailable, _database)
    app.add_exception_handler(OperationalError, _database)
    app.add_exception_handler(Exception, _unexpected)
