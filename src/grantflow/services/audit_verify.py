"""Verify the audit hash chain from the first event to the last, streaming."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.audit_chain import ChainBreak, ChainedEvent, verify_chain
from grantflow.services.audit import hashed_fields
from grantflow.store.models import AuditEvent

BATCH = 2000


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    events: int  # events checked (up to and including the break)
    last_seq: int | None
    head_hash: str | None  # hash of the last event checked: anchor it outside the database
    broken: ChainBreak | None

    def as_dict(self) -> dict[str, object]:
        result: dict[str, object] = {"ok": self.ok, "events": self.events,
                                     "last_seq": self.last_seq,
                                     "head_hash": self.head_hash}  # fmt: skip
        if self.broken is not None:
            result["break"] = {"seq": self.broken.seq, "reason": self.broken.reason}
        return result


class _Counter:
    def __init__(self) -> None:
        self.count = 0
        self.last_seq: int | None = None
        self.head_hash: str | None = None


def _chained(session: Session, counter: _Counter) -> Iterator[ChainedEvent]:
    """Rows in ``seq`` order through one streamed query (server-side cursor on PostgreSQL),
    ``BATCH`` ORM objects at a time (the identity map holds them weakly: hashed rows go)."""
    query = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=BATCH)
    for event in session.scalars(query):
        counter.count += 1
        counter.last_seq = event.seq
        counter.head_hash = event.hash
        yield ChainedEvent(event.seq, hashed_fields(event), event.prev_hash, event.hash)


def verify(session: Session) -> Verification:
    """Walk the whole chain; report the first break (``seq`` and why) or that all is intact."""
    counter = _Counter()
    broken = verify_chain(_chained(session, counter))
    return Verification(broken is None, counter.count, counter.last_seq, counter.head_hash, broken)
