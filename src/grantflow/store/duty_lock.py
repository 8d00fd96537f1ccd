"""One replica at a time for a scheduler duty that reads rows and then inserts from them.

Every ``grantflow serve`` replica runs every scheduler duty. Duties that lock what they act
on (lease expiry, grant expiry, notification delivery: ``FOR UPDATE SKIP LOCKED``) already
share the work. Duties that decide from an unlocked read and then insert (queueing periodic
syncs, reconciliations and audit ingestion; creating the notification producer's cursor)
could make the same decision in two replicas at once; the second insert then hit a unique
key (a job's idempotency key, a sync run's generation, a cursor's primary key) and the whole
tick failed with an ``IntegrityError``, logged as an error, on every multi-replica deployment.

``acquire`` is the first statement of such a duty's transaction. On PostgreSQL it takes a
transaction-scoped advisory lock with ``pg_try_advisory_xact_lock``: it never waits, and
a replica that does not get it skips the tick (the replica holding it does the work, and the
next tick runs again wherever the lock is free). The lock is released at commit or rollback,
so a replica killed mid-tick leaves nothing behind. Because PostgreSQL's default READ
COMMITTED isolation gives each statement a fresh snapshot, the duty's reads, which come after
the lock, see everything the previous holder committed (e.g. ``next_sync_at`` moved on).

The key is a 64-bit hash of the duty's name (blake2b, computed here: the same in every replica
and every release), combined in SQL with a hash of ``current_schema()``: advisory locks
belong to the whole database, and two deployments in different schemas of one database (or
tests running in parallel, one schema each) must not skip each other's ticks. Keys derived
this way do not meet the audit chain's small fixed key (``services.audit``) in practice.

Why not ``SELECT ... FROM integrations FOR UPDATE SKIP LOCKED`` instead: these duties lock
nothing yet and then write audit events, which take the audit chain's lock; a row lock on
integrations taken first would order those two locks against the transactions that append
to the chain and then update an integration (e.g. a finishing verify job), the deadlock the
hardening runs already found once. It would also make API edits of an integration wait for
the tick, and not cover inserts that are not about one integration row (the notification
cursor). A try-lock taken before anything else never waits, so it cannot join a deadlock.

On SQLite there is nothing to do: every write transaction starts with ``BEGIN IMMEDIATE``
(see ``store.db``), so there is one writer at a time and a duty's read-then-insert already
runs alone.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

_TRY_LOCK = text(
    "SELECT pg_try_advisory_xact_lock(CAST(:key AS bigint) # hashtextextended(current_schema(), 0))"
)


def key_of(duty: str) -> int:
    """The duty's stable signed 64-bit lock key (before the schema is mixed in)."""
    digest = hashlib.blake2b(f"grantflow.duty:{duty}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def acquire(session: Session, duty: str) -> bool:
    """Try to become the one replica running ``duty`` for this transaction; False means
    another replica is running it now and this tick should do nothing. Call it first in the
    duty's transaction. Always True on SQLite (one writer at a time)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(_TRY_LOCK, {"key": key_of(duty)}))
