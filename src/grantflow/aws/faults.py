"""AWS fault injection — a TESTING FACILITY, off by default.

With ``GRANTFLOW_FAULT_INJECTION`` set, every client a :class:`~grantflow.aws.session.ClientFactory`
makes gets a botocore ``before-send`` handler that fails a share of the HTTP attempts the way
AWS and the network do: an error response botocore parses like a real one (throttling, 429,
409 conflict, 500, 503) or a connection error (reset, read timeout, endpoint unreachable).
Botocore's own retries, then Grantflow's job retries, must absorb them::

    GRANTFLOW_FAULT_INJECTION="rate=0.2,seed=7,kinds=throttle,500,503,conflict,reset,timeout"

Keys: ``rate`` (share of attempts failed, 0..1), ``seed`` (repeatable draws: the n-th attempt
of an operation always gets the same verdict; with concurrent jobs the interleaving still
varies), ``kinds`` (default: all of :data:`KINDS`), ``services`` (default: all), and ``stats``
(a JSON file rewritten with the counters after every attempt; with ``rate=0`` the injector
only counts calls per operation).

It is refused for a client whose endpoint is AWS itself (``*.amazonaws.com``): it only runs
against an emulator such as moto. ``conflict`` is only injected into mutating operations
(``Create*``, ``Delete*``, ``Put*``, ``Provision*``, …), where Identity Center returns it.
Faults happen before the request is sent, so a failed attempt never reached AWS.
"""

from __future__ import annotations

import json
import os
import random
import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

log = structlog.get_logger(__name__)

ENV_VAR = "GRANTFLOW_FAULT_INJECTION"

# kind → (HTTP status, error code); None for connection errors
_RESPONSES: dict[str, tuple[int, str]] = {
    "throttle": (400, "ThrottlingException"),
    "toomany": (429, "TooManyRequestsException"),
    "conflict": (409, "ConflictException"),
    "500": (500, "InternalServerException"),
    "503": (503, "ServiceUnavailableException"),
}
_CONNECTION = ("reset", "timeout", "unreachable")
KINDS: tuple[str, ...] = (*_RESPONSES, *_CONNECTION)
_MUTATING = ("Create", "Delete", "Put", "Provision", "Attach", "Detach", "Update", "Tag")
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


class FaultInjectionRefused(RuntimeError):
    """Fault injection was asked for against real AWS, or its spec is malformed."""


@dataclass(frozen=True)
class FaultSpec:
    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    services: frozenset[str] | None = None
    stats: Path | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """``rate=0.2,seed=7,kinds=throttle,500,services=sso-admin,stats=/tmp/f.json``:
        a value without ``=`` continues the list of the key before it."""
        values: dict[str, list[str]] = {}
        key: str | None = None
        for token in (t.strip() for t in text.split(",")):
            if not token:
                continue
            if "=" in token:
                key, _, value = token.partition("=")
                key = key.strip()
                values[key] = [value.strip()]
            elif key is None:
                raise FaultInjectionRefused(f"{ENV_VAR}: {token!r} has no key")
            else:
                values[key].append(token)
        unknown = set(values) - {"rate", "seed", "kinds", "services", "stats"}
        if unknown:
            raise FaultInjectionRefused(f"{ENV_VAR}: unknown key(s) {sorted(unknown)}")
        try:
            rate = float(values.get("rate", ["0.1"])[0])
            seed = int(values.get("seed", ["0"])[0])
        except ValueError as err:
            raise FaultInjectionRefused(f"{ENV_VAR}: {err}") from err
        if not 0.0 <= rate <= 1.0:
            raise FaultInjectionRefused(f"{ENV_VAR}: rate must be within 0..1")
        kinds = tuple(values.get("kinds", list(KINDS)))
        bad = set(kinds) - set(KINDS)
        if bad:
            raise FaultInjectionRefused(f"{ENV_VAR}: unknown kind(s) {sorted(bad)}; know {KINDS}")
        services = frozenset(values["services"]) if "services" in values else None
        stats = Path(values["stats"][0]) if "stats" in values else None
        return cls(rate=rate, seed=seed, kinds=kinds, services=services, stats=stats)


class _Body:
    """The ``raw`` of an :class:`AWSResponse`: a body botocore reads with ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _error_response(url: str, protocol: str, status: int, code: str) -> AWSResponse:
    message = f"Injected by Grantflow's fault injection ({code})"
    request_id = "00000000-fault-0000-0000-000000000000"
    headers = {"x-amzn-RequestId": request_id}
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        headers.update({"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code})
    else:  # query, ec2, rest-xml
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        ).encode()
        headers["Content-Type"] = "text/xml"
    return AWSResponse(url, status, headers, _Body(body))


def is_aws_endpoint(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    return not url or host.endswith(_AWS_SUFFIXES)


@dataclass(eq=False)
class FaultInjector:
    """Draws and injects faults; counts attempts, calls and faults per kind (thread safe)."""

    spec: FaultSpec
    faults: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    calls: int = 0
    operations: Counter[str] = field(default_factory=Counter)  # calls per service.Operation
    _seen: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _draw(self, operation: str) -> str | None:
        with self._lock:
            self.attempts += 1
            self._seen[operation] += 1
            nth = self._seen[operation]
        draw = f"{self.spec.seed}:{operation}:{nth}".encode()
        rng = random.Random(zlib.crc32(draw))  # noqa: S311 - repeatable test faults, not crypto
        if rng.random() >= self.spec.rate:
            return None
        mutating = operation.split(".")[-1].startswith(_MUTATING)
        kinds = [k for k in self.spec.kinds if k != "conflict" or mutating]
        return rng.choice(kinds) if kinds else None

    def _count(self, kind: str | None) -> None:
        with self._lock:
            if kind is not None:
                self.faults[kind] += 1
            if self.spec.stats is not None:
                tmp = self.spec.stats.with_name(f"{self.spec.stats.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(self.snapshot()))
                tmp.replace(self.spec.stats)

    def snapshot(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "calls": self.calls,
            "retries": self.attempts - self.calls,
            "faults": dict(self.faults),
            "operations": dict(self.operations),
        }

    def install(self, client: Any, service: str) -> None:
        """Hook ``client`` (refused when it talks to AWS itself)."""
        if self.spec.services is not None and service not in self.spec.services:
            return
        endpoint = client.meta.endpoint_url
        if is_aws_endpoint(endpoint):
            raise FaultInjectionRefused(
                f"{ENV_VAR} is a testing facility: refused for {service} at {endpoint!r} "
                "(point AWS_ENDPOINT_URL at an emulator such as moto)"
            )
        protocol = str(client.meta.service_model.protocol)

        def before_call(model: Any = None, **_: Any) -> None:
            with self._lock:
                self.calls += 1
                self.operations[f"{service}.{getattr(model, 'name', '?')}"] += 1

        def before_send(request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
            operation = event_name.removeprefix("before-send.")
            kind = self._draw(operation)
            self._count(kind)
            if kind is None:
                return None
            log.warning("aws_fault_injected", kind=kind, operation=operation)
            # botocore calls every before-send handler: later ones (the emulated Identity
            # Center asynchrony) must know this attempt never reaches AWS.
            request.grantflow_fault = kind
            if kind in _RESPONSES:
                status, code = _RESPONSES[kind]
                return _error_response(request.url, protocol, status, code)
            if kind == "reset":
                raise ConnectionClosedError(endpoint_url=request.url, request=request)
            if kind == "timeout":
                raise ReadTimeoutError(endpoint_url=request.url, request=request, error="injected")
            raise EndpointConnectionError(endpoint_url=request.url, error="injected")

        client.meta.events.register("before-call", before_call)
        client.meta.events.register("before-send", before_send)


_process_injector: FaultInjector | None = None
_process_lock = threading.Lock()


def from_environment() -> FaultInjector | None:
    """The process's injector when ``GRANTFLOW_FAULT_INJECTION`` is set (logged loudly)."""
    global _process_injector
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    with _process_lock:
        if _process_injector is None or _process_injector.spec != FaultSpec.parse(text):
            spec = FaultSpec.parse(text)
            if is_aws_endpoint(os.environ.get("AWS_ENDPOINT_URL")):
                raise FaultInjectionRefused(
                    f"{ENV_VAR} is set but AWS_ENDPOINT_URL does not point at an emulator: "
                    "fault injection is a testing facility and never runs against AWS"
                )
            _process_injector = FaultInjector(spec)
            log.warning(
                "aws_fault_injection_enabled",
                rate=spec.rate,
                seed=spec.seed,
                kinds=list(spec.kinds),
                note="TESTING ONLY: AWS calls will fail on purpose",
            )
        return _process_injector
