"""Identity Center's asynchrony, emulated — a TESTING FACILITY, off by default.

moto answers CreateAccountAssignment, DeleteAccountAssignment and ProvisionPermissionSet with
``SUCCEEDED`` at once. Real Identity Center answers ``IN_PROGRESS``, finishes seconds later,
and now and then ends ``FAILED`` with a ``FailureReason``. With ``GRANTFLOW_EMULATE_IC_ASYNC``
set, every ``sso-admin`` client a :class:`~grantflow.aws.session.ClientFactory` makes gets
botocore ``before-send`` handlers that behave like that::

    GRANTFLOW_EMULATE_IC_ASYNC="in_progress=2s,failed=0.05,seed=7"

Keys: ``in_progress`` (how long an operation stays ``IN_PROGRESS``: ``2s``, ``500ms``, ``1m``
or plain seconds), ``failed`` (share of operations that end ``FAILED``, 0..1), ``seed``
(repeatable draws: the n-th operation of a kind always gets the same verdict), ``conflicts``
(``on``/``off``, default on: a create or delete of a principal/permission set/account tuple
that has an operation in progress answers ``ConflictException``, as Identity Center does),
``provisioning`` (``on``/``off``, default on: ProvisionPermissionSet too), ``lost`` (share of
create/delete answers lost: the operation starts, the caller gets a 500 and botocore sends it
again, as when AWS did the work but the answer never arrived) and ``stats`` (a JSON file
rewritten with the counters as they change).

What the handlers do:

* CreateAccountAssignment / DeleteAccountAssignment / ProvisionPermissionSet answer
  ``IN_PROGRESS`` with a new request id and are *not* sent to moto yet. When the operation
  is due it either ends ``FAILED`` (never sent: after a failed create the assignment does not
  exist, after a failed delete it still does) or is sent to moto through a plain client of the
  same credentials (uncounted, no fault injection) and ends ``SUCCEEDED`` — or ``FAILED`` with
  moto's error as the reason, the way Identity Center reports some errors only through the
  status. So moto's state always tells the truth about what "AWS" has done.
* An attempt the fault injector (``GRANTFLOW_FAULT_INJECTION``) failed is left alone: botocore
  calls every ``before-send`` handler, but that attempt never reaches AWS.
* A delete of an assignment that does not exist goes to moto at once (which answers
  ``ResourceNotFoundException``, as Identity Center does).
* Describe/List…CreationStatus, …DeletionStatus and …ProvisioningStatus are answered from the
  emulator's clock (moto implements neither the List operations nor provisioning status).
* A daemon thread applies due operations on time, so other processes (a benchmark's checks)
  see AWS change when it would; status reads apply them too.

Operations live in the process that made them: a connector killed mid-operation loses them,
which, for Grantflow, looks like an operation that failed (its retry plans from what exists).

It is refused for a client whose endpoint is AWS itself and when ``AWS_ENDPOINT_URL`` does
not point at an emulator: it only runs against an emulator such as moto.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import re
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from botocore import xform_name
from botocore.awsrequest import AWSResponse
from botocore.exceptions import BotoCoreError, ClientError

from grantflow.aws.faults import is_aws_endpoint

log = structlog.get_logger(__name__)

ENV_VAR = "GRANTFLOW_EMULATE_IC_ASYNC"
SERVICE = "sso-admin"
KEEP_SECONDS = 3600.0  # finished operations stay describable this long
_KEYS = ("in_progress", "failed", "seed", "conflicts", "provisioning", "stats", "lost")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0}
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}

# What Identity Center writes into FailureReason (seen in the wild).
INTERNAL_ERROR = "An unexpected internal service exception was encountered"
_REASONS: dict[str, tuple[str, ...]] = {
    "create": (
        INTERNAL_ERROR,
        "Received a 403 status error: Access denied by IAM. Please check your policy, or wait "
        "for role propagation to complete.",
    ),
    "delete": (INTERNAL_ERROR,),
    "provision": (INTERNAL_ERROR,),
}

# kind → (status key in responses, request id parameter of Describe, list key of List)
_KINDS: dict[str, tuple[str, str, str]] = {
    "create": (
        "AccountAssignmentCreationStatus",
        "AccountAssignmentCreationRequestId",
        "AccountAssignmentsCreationStatus",
    ),
    "delete": (
        "AccountAssignmentDeletionStatus",
        "AccountAssignmentDeletionRequestId",
        "AccountAssignmentsDeletionStatus",
    ),
    "provision": (
        "PermissionSetProvisioningStatus",
        "ProvisionPermissionSetRequestId",
        "PermissionSetsProvisioningStatus",
    ),
}
_START = {
    "CreateAccountAssignment": "create",
    "DeleteAccountAssignment": "delete",
    "ProvisionPermissionSet": "provision",
}
_DESCRIBE = {
    "DescribeAccountAssignmentCreationStatus": "create",
    "DescribeAccountAssignmentDeletionStatus": "delete",
    "DescribePermissionSetProvisioningStatus": "provision",
}
_LIST = {
    "ListAccountAssignmentCreationStatus": "create",
    "ListAccountAssignmentDeletionStatus": "delete",
    "ListPermissionSetProvisioningStatus": "provision",
}
Key = tuple[str, str, str, str, str]  # instance, account, permission set, principal type, id
Answer = tuple[int, dict[str, Any], str | None]  # HTTP status, JSON body, error code
_LOST: Answer = (
    500,
    {"__type": "InternalServerException", "Message": "emulated: the answer was lost"},
    "InternalServerException",
)
_CONFLICT: Answer = (
    409,
    {
        "__type": "ConflictException",
        "Message": "Request is in conflict with an account assignment operation in progress for "
        "the same principal, permission set and account",
    },
    "ConflictException",
)


class EmulationRefused(RuntimeError):
    """The emulation was asked for against real AWS, or its spec is malformed."""


def parse_duration(text: str, what: str = "in_progress") -> float:
    """``2s``, ``500ms``, ``1m`` or plain seconds → seconds."""
    found = _DURATION.match(text)
    if found is None:
        raise EmulationRefused(
            f"{ENV_VAR}: {what}={text!r} is not a duration (say e.g. 2s, 500ms, 1m or 2)"
        )
    return float(found.group(1)) * _UNITS[found.group(2)]


def _switch(key: str, text: str) -> bool:
    try:
        return _SWITCH[text.strip().lower()]
    except KeyError:
        raise EmulationRefused(f"{ENV_VAR}: {key}={text!r} must be on or off") from None


@dataclass(frozen=True)
class AsyncSpec:
    in_progress: float = 2.0  # seconds
    failed: float = 0.0  # share of operations ending FAILED
    seed: int = 0
    conflicts: bool = True
    provisioning: bool = True
    stats: Path | None = None
    lost: float = 0.0  # share of create/delete answers lost after the operation started

    @classmethod
    def parse(cls, text: str) -> AsyncSpec:
        """``in_progress=2s,failed=0.05,seed=7,conflicts=on,provisioning=on,stats=/tmp/a.json``."""
        values: dict[str, str] = {}
        for token in (t.strip() for t in text.split(",")):
            if not token:
                continue
            key, sep, value = token.partition("=")
            key = key.strip()
            if not sep:
                raise EmulationRefused(f"{ENV_VAR}: {token!r} is not key=value")
            if key not in _KEYS:
                raise EmulationRefused(f"{ENV_VAR}: unknown key {key!r}; know {list(_KEYS)}")
            if key in values:
                raise EmulationRefused(f"{ENV_VAR}: {key} is given twice")
            values[key] = value.strip()
        if not values:
            raise EmulationRefused(f"{ENV_VAR}: empty (say e.g. in_progress=2s,failed=0.05)")
        in_progress = parse_duration(values.get("in_progress", "2s"))
        if in_progress > 3600:
            raise EmulationRefused(f"{ENV_VAR}: in_progress must be at most 1h")
        failed, lost = _share(values, "failed"), _share(values, "lost")
        try:
            seed = int(values.get("seed", "0"))
        except ValueError:
            raise EmulationRefused(
                f"{ENV_VAR}: seed={values['seed']!r} is not an integer"
            ) from None
        return cls(
            in_progress=in_progress,
            failed=failed,
            seed=seed,
            conflicts=_switch("conflicts", values.get("conflicts", "on")),
            provisioning=_switch("provisioning", values.get("provisioning", "on")),
            stats=Path(values["stats"]) if values.get("stats") else None,
            lost=lost,
        )


def _share(values: dict[str, str], key: str) -> float:
    try:
        share = float(values.get(key, "0"))
    except ValueError:
        raise EmulationRefused(
            f"{ENV_VAR}: {key}={values[key]!r} is not a number within 0..1"
        ) from None
    if not 0.0 <= share <= 1.0:
        raise EmulationRefused(f"{ENV_VAR}: {key} must be within 0..1, not {share:g}")
    return share


@dataclass
class _Operation:
    kind: str  # create | delete | provision
    request_id: str
    instance_arn: str
    operation: str  # the API operation to send to moto when it is due
    params: dict[str, Any]
    key: Key | None  # assignments only
    created: float  # epoch seconds (CreatedDate)
    due: float  # emulator clock
    fails: bool
    failure_reason: str  # the FailureReason it ends with if it fails
    forward: Callable[[], Any]  # the plain client to send it with
    status: str = "IN_PROGRESS"
    reason: str | None = None
    applying: bool = False

    def as_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status,
            "RequestId": self.request_id,
            "CreatedDate": self.created,
        }
        if self.reason is not None:
            out["FailureReason"] = self.reason
        if self.kind == "provision":
            out["AccountId"] = self.params.get("TargetId")
            out["PermissionSetArn"] = self.params.get("PermissionSetArn")
        else:
            for name in ("TargetId", "TargetType", "PermissionSetArn", "PrincipalType"):
                out[name] = self.params.get(name)
            out["PrincipalId"] = self.params.get("PrincipalId")
        return out


class _Body:
    """The ``raw`` of an :class:`AWSResponse`: a body botocore reads with ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _response(url: str, status: int, body: dict[str, Any], code: str | None = None) -> AWSResponse:
    headers = {
        "x-amzn-RequestId": str(uuid.uuid4()),
        "Content-Type": "application/x-amz-json-1.1",
    }
    if code is not None:
        headers["x-amzn-ErrorType"] = code
    return AWSResponse(url, status, headers, _Body(json.dumps(body).encode()))


def _key(params: dict[str, Any]) -> Key:
    return (
        str(params.get("InstanceArn")),
        str(params.get("TargetId")),
        str(params.get("PermissionSetArn")),
        str(params.get("PrincipalType")),
        str(params.get("PrincipalId")),
    )


@dataclass(eq=False)
class AsyncEmulator:
    """The operations in progress and their verdicts, for every sso-admin client of a process
    (thread safe). ``background`` starts the thread that applies due operations on time."""

    spec: AsyncSpec
    clock: Callable[[], float] = time.monotonic
    background: bool = True
    counts: Counter[str] = field(default_factory=Counter)
    max_in_flight: int = 0
    _ops: dict[str, _Operation] = field(default_factory=dict)  # request id → operation
    _pending: dict[Key, str] = field(default_factory=dict)  # tuple → request id in progress
    _queue: list[tuple[float, str]] = field(default_factory=list)  # (due, request id) heap
    _seen: Counter[str] = field(default_factory=Counter)
    _active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Condition = field(init=False)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._wake = threading.Condition(self._lock)

    # --- verdicts ----------------------------------------------------------------------------

    def will_fail(self, kind: str, nth: int) -> tuple[bool, str]:
        """The verdict of the ``nth`` (from 1) operation of ``kind``, and its FailureReason."""
        rng = random.Random(zlib.crc32(f"{self.spec.seed}:{kind}:{nth}".encode()))  # noqa: S311
        fails = rng.random() < self.spec.failed
        return fails, rng.choice(_REASONS[kind])

    def answer_lost(self, kind: str, nth: int) -> bool:
        """Whether the answer to the ``nth`` (from 1) start of ``kind`` is lost."""
        rng = random.Random(zlib.crc32(f"{self.spec.seed}:lost:{kind}:{nth}".encode()))  # noqa: S311
        return kind != "provision" and rng.random() < self.spec.lost

    def in_flight(self) -> int:
        """Operations IN_PROGRESS now."""
        with self._lock:
            return self._active

    def snapshot(self) -> dict[str, Any]:
        return {
            "in_progress_seconds": self.spec.in_progress,
            "failed_share": self.spec.failed,
            "counts": dict(self.counts),
            "max_in_flight": self.max_in_flight,
        }

    def _write_stats(self) -> None:  # under the lock
        if self.spec.stats is None:
            return
        tmp = self.spec.stats.with_name(f"{self.spec.stats.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.spec.stats)

    # --- installing --------------------------------------------------------------------------

    def install(self, client: Any, service: str, forward: Callable[[], Any]) -> None:
        """Hook an ``sso-admin`` client (refused when it talks to AWS itself); ``forward``
        makes the plain client that sends due operations to the emulator."""
        if service != SERVICE:
            return
        endpoint = client.meta.endpoint_url
        if is_aws_endpoint(endpoint):
            raise EmulationRefused(
                f"{ENV_VAR} is a testing facility: refused for {service} at {endpoint!r} "
                "(point AWS_ENDPOINT_URL at an emulator such as moto)"
            )
        plain: list[Any] = []
        plain_lock = threading.Lock()

        def forward_client() -> Any:
            with plain_lock:
                if not plain:
                    plain.append(forward())
                return plain[0]

        def before_send(request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
            operation = event_name.rsplit(".", 1)[-1]
            if operation not in _START and operation not in _DESCRIBE and operation not in _LIST:
                return None
            if getattr(request, "grantflow_fault", None):  # failed before it was sent
                return None
            params = json.loads(request.body or b"{}") if request.body else {}
            answer = self.answer(operation, params, forward_client)
            if answer is None:
                return None
            status, body, code = answer
            return _response(request.url, status, body, code)

        client.meta.events.register("before-send", before_send)

    # --- answering ---------------------------------------------------------------------------

    def answer(
        self, operation: str, params: dict[str, Any], forward: Callable[[], Any]
    ) -> Answer | None:
        """``(HTTP status, JSON body, error code)`` for ``operation``, or None to let the
        emulator behind answer it."""
        self.apply_due()
        if operation in _START:
            return self._start(_START[operation], operation, params, forward)
        if operation in _DESCRIBE:
            kind = _DESCRIBE[operation]
            if kind == "provision" and not self.spec.provisioning:
                return None
            with self._lock:
                self.counts["status_reads"] += 1
                op = self._ops.get(str(params.get(_KINDS[kind][1])))
                if op is None or op.kind != kind:
                    return None
                return 200, {_KINDS[kind][0]: op.as_status()}, None
        return self._list(_LIST[operation], params)

    def _start(
        self, kind: str, operation: str, params: dict[str, Any], forward: Callable[[], Any]
    ) -> Answer | None:
        if kind == "provision" and not self.spec.provisioning:
            return None
        key = _key(params) if kind != "provision" else None
        if self._conflicting(key):
            return _CONFLICT
        if kind == "delete" and not self._assignment_exists(forward(), params):
            return None  # moto answers ResourceNotFoundException, as Identity Center does
        with self._lock:
            if key is not None and self.spec.conflicts and key in self._pending:
                self.counts["conflicts"] += 1
                return _CONFLICT
            self._seen[kind] += 1
            fails, reason = self.will_fail(kind, self._seen[kind])
            op = _Operation(
                kind=kind,
                request_id=str(uuid.uuid4()),
                instance_arn=str(params.get("InstanceArn")),
                operation=operation,
                params=dict(params),
                key=key,
                created=time.time(),
                due=self.clock() + self.spec.in_progress,
                fails=fails,
                failure_reason=reason,
                forward=forward,
            )
            self._ops[op.request_id] = op
            if key is not None:
                self._pending[key] = op.request_id
            heapq.heappush(self._queue, (op.due, op.request_id))
            self.counts[f"{kind}_started"] += 1
            self._active += 1
            self.max_in_flight = max(self.max_in_flight, self._active)
            lost = self.answer_lost(kind, self._seen[kind])
            if lost:
                self.counts["answers_lost"] += 1
            self._write_stats()
            self._ensure_thread()
            self._wake.notify_all()
            if lost:
                return _LOST
            return 200, {_KINDS[kind][0]: op.as_status()}, None

    def _conflicting(self, key: Key | None) -> bool:
        """Whether an operation on the same assignment is in progress (and that conflicts)."""
        if key is None or not self.spec.conflicts:
            return False
        with self._lock:
            if key not in self._pending:
                return False
            self.counts["conflicts"] += 1
            self._write_stats()
            return True

    def _list(self, kind: str, params: dict[str, Any]) -> Answer | None:
        if kind == "provision" and not self.spec.provisioning:
            return None
        wanted = (params.get("Filter") or {}).get("Status")
        size = int(params.get("MaxResults") or 100)
        start = int(params.get("NextToken") or 0)
        with self._lock:
            self.counts["status_lists"] += 1
            rows = sorted(
                (
                    op
                    for op in self._ops.values()
                    if op.kind == kind
                    and op.instance_arn == params.get("InstanceArn")
                    and (wanted is None or op.status == wanted)
                ),
                key=lambda op: (op.created, op.request_id),
            )
            page = rows[start : start + size]
            body: dict[str, Any] = {
                _KINDS[kind][2]: [
                    {"Status": op.status, "RequestId": op.request_id, "CreatedDate": op.created}
                    for op in page
                ]
            }
        if start + size < len(rows):
            body["NextToken"] = str(start + size)
        return 200, body, None

    @staticmethod
    def _assignment_exists(client: Any, params: dict[str, Any]) -> bool:
        pages = client.get_paginator("list_account_assignments").paginate(
            InstanceArn=params.get("InstanceArn"),
            AccountId=params.get("TargetId"),
            PermissionSetArn=params.get("PermissionSetArn"),
        )
        return any(
            row.get("PrincipalType") == params.get("PrincipalType")
            and row.get("PrincipalId") == params.get("PrincipalId")
            for page in pages
            for row in page.get("AccountAssignments", [])
        )

    # --- finishing operations ----------------------------------------------------------------

    def apply_due(self) -> None:
        """Finish every operation that is due: FAILED ones never reach the emulator behind;
        the others are sent to it now."""
        while True:
            with self._lock:
                op = self._next_due()
                if op is None:
                    self._prune()
                    return
                op.applying = True
            self._finish(op)

    def _next_due(self) -> _Operation | None:  # under the lock
        now = self.clock()
        while self._queue and self._queue[0][0] <= now:
            _, request_id = heapq.heappop(self._queue)
            op = self._ops.get(request_id)
            if op is not None and op.status == "IN_PROGRESS" and not op.applying:
                return op
        return None

    def _finish(self, op: _Operation) -> None:
        status, reason = "SUCCEEDED", None
        if op.fails:
            status, reason = "FAILED", op.failure_reason
        else:
            status, reason = self._send(op)
        with self._lock:
            op.status, op.reason, op.applying = status, reason, False
            self._active -= 1
            if op.key is not None and self._pending.get(op.key) == op.request_id:
                del self._pending[op.key]
            self.counts[f"{op.kind}_{status.lower()}"] += 1
            self._write_stats()
        if status == "FAILED":
            log.info("ic_async_emulated_failure", kind=op.kind, reason=reason)

    def _send(self, op: _Operation) -> tuple[str, str | None]:
        """Send a due operation to the emulator behind, once: its client does not retry, so
        after a connection error the assignment is looked at before sending again (a create
        sent twice would leave moto with two copies). A create of an assignment that already
        exists is still sent (Grantflow should not make one) and counted."""
        client = op.forward()
        if op.kind == "create" and self._assignment_exists(client, op.params):
            with self._lock:
                self.counts["create_of_existing"] += 1
        last: Exception | None = None
        for _ in range(3):
            try:
                getattr(client, xform_name(op.operation))(**op.params)
                return "SUCCEEDED", None
            except ClientError as err:
                error = err.response.get("Error", {})
                code = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
                return (
                    "FAILED",
                    f"Received a {code} status error: {error.get('Message') or error.get('Code')}",
                )
            except BotoCoreError as err:
                last = err
                if op.kind == "provision":
                    continue
                try:
                    exists = self._assignment_exists(client, op.params)
                except (ClientError, BotoCoreError):
                    continue
                if exists == (op.kind == "create"):
                    return "SUCCEEDED", None  # it got there; only the answer was lost
        return "FAILED", f"{INTERNAL_ERROR} ({type(last).__name__})"

    def _prune(self) -> None:  # under the lock
        now = self.clock()
        old = [
            rid
            for rid, op in self._ops.items()
            if op.status != "IN_PROGRESS" and now - op.due > KEEP_SECONDS
        ]
        for rid in old:
            del self._ops[rid]

    def _ensure_thread(self) -> None:  # under the lock
        if not self.background or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._run, name="ic-async-emulator", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                wait = self._queue[0][0] - self.clock() if self._queue else None
                if wait is None or wait > 0:
                    self._wake.wait(timeout=wait)
            try:
                self.apply_due()
            except Exception:  # keep emulating; the next status read retries
                log.exception("ic_async_emulator_error")


_process_emulator: AsyncEmulator | None = None
_process_lock = threading.Lock()


def from_environment() -> AsyncEmulator | None:
    """The process's emulator when ``GRANTFLOW_EMULATE_IC_ASYNC`` is set (logged loudly)."""
    global _process_emulator
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    spec = AsyncSpec.parse(text)
    if is_aws_endpoint(os.environ.get("AWS_ENDPOINT_URL")):
        raise EmulationRefused(
            f"{ENV_VAR} is set but AWS_ENDPOINT_URL does not point at an emulator: the "
            "emulated Identity Center asynchrony is a testing facility and never runs against AWS"
        )
    with _process_lock:
        if _process_emulator is None or _process_emulator.spec != spec:
            _process_emulator = AsyncEmulator(spec)
            log.warning(
                "ic_async_emulation_enabled",
                in_progress_seconds=spec.in_progress,
                failed_share=spec.failed,
                seed=spec.seed,
                note="TESTING ONLY: Identity Center operations stay IN_PROGRESS and some FAIL",
            )
        return _process_emulator
