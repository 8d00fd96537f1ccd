"""Verify both audit chains from the first event to the last, streaming, and their tails
against the latest checkpoint of each sink.

A read: run it in ``store.db.read_transaction`` (no write lock, nothing written).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.audit_chain import (
    SESSION_EVENT_FIELDS,
    ChainBreak,
    ChainedEvent,
    Keyring,
    session_event_fields,
    verify_chain,
)
from grantflow.domain.audit_checkpoint import Checkpoint, Head, compare, signature_problem
from grantflow.services.audit.audit_sinks import Found
from grantflow.services.audit.trail import hashed_fields, keyring_of
from grantflow.store.models import AuditEvent
from grantflow.store.models_audit import SessionAuditEvent

BATCH = 2000
EVENTS = "activity log"
SESSION_EVENTS = "session audit"


@dataclass(frozen=True, slots=True)
class ChainResult:
    events: int  # events checked (up to and including the break)
    last_seq: int | None
    head_hash: str | None
    broken: ChainBreak | None
    unkeyed: int  # events from before the audit key (verified by the unkeyed rule)

    def as_dict(self) -> dict[str, object]:
        return {"events": self.events, "last_seq": self.last_seq, "head_hash": self.head_hash,
                "unkeyed": self.unkeyed, "break": _break(self.broken)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    sink: str
    checkpoint: Checkpoint | None  # None: the sink holds none, or could not be read
    problem: str | None  # unreadable, bad signature, truncation or rewriting
    broken: ChainBreak | None = None  # truncation or rewriting, where

    def as_dict(self) -> dict[str, object]:
        cp = self.checkpoint
        return {"sink": self.sink, "seq": cp.events.seq if cp else None,
                "session_seq": cp.session_events.seq if cp else None,
                "at": cp.at.isoformat() if cp else None, "problem": self.problem}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    events: int
    last_seq: int | None
    head_hash: str | None  # of the activity log's last event checked
    broken: ChainBreak | None  # the first problem found, in either chain or at a checkpoint
    session: ChainResult | None = None
    checkpoints: tuple[CheckpointResult, ...] = field(default_factory=tuple)
    unkeyed: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok, "events": self.events, "last_seq": self.last_seq,
            "head_hash": self.head_hash, "unkeyed": self.unkeyed, "break": _break(self.broken),
            "session": self.session.as_dict() if self.session else None,
            "checkpoints": [c.as_dict() for c in self.checkpoints],
        }  # fmt: skip


def _break(broken: ChainBreak | None) -> dict[str, object] | None:
    if broken is None:
        return None
    return {"seq": broken.seq, "reason": broken.reason, "kind": broken.kind.value}


class _Walk:
    """Counts what went by, the last event, and the hashes at the checkpoints' seqs."""

    def __init__(self, wanted: set[int]) -> None:
        self.count, self.unkeyed = 0, 0
        self.last: Head | None = None
        self.wanted = wanted
        self.hashes: dict[int, str] = {}

    def see(self, event: ChainedEvent) -> ChainedEvent:
        self.count += 1
        self.unkeyed += event.key_id is None
        self.last = Head(event.seq, event.hash)
        if event.seq in self.wanted:
            self.hashes[event.seq] = event.hash
        return event

    def result(self, broken: ChainBreak | None) -> ChainResult:
        last = self.last
        return ChainResult(self.count, last.seq if last else None, last.hash if last else None,
                           broken, self.unkeyed)  # fmt: skip


def _events(session: Session, walk: _Walk) -> Iterator[ChainedEvent]:
    """Rows in ``seq`` order through one streamed query (server-side cursor on PostgreSQL),
    ``BATCH`` ORM objects at a time (the identity map holds them weakly: hashed rows go)."""
    query = select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=BATCH)
    for e in session.scalars(query):
        yield walk.see(ChainedEvent(e.seq, hashed_fields(e), e.prev_hash, e.hash, e.key_id))


def _session_events(session: Session, walk: _Walk) -> Iterator[ChainedEvent]:
    query = (select(SessionAuditEvent).order_by(SessionAuditEvent.chain_seq)
             .execution_options(yield_per=BATCH))  # fmt: skip
    for e in session.scalars(query):
        fields = session_event_fields({name: getattr(e, name) for name in SESSION_EVENT_FIELDS})
        yield walk.see(ChainedEvent(e.chain_seq, fields, e.prev_hash, e.hash, e.key_id))


def _check_point(found: Found, keys: Keyring, walks: tuple[_Walk, _Walk]) -> CheckpointResult:
    checkpoint = found.checkpoint
    if found.error is not None or checkpoint is None:
        return CheckpointResult(found.sink, None, found.error)
    problem = signature_problem(checkpoint, keys)
    if problem is not None:
        return CheckpointResult(found.sink, checkpoint, f"{found.sink}: {problem}")
    events, session_events = walks
    pairs = ((EVENTS, checkpoint.events, events),
             (SESSION_EVENTS, checkpoint.session_events, session_events))  # fmt: skip
    for name, signed, walk in pairs:
        broken = compare(name, signed, walk.last or Head(), walk.hashes.get(signed.seq))
        if broken is not None:
            return CheckpointResult(found.sink, checkpoint, broken.reason, broken)
    return CheckpointResult(found.sink, checkpoint, None)


def verify(
    session: Session, keys: Keyring | None = None, checkpoints: Sequence[Found] = ()
) -> Verification:
    """Walk both chains; report the first break (``seq``, why, what kind) or that all is
    intact. ``keys`` defaults to the keyring of the session's factory; each checkpoint found
    in a sink is checked (signature, then each chain's tail against it)."""
    keys = keys if keys is not None else keyring_of(session)
    wanted = [f.checkpoint for f in checkpoints if f.checkpoint is not None]
    events = _Walk({c.events.seq for c in wanted})
    session_events = _Walk({c.session_events.seq for c in wanted})
    broken = verify_chain(_events(session, events), keys)
    session_broken = verify_chain(_session_events(session, session_events), keys)
    results = tuple(_check_point(f, keys, (events, session_events)) for f in checkpoints)
    at_checkpoint = next((r.broken for r in results if r.broken is not None), None)
    first = broken or session_broken or at_checkpoint
    ok = first is None and all(r.problem is None for r in results)
    chain = events.result(broken)
    return Verification(ok, chain.events, chain.last_seq, chain.head_hash, first,
                        session_events.result(session_broken), results, chain.unkeyed)  # fmt: skip
