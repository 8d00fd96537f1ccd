"""Append audit events to the hash chain. The store never updates or deletes them.

The chain is keyed (``domain.audit_chain``): the audit keyring travels with the session
factory (``use_keyring``, set by the app factory and the CLI from settings, never stored in
the database), and each event is MACed under its current key. A factory without one (tests,
tools that never configured a key) writes unkeyed events, which verify only before keyed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from grantflow.domain.audit_chain import GENESIS_HASH, Keyring, event_hash, keyed_fields
from grantflow.store.models import AuditEvent, new_id
from grantflow.store.types import utcnow

_PG_AUDIT_LOCK = 0x67_66_61_75  # advisory lock key serializing chain appends on PostgreSQL


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # user | connector | system
    id: str | None
    source: str  # web | api | cli | scim | scheduler | connector
    request_id: str | None = None


SYSTEM = Actor(type="system", id=None, source="scheduler")


@dataclass(frozen=True, slots=True)
class Target:
    type: str
    id: str
    data: dict[str, Any] = field(default_factory=dict)


_KEYRING = "grantflow.audit_keyring"


def use_keyring(factory: sessionmaker[Session], keyring: Keyring) -> sessionmaker[Session]:
    """Sessions of ``factory`` chain with ``keyring.current`` and verify with all its keys."""
    info = dict(factory.kw.get("info") or {})
    info[_KEYRING] = keyring
    factory.configure(info=info)
    return factory


def keyring_of(session: Session) -> Keyring:
    found = session.info.get(_KEYRING)
    return found if isinstance(found, Keyring) else Keyring()


def factory_keyring(factory: sessionmaker[Session]) -> Keyring:
    found = (factory.kw.get("info") or {}).get(_KEYRING)
    return found if isinstance(found, Keyring) else Keyring()


def hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": event.occurred_at.isoformat(),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "source": event.source,
        "request_id": event.request_id,
        "data": event.data,
    }


def lock_chain(session: Session) -> None:
    """Take the chain's append lock now (PostgreSQL; held until commit). A transaction that
    will record events after locking other rows takes it first, so that every transaction
    takes the two in the same order and none deadlocks against another."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})


def record(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction, chained to the latest one."""
    lock_chain(session)
    prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    event = AuditEvent(
        id=new_id(),
        occurred_at=utcnow(),
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        source=actor.source,
        request_id=actor.request_id,
        data=data or {},
        prev_hash=prev or GENESIS_HASH,
    )
    key = keyring_of(session).current
    event.key_id = key.key_id if key else None
    fields = keyed_fields(hashed_fields(event), event.key_id)
    event.hash = event_hash(event.prev_hash, fields, key.chain_key if key else None)
    session.add(event)
    session.flush()
    return event
