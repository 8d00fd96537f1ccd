"""What every job of one connector process shares: Identity Center rate limits, the
permission-set cache, and assumed management-role sessions (refreshing themselves)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from grantflow.aws.assignment_reads import AssignmentReads
from grantflow.aws.assignment_status import StatusBoard
from grantflow.aws.grants import GrantSettings
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory

# Status rounds for assignment operations in progress, shared by all of them
# (grantflow.aws.assignment_status): an operation is first looked at once it has been in
# progress as long as they usually are (learned; 0.5 s until the board has seen some), then
# every STATUS_ROUND_SECONDS at most; rounds of one kind start at least STATUS_GAP_SECONDS
# apart, so that under load each covers several operations (a round costs ~2 calls of the
# 20 a second, whatever it covers).
STATUS_ROUND_SECONDS = 0.5
STATUS_GAP_SECONDS = 0.4
# Grants leased together wait this long for each other before their shared existence read (a
# loaded machine starts the threads of one lease further apart than 50 ms).
READ_GATHER_SECONDS = 0.15


def _grant_settings() -> GrantSettings:
    return GrantSettings(
        reads=AssignmentReads(READ_GATHER_SECONDS),
        statuses=StatusBoard(interval=STATUS_ROUND_SECONDS, gap=STATUS_GAP_SECONDS),
    )


@dataclass
class Shared:
    base: ClientFactory
    limiter: IdentityCenterLimiter = field(default_factory=IdentityCenterLimiter)
    grant_settings: GrantSettings = field(default_factory=_grant_settings)
    _management: dict[tuple[str, str], ClientFactory] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tuples: dict[str, threading.Lock] = field(default_factory=dict)

    @contextmanager
    def one_at_a_time(self, tuple_key: str | None) -> Iterator[None]:
        """Grants and revokes of one AWS tuple run one after the other in this process:
        two jobs planning at once would both create (or one would plan against a state the
        other is changing)."""
        if not tuple_key:
            yield
            return
        with self._lock:
            lock = self._tuples.setdefault(tuple_key, threading.Lock())
        with lock:
            yield

    def management(self, role_arn: str, external_id: str) -> ClientFactory:
        key = (role_arn, external_id)
        with self._lock:
            if key not in self._management:
                self._management[key] = self.base.assume_role(
                    role_arn, external_id, "grantflow-connector"
                )
            return self._management[key]
