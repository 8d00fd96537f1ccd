"""Errors a use case raises; the API turns each into its HTTP answer.

ServiceError
├── NotFound        404
├── Conflict        409
├── Forbidden       403
├── Invalid         422 (names the field)
└── Unavailable     503
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Invalid(ServiceError):
    status = 422
    code = "validation_error"


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"
