"""Take signed checkpoints of both audit chains and send them to the sinks.

A scheduler duty (``take_due``): at most one checkpoint per interval across all replicas
(the duty lock and the last ``audit_checkpoints`` row decide), and none while the chains
have not moved. The heads are read and the checkpoint recorded in one short write
transaction; the sinks are written after it commits, so a slow S3 or webhook never holds the
database. A sink that fails is logged and retried with the next checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.audit_chain import Keyring
from grantflow.domain.audit_checkpoint import Checkpoint, Head
from grantflow.services.audit.audit_sinks import CheckpointSink, SinkError
from grantflow.store import duty_lock
from grantflow.store.db import transaction
from grantflow.store.models import AuditEvent
from grantflow.store.models_audit import AuditCheckpoint, SessionAuditEvent
from grantflow.store.types import utcnow

log = structlog.get_logger(__name__)
DUTY = "audit-checkpoint"


@dataclass(frozen=True, slots=True)
class Taken:
    checkpoint: Checkpoint
    outcomes: dict[str, str]  # sink name -> "ok" or the error

    @property
    def ok(self) -> bool:
        return all(v == "ok" for v in self.outcomes.values())


def heads(session: Session) -> tuple[Head, Head]:
    """Where the activity log and the session audit end now."""
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    last_session = session.execute(
        select(SessionAuditEvent.chain_seq, SessionAuditEvent.hash)
        .order_by(SessionAuditEvent.chain_seq.desc()).limit(1)
    ).first()  # fmt: skip
    return (Head(last[0], last[1]) if last else Head(),
            Head(last_session[0], last_session[1]) if last_session else Head())  # fmt: skip


def _record(session: Session, keys: Keyring, interval: float, force: bool) -> Checkpoint | None:
    key = keys.current
    if key is None or not duty_lock.acquire(session, DUTY):
        return None
    now = utcnow()
    last = session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    ).first()
    events, session_events = heads(session)
    if last is not None and not force:
        if (now - last.at).total_seconds() < interval:
            return None
        if ((last.seq, last.head_hash, last.session_seq, last.session_head_hash, last.key_id)
                == (events.seq, events.hash, session_events.seq, session_events.hash,
                    key.key_id)):  # fmt: skip
            return None  # nothing moved since the last one
    checkpoint = Checkpoint(events, session_events, now, key.key_id).signed(key)
    session.add(AuditCheckpoint(
        at=now, seq=events.seq, head_hash=events.hash, session_seq=session_events.seq,
        session_head_hash=session_events.hash, key_id=key.key_id,
        signature=checkpoint.signature, sinks={},
    ))  # fmt: skip
    return checkpoint


def send(sinks: Sequence[CheckpointSink], checkpoint: Checkpoint) -> dict[str, str]:
    outcomes = {}
    for sink in sinks:
        try:
            sink.write(checkpoint)
            outcomes[sink.name] = "ok"
        except SinkError as err:
            outcomes[sink.name] = str(err)
            log.error("audit_checkpoint_sink_failed", sink=sink.name, error=str(err),
                      seq=checkpoint.events.seq)  # fmt: skip
    return outcomes


def take(
    sessions: sessionmaker[Session],
    keys: Keyring,
    sinks: Sequence[CheckpointSink],
    interval_seconds: float = 0.0,
    force: bool = False,
) -> Taken | None:
    """Sign a checkpoint and send it to every sink; None when not due, nothing moved,
    another replica is taking one, or there is no audit key."""
    with transaction(sessions) as session:
        checkpoint = _record(session, keys, interval_seconds, force)
    if checkpoint is None:
        return None
    outcomes = send(sinks, checkpoint)
    with transaction(sessions) as session:
        row = session.scalars(select(AuditCheckpoint).where(
            AuditCheckpoint.signature == checkpoint.signature)).first()  # fmt: skip
        if row is not None:
            row.sinks = outcomes
    log.info("audit_checkpoint", seq=checkpoint.events.seq,
             session_seq=checkpoint.session_events.seq, sinks=outcomes)  # fmt: skip
    return Taken(checkpoint, outcomes)
