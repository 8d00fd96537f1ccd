"""Which account assignments exist, read for many grants at once.

A grant must know whether its assignment existed before Grantflow made it (that one is never
revoked), so it reads before it creates. Read one by one, that read costs as much as the
create. Grants that run at the same time (a connector leases many) share their reads here:

* :func:`plan_reads` covers the assignments asked about with as few list calls as it can —
  ``ListAccountAssignments`` for one (account, permission set) answers for every user of that
  pair, ``ListAccountAssignmentsForPrincipal`` for one user answers for all their pairs — by
  picking, greedily, the read that answers the most questions still open;
* :class:`AssignmentReads` gathers the questions of concurrent callers: the first caller of a
  round waits a moment (``gather_seconds``, and while the call budget is spent) for others,
  then reads for all of them, while the next round's callers gather behind it. Every answer
  comes from a read made after the caller asked, so it is as fresh as a read of its own
  would have been.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from grantflow.aws.identity_center import USER, IdentityCenter, list_assignments
from grantflow.domain.grant_specs import Assignment

DEFAULT_GATHER_SECONDS = 0.05


@dataclass(frozen=True)
class PairRead:
    """``ListAccountAssignments`` of one permission set in one account."""

    account_id: str
    permission_set_arn: str


@dataclass(frozen=True)
class PrincipalRead:
    """``ListAccountAssignmentsForPrincipal`` of one user (within one account if given)."""

    principal_id: str
    account_id: str | None = None


Read = PairRead | PrincipalRead


def plan_reads(wanted: Iterable[Assignment]) -> list[Read]:
    """Reads that together answer for every assignment in ``wanted``: greedy set cover, a
    read per (account, permission set) or per user, the one answering most first."""
    open_items = set(wanted)
    by_pair: dict[tuple[str, str], set[Assignment]] = defaultdict(set)
    by_user: dict[str, set[Assignment]] = defaultdict(set)
    for item in open_items:
        by_pair[(item.account_id, item.permission_set_arn)].add(item)
        by_user[item.principal_id].add(item)
    reads: list[Read] = []
    while open_items:
        pair, pair_items = max(by_pair.items(), key=lambda kv: (len(kv[1] & open_items), kv[0]))
        user, user_items = max(by_user.items(), key=lambda kv: (len(kv[1] & open_items), kv[0]))
        if len(user_items & open_items) > len(pair_items & open_items):
            accounts = {item.account_id for item in user_items & open_items}
            reads.append(PrincipalRead(user, next(iter(accounts)) if len(accounts) == 1 else None))
            open_items -= user_items
        else:
            reads.append(PairRead(*pair))
            open_items -= pair_items
    return reads


def _principal_assignments(ic: IdentityCenter, read: PrincipalRead) -> set[Assignment]:
    params: dict[str, object] = {
        "InstanceArn": ic.instance_arn,
        "PrincipalId": read.principal_id,
        "PrincipalType": USER,
    }
    if read.account_id is not None:
        params["Filter"] = {"AccountId": read.account_id}
    found: set[Assignment] = set()
    for page in ic.pages("sso-admin", "ListAccountAssignmentsForPrincipal", **params):
        for row in page.get("AccountAssignments", []):
            # the user's own assignments only (not those of groups they belong to)
            if row.get("PrincipalType") == USER and row.get("PrincipalId") == read.principal_id:
                found.add(
                    Assignment(
                        str(row["AccountId"]), str(row["PermissionSetArn"]), read.principal_id
                    )
                )
    return found


def existing(ic: IdentityCenter, wanted: Iterable[Assignment]) -> set[Assignment]:
    """The assignments of ``wanted`` that exist now, read with :func:`plan_reads`'s calls."""
    asked = set(wanted)
    found: set[Assignment] = set()
    for read in plan_reads(asked):
        if isinstance(read, PairRead):
            found |= list_assignments(ic, read.account_id, read.permission_set_arn)
        else:
            found |= _principal_assignments(ic, read)
    return found & asked


@dataclass
class _Round:
    ic: IdentityCenter
    wanted: set[Assignment] = field(default_factory=set)
    done: threading.Event = field(default_factory=threading.Event)
    found: set[Assignment] = field(default_factory=set)
    error: BaseException | None = None


class AssignmentReads:
    """Concurrent callers' existence questions, answered by shared reads (thread safe).

    Rounds of one Identity Center instance (and role) run one after the other; callers that
    ask while a round reads join the next one.
    """

    def __init__(
        self,
        gather_seconds: float = DEFAULT_GATHER_SECONDS,
        *,
        gather: Callable[[Callable[[], int]], None] | None = None,
    ) -> None:
        """``gather(joined)`` replaces the wait for other callers (tests wait until
        ``joined()``, the number of assignments asked about in the round, is what they
        expect)."""
        self.gather_seconds = gather_seconds
        self._gather = gather
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str | None], _Round] = {}
        self._turns: dict[tuple[str, str | None], threading.Lock] = {}

    def exists(self, ic: IdentityCenter, assignment: Assignment) -> bool:
        """Whether ``assignment`` exists, from a read made after this call began."""
        key = (ic.instance_arn, ic.factory.role_arn)
        with self._lock:
            current = self._open.get(key)
            leader = current is None
            if current is None:
                current = self._open[key] = _Round(ic)
            current.wanted.add(assignment)
            turn = self._turns.setdefault(key, threading.Lock())
        if leader:
            self._lead(key, current, turn)
        current.done.wait()
        if current.error is not None:
            raise current.error
        return assignment in current.found

    def _joined(self, current: _Round) -> int:
        with self._lock:
            return len(current.wanted)

    def _lead(self, key: tuple[str, str | None], current: _Round, turn: threading.Lock) -> None:
        with turn:  # the previous round of this instance has finished reading
            if self._gather is not None:
                self._gather(lambda: self._joined(current))
            elif self.gather_seconds > 0:
                time.sleep(self.gather_seconds)  # let concurrent callers join
            # when Identity Center's call budget is spent (grants and revokes at its 20 calls a
            # second), the round stays open until a call could go out: callers asking
            # meanwhile join it instead of waiting for tokens of reads of their own
            current.ic.limiter.wait_ready(current.ic.instance_arn)
            with self._lock:
                if self._open.get(key) is current:
                    del self._open[key]
                wanted = set(current.wanted)
            try:
                current.found = existing(current.ic, wanted)
            except BaseException as err:  # noqa: BLE001 - every waiter gets the read's error
                current.error = err
            finally:
                current.done.set()
