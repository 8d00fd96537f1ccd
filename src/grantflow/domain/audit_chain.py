"""The audit log's hash chain: each event's hash covers its content and the previous hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical(fields: Mapping[str, Any]) -> str:
    def default(value: object) -> str:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"cannot put {type(value).__name__} in an audit event")

    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=default)


def event_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(fields)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    seq: int
    fields: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(events: Iterable[ChainedEvent]) -> ChainBreak | None:
    """Walk events in ``seq`` order; return where the chain first breaks, or None."""
    expected_prev = GENESIS_HASH
    last_seq = 0
    for event in events:
        if event.seq <= last_seq:
            return ChainBreak(event.seq, "events out of order")
        if event.prev_hash != expected_prev:
            return ChainBreak(
                event.seq, "previous-hash link broken: an event before it was removed or inserted"
            )
        if event_hash(event.prev_hash, event.fields) != event.hash:
            return ChainBreak(event.seq, "content does not match its hash: the event was edited")
        expected_prev = event.hash
        last_seq = event.seq
    return None
