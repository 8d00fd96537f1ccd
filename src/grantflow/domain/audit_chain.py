"""The audit log's hash chains: each event's hash covers its content and the previous hash.

Since the audit key (kept outside the database: settings, a key file) exists, each hash is an
HMAC-SHA256 under a key derived from it, and the event records the key's id. Someone who can
write to the database but does not hold the key cannot edit an event and hash the chain
forward again: the new hashes would not be MACs under the key. Events written before the key
existed (``key_id`` None) keep the unkeyed SHA-256 rule; they may only precede keyed events,
so a forger cannot fall back to the unkeyed rule for the events they rewrite.

Two chains use the same rule: the activity log (``audit_events``) and the session audit
(CloudTrail events matched to grants, ``session_audit_events``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64
MIN_KEY_LENGTH = 32  # characters of the configured secret


def canonical(fields: Mapping[str, Any]) -> str:
    def default(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"cannot put {type(value).__name__} in an audit event")

    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=default)


def event_hash(prev_hash: str, fields: Mapping[str, Any], key: bytes | None = None) -> str:
    """SHA-256 of the previous hash and the canonical fields; HMAC-SHA256 under ``key``."""
    message = (prev_hash + canonical(fields)).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _derive(secret: bytes, label: str) -> bytes:
    return hmac.new(secret, f"grantflow/audit/{label}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The secret behind the chain's MACs and the checkpoints' signatures.

    Separate keys are derived for each use, so a chain MAC can never pass for a checkpoint
    signature; ``key_id`` (stored with each event) names the key without revealing it.
    """

    secret: bytes = field(repr=False)

    @classmethod
    def from_text(cls, text: str) -> AuditKey:
        value = text.strip()
        if len(value) < MIN_KEY_LENGTH:
            raise ValueError(f"the audit key must be at least {MIN_KEY_LENGTH} characters")
        return cls(value.encode("utf-8"))

    @property
    def key_id(self) -> str:
        return _derive(self.secret, "key-id").hex()[:16]

    @property
    def chain_key(self) -> bytes:
        return _derive(self.secret, "chain/v1")

    @property
    def checkpoint_key(self) -> bytes:
        return _derive(self.secret, "checkpoint/v1")


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current key (signs new events and checkpoints) and retired ones (verify only)."""

    current: AuditKey | None = None
    retired: tuple[AuditKey, ...] = ()

    def find(self, key_id: str) -> AuditKey | None:
        keys = (self.current, *self.retired) if self.current else self.retired
        return next((k for k in keys if k.key_id == key_id), None)


class BreakKind(StrEnum):
    ORDER = "order"  # events out of order
    LINK = "link"  # an event before it was removed or inserted
    CONTENT = "content"  # the event was edited
    UNKEYED = "unkeyed"  # an unkeyed event after keyed ones: forged without the key
    UNKNOWN_KEY = "unknown_key"  # hashed with a key this verifier does not hold
    TRUNCATED = "truncated"  # a checkpoint names events that are gone
    REWRITTEN = "rewritten"  # the chain at a checkpoint's seq is not what was signed


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    seq: int
    fields: Mapping[str, Any]  # without key_id: the rule adds it for keyed events
    prev_hash: str
    hash: str
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str
    kind: BreakKind = BreakKind.CONTENT


def keyed_fields(fields: Mapping[str, Any], key_id: str | None) -> Mapping[str, Any]:
    """What the hash covers: the fields, and for keyed events the key's id too."""
    return fields if key_id is None else {**fields, "key_id": key_id}


def _check(event: ChainedEvent, keys: Keyring, seen_keyed: bool) -> ChainBreak | None:
    key: bytes | None = None
    if event.key_id is None:
        if seen_keyed:
            return ChainBreak(event.seq, "an unkeyed event after keyed ones: written or "
                              "rewritten without the audit key", BreakKind.UNKEYED)  # fmt: skip
    else:
        found = keys.find(event.key_id)
        if found is None:
            return ChainBreak(event.seq, f"hashed with audit key {event.key_id}, which this "
                              "verifier does not hold (GRANTFLOW_AUDIT_KEY, "
                              "GRANTFLOW_AUDIT_RETIRED_KEYS)", BreakKind.UNKNOWN_KEY)  # fmt: skip
        key = found.chain_key
    if event_hash(event.prev_hash, keyed_fields(event.fields, event.key_id), key) != event.hash:
        return ChainBreak(event.seq, "content does not match its hash: the event was edited")
    return None


def verify_chain(events: Iterable[ChainedEvent], keys: Keyring | None = None) -> ChainBreak | None:
    """Walk events in ``seq`` order; return where the chain first breaks, or None."""
    keys = keys or Keyring()
    expected_prev = GENESIS_HASH
    last_seq = 0
    seen_keyed = False
    for event in events:
        if event.seq <= last_seq:
            return ChainBreak(event.seq, "events out of order", BreakKind.ORDER)
        if event.prev_hash != expected_prev:
            return ChainBreak(event.seq, "previous-hash link broken: an event before it was "
                              "removed or inserted", BreakKind.LINK)  # fmt: skip
        broken = _check(event, keys, seen_keyed)
        if broken is not None:
            return broken
        seen_keyed = seen_keyed or event.key_id is not None
        expected_prev = event.hash
        last_seq = event.seq
    return None


def utc_iso(value: datetime) -> str:
    """A timestamp as hashed: UTC, ISO 8601 (naive values are UTC already)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


SESSION_EVENT_FIELDS = ("id", "grant_id", "event_id", "event_time", "event_source",
                        "event_name", "error_code", "account_id", "source_ip", "raw",
                        "ingested_at")  # fmt: skip


def session_event_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a session-audit event's hash covers (a row of ``session_audit_events``)."""
    fields = {name: row[name] for name in SESSION_EVENT_FIELDS}
    fields["event_time"] = utc_iso(row["event_time"])
    fields["ingested_at"] = utc_iso(row["ingested_at"])
    return fields
