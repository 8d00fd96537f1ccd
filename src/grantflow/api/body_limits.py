"""Bounded request inputs, enforced before routing and before any authentication work.

A pure ASGI middleware in front of the app:

- **Body size.** At most ``max_body_bytes`` (GRANTFLOW_MAX_BODY_BYTES) per request, counted
  on the bytes that really arrive: a ``Content-Length`` above the limit is refused before one
  byte is read; a chunked body, or one longer than its ``Content-Length`` claims, is refused
  as soon as the running total passes the limit. Answer: ``413`` with the usual error body.
- **Connector reports** (``complete``, ``fail``, ``sync-batch`` of a job: a whole
  organization's inventory can be megabytes) may be up to ``max_report_bytes``
  (GRANTFLOW_MAX_CONNECTOR_REPORT_BYTES), but only once the body has outgrown the normal
  limit *and* the request carries that connector's valid token: an anonymous client gets the
  normal limit on every path.
- **JSON depth.** A JSON body (any body that is not a form) nested deeper than
  ``max_json_depth`` (GRANTFLOW_MAX_JSON_DEPTH) is refused with ``422`` before a parser
  recurses into it.
- **Query string.** At most ``MAX_QUERY_BYTES``; else ``414``.

The body is read here (bounded) and handed to the app in one piece, so the app never reads
an unchecked byte. SCIM paths answer in SCIM's error shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from anyio.lowlevel import checkpoint
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grantflow.api.errors import error_body

log = structlog.get_logger(__name__)

MAX_QUERY_BYTES = 16_384  # a 4 KB SCIM filter, percent-encoded, fits
SCIM_PREFIX = "/scim/v2"
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
_FORM_TYPES = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_REPORT_ROUTE = re.compile(
    r"^/api/v1/connectors/(?P<connector>[^/]+)/jobs/[^/]+/(?:complete|fail|sync-batch)$"
)
_SLICE_BYTES = 65_536  # depth is scanned a slice at a time, the event loop runs between
_CLOSED_STRING = re.compile(rb'"[^"]*"')
_BRACKET_KINDS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

# May the request send a larger body to this connector's report route? (checks the token)
ConnectorCheck = Callable[[Scope, str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class BodyLimits:
    max_body_bytes: int
    max_report_bytes: int
    max_json_depth: int


class DepthScan:
    """How deep arrays and objects nest in a JSON text fed in slices (strings skipped).

    Exact for valid JSON; for invalid JSON it never counts less nesting than a parser reaches
    before it fails. The text must come with its escapes removed (``without_escapes``)."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.depth = 0
        self.in_string = False

    def feed(self, part: bytes) -> bool:
        """Scan the next slice; True as soon as the nesting is deeper than ``max_depth``."""
        if self.in_string:
            end = part.find(b'"')
            if end < 0:
                return False
            part, self.in_string = part[end + 1 :], False
        if part.count(b'"') % 2:  # a string opens here and goes on in the next slice
            part, self.in_string = part[: part.rfind(b'"')], True
        brackets = _CLOSED_STRING.sub(b"", part).translate(_BRACKET_KINDS, _NOT_BRACKETS)
        opened = brackets.count(b"[")
        if self.depth + opened <= self.max_depth:  # cannot get too deep in this slice
            self.depth += 2 * opened - len(brackets)
            return False
        for byte in brackets:
            self.depth += 1 if byte == 0x5B else -1
            if self.depth > self.max_depth:
                return True
        return False


def without_escapes(body: bytes) -> bytes:
    """``body`` with JSON's backslash escapes cut out (pairs read left to right, as a parser
    does), so that every remaining quote opens or closes a string."""
    return body.replace(b"\\\\", b"").replace(b'\\"', b"")


def json_too_deep(body: bytes, max_depth: int) -> bool:
    """Whether ``body``, read as JSON, nests deeper than ``max_depth`` (in one go)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    scan, text = DepthScan(max_depth), without_escapes(body)
    return any(scan.feed(text[i : i + _SLICE_BYTES]) for i in range(0, len(text), _SLICE_BYTES))


class Rejection(Exception):
    def __init__(self, status: int, code: str, message: str, scim_type: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.scim_type = scim_type


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


def _too_large(limit: int, setting: str) -> Rejection:
    return Rejection(
        413,
        "too_large",
        f"the request body is larger than {limit} bytes, the most accepted here ({setting})",
    )


class BoundedInputs:
    """The middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits, connector_check: ConnectorCheck) -> None:
        self.app = app
        self.limits = limits
        self.connector_check = connector_check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if len(scope.get("query_string") or b"") > MAX_QUERY_BYTES:
                raise Rejection(
                    414, "uri_too_long", f"the query string is longer than {MAX_QUERY_BYTES} bytes"
                )
            body = await self._read(scope, receive) if _has_body(scope) else None
        except Rejection as rejection:
            await self._reject(scope, send, rejection)
            return
        await self.app(scope, receive if body is None else _replay(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        limit, setting = self.limits.max_body_bytes, "GRANTFLOW_MAX_BODY_BYTES"
        report = _REPORT_ROUTE.match(str(scope.get("path", "")))
        connector = report["connector"] if report and scope.get("method") == "POST" else None

        async def check(size: int) -> None:
            nonlocal limit, setting, connector
            if size > limit and connector is not None:
                asked, connector = connector, None  # asked once: the answer holds
                if await self.connector_check(scope, asked):
                    limit = self.limits.max_report_bytes
                    setting = "GRANTFLOW_MAX_CONNECTOR_REPORT_BYTES"
            if size > limit:
                raise _too_large(limit, setting)

        declared = _content_length(scope)
        if declared is not None:
            await check(declared)  # refused before one byte is read
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Rejection(400, "bad_request", "the client disconnected mid-body")
            chunk = bytes(message.get("body", b""))
            total += len(chunk)
            await check(total)  # whatever Content-Length said
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = (_header(scope, b"content-type") or b"").lower()
        if not content_type.startswith(_FORM_TYPES) and await self._too_deep(body):
            raise Rejection(
                422,
                "validation_error",
                f"body: JSON nested deeper than {self.limits.max_json_depth} levels "
                "(GRANTFLOW_MAX_JSON_DEPTH)",
                scim_type="invalidSyntax",
            )
        return body

    async def _too_deep(self, body: bytes) -> bool:
        """``json_too_deep``, letting other requests run between slices of a large body."""
        max_depth = self.limits.max_json_depth
        if body.count(b"[") + body.count(b"{") <= max_depth:
            return False
        scan, text = DepthScan(max_depth), without_escapes(body)
        for start in range(0, len(text), _SLICE_BYTES):
            if scan.feed(text[start : start + _SLICE_BYTES]):
                return True
            await checkpoint()
        return False

    async def _reject(self, scope: Scope, send: Send, rejection: Rejection) -> None:
        path = str(scope.get("path", ""))
        client = scope.get("client")
        log.warning(
            "request_input_refused",
            path=path,
            status=rejection.status,
            reason=rejection.message,
            client=client[0] if client else None,
        )
        status = rejection.status
        if path == SCIM_PREFIX or path.startswith(SCIM_PREFIX + "/"):
            # SCIM knows no 422: a too-deep document is a syntax error there
            status = 400 if status == 422 else status
            document: dict[str, object] = {
                "schemas": [SCIM_ERROR],
                "status": str(status),
                "detail": rejection.message,
            }
            if status == 400 and rejection.scim_type:
                document["scimType"] = rejection.scim_type
            media = b"application/scim+json"
        else:
            field = "body" if status in (413, 422) else None
            document = error_body(rejection.code, rejection.message, field)
            media = b"application/json"
        payload = json.dumps(document, separators=(",", ":")).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def _has_body(scope: Scope) -> bool:
    """HTTP/1.1: a request without Content-Length or Transfer-Encoding has no body."""
    length = _header(scope, b"content-length")
    chunked = _header(scope, b"transfer-encoding") is not None
    return chunked or (length is not None and length.strip() != b"0")


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, b"content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Rejection(400, "bad_request", "Content-Length is not a number") from None
    if value < 0:
        raise Rejection(400, "bad_request", "Content-Length is negative")
    return value


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read here, once, in one message; then the server's own messages (a client
    disconnecting while a long poll waits)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
