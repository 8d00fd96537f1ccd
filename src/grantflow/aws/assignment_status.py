"""Status reads for account assignment operations in progress, shared by all of them.

Identity Center answers a create or delete with a request that stays ``IN_PROGRESS`` for
seconds. Polling each request with ``Describe…Status`` costs one call per operation per
interval; with up to 10 operations in flight, one ``List…Status`` call (``Filter: Status =
IN_PROGRESS``) answers for all of them. Per round (:func:`poll_once`):

* a single request pending: ``Describe…Status`` (one call, and the answer is final);
* otherwise one ``List…Status(IN_PROGRESS)``: requests still listed stay pending; a request
  that was listed before and is not any more has finished — when several finished, one
  ``List…Status(FAILED)`` tells the failed ones (``Describe…Status`` then gives each its
  reason), when one did, its ``Describe…Status``. A request never seen listed is described
  (it may have finished before the first round, or the list may not show it yet).

:class:`StatusBoard` runs those rounds for every operation waiting in one connector process,
timed to when operations are *due* rather than on a fixed beat: each operation is first
looked at once it has been in progress as long as operations of its kind usually take (an
estimate the board learns: the time by which about nine in ten of them have finished),
then again every quarter of that estimate (within ``gap`` and ``interval``). A round looks at
every operation due by then, and rounds of one kind are at least ``gap`` apart, so a busy
connector pays one round for several operations. A fixed beat makes an operation that takes
the beat's length wait a whole second beat whenever the first look comes just before it
ends: it holds one of Identity Center's 10 in-flight slots for twice its time.
A connector whose role was deployed before ``List…Status`` was granted gets AccessDenied
there: it goes back to describing each request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from grantflow.aws.errors import AccessDenied, AwsError
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.aws.waiting import Waiter
from grantflow.domain.grant_specs import Assignment


class IdentityCenter(Protocol):
    """What status polling reads of an ``identity_center.IdentityCenter`` (which imports
    this module, so it is named here by what it offers)."""

    @property
    def factory(self) -> ClientFactory: ...
    @property
    def instance_arn(self) -> str: ...
    @property
    def waiter(self) -> Waiter: ...
    @property
    def limiter(self) -> IdentityCenterLimiter: ...
    def sso(self, operation: str, **params: Any) -> dict[str, Any]: ...
    def pages(self, service: str, operation: str, **params: Any) -> Iterator[dict[str, Any]]: ...


log = structlog.get_logger(__name__)

IN_PROGRESS = "IN_PROGRESS"
ROUND_WAIT_SECONDS = 300.0  # a round is a few calls, each bounded by botocore's timeouts
_PAGE = 100
# A request answered at least this long before a List…Status(IN_PROGRESS) began is expected in
# it: missing from it, it has finished (FAILED list, as for one listed before) instead of being
# described on its own — an operation shorter than a round is otherwise described every time.
LIST_LAG_SECONDS = 0.2
_REMEMBERED = 10_000  # request id → assignment, for finding a tuple's operations in progress


@dataclass(frozen=True)
class StatusKind:
    describe: str
    request_param: str
    status_key: str
    list_operation: str
    list_key: str


CREATION = StatusKind(
    "DescribeAccountAssignmentCreationStatus",
    "AccountAssignmentCreationRequestId",
    "AccountAssignmentCreationStatus",
    "ListAccountAssignmentCreationStatus",
    "AccountAssignmentsCreationStatus",
)
DELETION = StatusKind(
    "DescribeAccountAssignmentDeletionStatus",
    "AccountAssignmentDeletionRequestId",
    "AccountAssignmentDeletionStatus",
    "ListAccountAssignmentDeletionStatus",
    "AccountAssignmentsDeletionStatus",
)


@dataclass(frozen=True)
class Round:
    """What one round learnt: final statuses, and the requests the list showed in progress."""

    finished: dict[str, dict[str, Any]]
    listed: frozenset[str]


def describe(ic: IdentityCenter, kind: StatusKind, request_id: str) -> dict[str, Any]:
    found: dict[str, Any] = ic.sso(kind.describe, **{kind.request_param: request_id})[
        kind.status_key
    ]
    return found


def _listed(
    ic: IdentityCenter, kind: StatusKind, status: str, max_pages: int | None = None
) -> tuple[set[str], bool]:
    """Request ids listed with ``status``; and whether every page was read."""
    ids: set[str] = set()
    pages: Iterator[dict[str, Any]] = ic.pages(
        "sso-admin",
        kind.list_operation,
        InstanceArn=ic.instance_arn,
        Filter={"Status": status},
        PaginationConfig={"PageSize": _PAGE},
    )
    for read, page in enumerate(pages, start=1):
        ids.update(str(row["RequestId"]) for row in page.get(kind.list_key, []))
        if max_pages is not None and read >= max_pages and page.get("NextToken"):
            return ids, False
    return ids, True


def _final(status: dict[str, Any]) -> bool:
    return status.get("Status") != IN_PROGRESS


def poll_once(
    ic: IdentityCenter, kind: StatusKind, pending: Mapping[str, bool], *, use_lists: bool = True
) -> Round:
    """One round for ``pending`` (request id → listed in progress by an earlier round)."""
    finished: dict[str, dict[str, Any]] = {}
    pending = dict(sorted(pending.items()))  # one order of calls, whatever the threads did
    if len(pending) == 1 or not use_lists:
        for request_id in pending:
            status = describe(ic, kind, request_id)
            if _final(status):
                finished[request_id] = status
        return Round(finished, frozenset())
    in_progress, _ = _listed(ic, kind, IN_PROGRESS)
    listed = frozenset(r for r in pending if r in in_progress)
    gone = [r for r in pending if r not in in_progress]
    seen_gone = [r for r in gone if pending[r]]
    to_describe = [r for r in gone if not pending[r]]
    if len(seen_gone) == 1:
        to_describe += seen_gone
    elif seen_gone:
        # a FAILED listing longer than describing each would be is cut short
        failed, complete = _listed(ic, kind, "FAILED", max_pages=len(seen_gone) - 1)
        for request_id in seen_gone:
            if request_id in failed or not complete:
                to_describe.append(request_id)  # its FailureReason, or not known yet
            else:
                finished[request_id] = {"Status": "SUCCEEDED", "RequestId": request_id}
    for request_id in to_describe:
        status = describe(ic, kind, request_id)
        if _final(status):
            finished[request_id] = status
    return Round(finished, listed)


def assignment_of(status: Mapping[str, Any]) -> Assignment | None:
    """The user assignment an operation status is about (None for a group's)."""
    if status.get("PrincipalType", "USER") != "USER" or not status.get("PrincipalId"):
        return None
    return Assignment(
        str(status.get("TargetId")), str(status.get("PermissionSetArn")), str(status["PrincipalId"])
    )


def in_progress_on(
    ic: IdentityCenter,
    assignment: Assignment,
    kinds: tuple[StatusKind, ...] = (CREATION, DELETION),
    board: StatusBoard | None = None,
) -> list[tuple[StatusKind, str]]:
    """The requests of ``kinds`` on ``assignment``'s tuple that are IN_PROGRESS now: one
    ``List…Status(IN_PROGRESS)`` per kind, and a ``Describe…Status`` of each request listed
    whose tuple ``board`` does not know (another process's, or one whose answer was lost)."""
    found: list[tuple[StatusKind, str]] = []
    for kind in kinds:
        listed, _ = _listed(ic, kind, IN_PROGRESS)
        for request_id in sorted(listed):
            about = board.assignment_of(request_id) if board is not None else None
            if about is None:
                status = describe(ic, kind, request_id)
                about = assignment_of(status)
                if board is not None and about is not None:
                    board.remember(request_id, about)
                if _final(status):
                    continue
            if about == assignment:
                found.append((kind, request_id))
    return found


def _nap(waiter: Waiter, done: threading.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking early when ``done`` is set (on a real clock)."""
    if waiter.sleep is time.sleep:
        done.wait(seconds)
    else:
        waiter.sleep(seconds)


@dataclass(eq=False)
class _Waiting:
    since: float  # when its wait began (after the operation's answer), on the waiter's clock
    due: float  # when it is next looked at
    missed_at: float | None = None  # its age when a look last found it still going (None: unseen)
    listed: bool = False
    final: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)


_Key = tuple[str, str | None, str]  # instance, role, kind

# The learned estimate of how long an operation of one kind stays IN_PROGRESS, moved once per
# round by the operations it looked at for the first time: down a little for each one that
# had finished, up more for each one that had not, so that it settles where about
# ``ESTIMATE_QUANTILE`` of first looks find the operation done (a stochastic quantile
# estimate; multiplicative, so it scales from 50 ms to a minute; once per round because the
# operations of one round are not independent draws). An operation that finishes after a look
# found it still in progress lifts the estimate to the age it had then (at most doubling it,
# so one operation stuck for minutes does not delay every next first look by as much): a
# board that starts far below the real time (0.5 s against AWS's seconds) learns it from its
# first few operations instead of one step each.
ESTIMATE_QUANTILE = 0.9
_ESTIMATE_STEP = 0.3
ESTIMATE_BOUNDS = (0.05, 60.0)


class StatusBoard:
    """Operations waiting for their final status, polled together (thread safe)."""

    def __init__(self, interval: float | None = None, *, gap: float | None = None) -> None:
        """``interval``: the first estimate of an operation's time in progress and the
        longest between two looks at one (default: the waiter's interval); ``gap``: the
        least time between two rounds of one kind (default: half the interval)."""
        self.interval = interval
        self.gap = gap
        self._lock = threading.Lock()
        self._round_done = threading.Condition(self._lock)
        self._waiting: dict[_Key, dict[str, _Waiting]] = {}
        self._polling: set[_Key] = set()
        self._last_round: dict[_Key, float] = {}
        self._estimates: dict[_Key, float] = {}
        self._describe_only: set[_Key] = set()
        self._assignments: dict[str, Assignment] = {}  # request id → its tuple (insertion order)
        self.rounds = 0

    def remember(self, request_id: str, assignment: Assignment) -> None:
        """The tuple of a request this process started (its answer says), or described."""
        with self._lock:
            self._assignments[request_id] = assignment
            while len(self._assignments) > _REMEMBERED:
                del self._assignments[next(iter(self._assignments))]

    def assignment_of(self, request_id: str) -> Assignment | None:
        with self._lock:
            return self._assignments.get(request_id)

    def _key(self, ic: IdentityCenter, kind: StatusKind) -> _Key:
        return (ic.instance_arn, ic.factory.role_arn, kind.describe)

    def _interval(self, ic: IdentityCenter) -> float:
        return self.interval or ic.waiter.interval

    def _gap(self, ic: IdentityCenter) -> float:
        return self.gap if self.gap is not None else self._interval(ic) / 2

    def _estimate(self, key: _Key, interval: float) -> float:
        return self._estimates.get(key, interval)

    def _recheck(self, key: _Key, ic: IdentityCenter) -> float:
        """Seconds until an operation found still in progress is looked at again."""
        estimate = self._estimate(key, self._interval(ic))
        return min(max(estimate / 4, self._gap(ic)), self._interval(ic))

    def _learn(self, key: _Key, interval: float, finished: int, unfinished: int) -> None:
        """One step from a round's first looks: ``finished`` of them found done."""
        if finished + unfinished == 0:
            return
        step = (unfinished * ESTIMATE_QUANTILE - finished * (1 - ESTIMATE_QUANTILE)) / (
            finished + unfinished
        )
        moved = self._estimate(key, interval) * math.exp(_ESTIMATE_STEP * step)
        self._estimates[key] = min(max(moved, ESTIMATE_BOUNDS[0]), ESTIMATE_BOUNDS[1])

    def _next_round(self, key: _Key, ic: IdentityCenter) -> float:
        """When the next round of ``key`` is due: its earliest operation's look, and not
        before ``gap`` after the last round."""
        waiting = [w.due for w in self._waiting.get(key, {}).values() if w.final is None]
        due = min(waiting, default=ic.waiter.clock())
        last = self._last_round.get(key)
        return due if last is None else max(due, last + self._gap(ic))

    def wait(
        self, ic: IdentityCenter, kind: StatusKind, request_id: str, deadline: float
    ) -> dict[str, Any] | None:
        """The final status of ``request_id``; None when the deadline passed first."""
        key = self._key(ic, kind)
        now = ic.waiter.clock()
        with self._lock:
            me = _Waiting(since=now, due=now + self._estimate(key, self._interval(ic)))
            self._waiting.setdefault(key, {})[request_id] = me
        try:
            while me.final is None:
                now = ic.waiter.clock()
                left = deadline - now
                if left <= 0:
                    return None
                with self._lock:
                    wake = self._next_round(key, ic)
                _nap(ic.waiter, me.done, min(max(wake - now, 0.0), left))
                if me.final is None:
                    self._round(ic, kind, key)
            return me.final
        finally:
            with self._lock:
                waiting = self._waiting.get(key, {})
                waiting.pop(request_id, None)
                if not waiting:
                    self._waiting.pop(key, None)

    def _round(self, ic: IdentityCenter, kind: StatusKind, key: _Key) -> None:
        """Poll the operations of ``key`` that are due (or nearly: within a quarter of the
        gap) unless another thread does, or a round ran less than ``gap`` ago.

        The round first waits until Identity Center's call budget has room (the shared
        limiter), and only then gathers what is due: when grants and revokes use most of the
        20 calls a second, rounds come later and each covers more operations, instead of
        gathering early, queueing for tokens, and being followed at once by another round for
        what came due meanwhile."""
        gap = self._gap(ic)
        with self._lock:
            last = self._last_round.get(key)
            now = ic.waiter.clock()
            if key in self._polling:  # another thread polls for us: wait for its answers
                self._round_done.wait_for(lambda: key not in self._polling, ROUND_WAIT_SECONDS)
                return
            if last is not None and now - last < gap * 0.9:
                return
            if not self._due(key, now + gap / 4):
                return
            self._polling.add(key)
            use_lists = key not in self._describe_only
        batch: dict[str, _Waiting] = {}
        result: Round | None = None
        try:
            ic.limiter.wait_ready(ic.instance_arn)
            with self._lock:
                now = ic.waiter.clock()
                batch = self._due(key, now + gap / 4)
            if batch:
                seen = {r: w.listed or now - w.since >= LIST_LAG_SECONDS for r, w in batch.items()}
                result = poll_once(ic, kind, seen, use_lists=use_lists)
        except AccessDenied as err:
            if not use_lists:
                raise
            log.warning("ic_status_list_denied", operation=kind.list_operation, error=str(err))
            with self._lock:
                self._describe_only.add(key)
        except AwsError as err:  # throttled or unavailable: the next round tries again
            log.warning("ic_status_round_failed", operation=kind.list_operation, error=str(err))
        finally:
            with self._lock:
                self._polling.discard(key)
                self._round_done.notify_all()
                self._last_round[key] = now  # rounds start ``gap`` apart
                self.rounds += bool(batch)
                self._settle_round(key, ic, now, batch, result)

    def _due(self, key: _Key, by: float) -> dict[str, _Waiting]:
        """The operations of ``key`` still waiting that are due by ``by`` (under the lock)."""
        return {
            r: w for r, w in self._waiting.get(key, {}).items() if w.final is None and w.due <= by
        }

    def _settle_round(
        self,
        key: _Key,
        ic: IdentityCenter,
        began: float,
        batch: dict[str, _Waiting],
        result: Round | None,
    ) -> None:
        """Record a round's answers (under the lock): finished operations are woken, the
        others looked at again later; first looks teach the estimate."""
        if result is None:
            for waiting in batch.values():
                waiting.due = began + self._recheck(key, ic)
            return
        interval = self._interval(ic)
        first = [r for r, w in batch.items() if w.missed_at is None]
        done = sum(1 for r in first if r in result.finished)
        self._learn(key, interval, done, len(first) - done)
        for request_id, waiting in batch.items():
            finished = result.finished.get(request_id)
            waiting.listed = waiting.listed or request_id in result.listed
            if finished is None:
                waiting.missed_at = began - waiting.since
                continue
            waiting.final = finished
            waiting.done.set()
            if waiting.missed_at is not None:
                estimate = self._estimate(key, interval)
                lifted = min(max(estimate, waiting.missed_at), 2 * estimate, ESTIMATE_BOUNDS[1])
                self._estimates[key] = lifted
        recheck = self._recheck(key, ic)
        for waiting in batch.values():
            if waiting.final is None:
                waiting.due = began + recheck
