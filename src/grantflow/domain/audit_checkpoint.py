"""Signed checkpoints of the audit chains, kept outside the database.

A checkpoint says "at time T the activity log ended at seq N with hash H, and the session
audit at seq M with hash G", signed with HMAC-SHA256 under a key derived from the audit key.
The scheduler writes one to each sink (an append-only file, an S3 object under Object Lock,
webhooks) whenever a chain moved. Whoever can rewrite the database cannot rewrite what was
already sent out: deleting the last events leaves a checkpoint past the end of the chain
(truncation), and rewriting events before it changes the hash at its seq (rewriting).

Why HMAC and not Ed25519: Grantflow itself is the verifier (``grantflow audit verify``) and
already holds the audit key, kept outside the database; one secret to provision, rotate and
back up instead of a key pair, and no new dependency. Forging a checkpoint needs the same key
as forging the chain, and the sinks that matter (S3 Object Lock, a receiver's webhook log)
refuse to let an old checkpoint be replaced, which the signature alone could not prevent.
A public-key signature would let a third party verify without that secret; nothing here needs
that yet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from grantflow.domain.audit_chain import (
    GENESIS_HASH,
    AuditKey,
    BreakKind,
    ChainBreak,
    Keyring,
    canonical,
    utc_iso,
)

VERSION = 1


class CheckpointFormatError(ValueError):
    """A checkpoint record that is not a checkpoint (malformed JSON, missing fields)."""


@dataclass(frozen=True, slots=True)
class Head:
    """Where one chain ends: its last seq and that event's hash (0 and genesis when empty)."""

    seq: int = 0
    hash: str = GENESIS_HASH


@dataclass(frozen=True, slots=True)
class Checkpoint:
    events: Head
    session_events: Head
    at: datetime
    key_id: str
    signature: str = ""

    def payload(self) -> dict[str, Any]:
        return {
            "v": VERSION, "seq": self.events.seq, "head_hash": self.events.hash,
            "session_seq": self.session_events.seq,
            "session_head_hash": self.session_events.hash,
            "at": utc_iso(self.at), "key_id": self.key_id,
        }  # fmt: skip

    def signed(self, key: AuditKey) -> Checkpoint:
        named = replace(self, key_id=key.key_id)
        return replace(named, signature=_mac(key, named.payload()))

    def to_json(self) -> str:
        return json.dumps({**self.payload(), "signature": self.signature}, sort_keys=True,
                          separators=(",", ":"))  # fmt: skip


def _mac(key: AuditKey, payload: dict[str, Any]) -> str:
    message = canonical(payload).encode("utf-8")
    return hmac.new(key.checkpoint_key, message, hashlib.sha256).hexdigest()


def parse(text: str) -> Checkpoint:
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise CheckpointFormatError(f"not a version-{VERSION} checkpoint")
        return Checkpoint(
            events=Head(int(data["seq"]), str(data["head_hash"])),
            session_events=Head(int(data["session_seq"]), str(data["session_head_hash"])),
            at=datetime.fromisoformat(str(data["at"])),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        if isinstance(err, CheckpointFormatError):
            raise
        raise CheckpointFormatError(f"not a checkpoint: {err}") from err


def signature_problem(checkpoint: Checkpoint, keys: Keyring) -> str | None:
    """Why the checkpoint's signature cannot be trusted, or None when it is good."""
    key = keys.find(checkpoint.key_id)
    if key is None:
        return f"signed with audit key {checkpoint.key_id}, which this verifier does not hold"
    expected = _mac(key, checkpoint.payload())
    if not hmac.compare_digest(expected, checkpoint.signature):
        return "signature does not match: the checkpoint was forged or altered"
    return None


def compare(name: str, signed: Head, last: Head, hash_at_seq: str | None) -> ChainBreak | None:
    """Check one chain against what a checkpoint signed for it.

    ``last`` is where the chain ends now; ``hash_at_seq`` the hash of its event at the
    checkpoint's seq (None when there is no such event).
    """
    if signed.seq == 0:
        return None
    if signed.seq > last.seq:
        return ChainBreak(
            last.seq + 1,
            f"{name} truncated: the checkpoint signed seq {signed.seq} but the chain ends at "
            f"{last.seq} ({signed.seq - last.seq} or more events removed)",
            BreakKind.TRUNCATED,
        )
    if hash_at_seq != signed.hash:
        return ChainBreak(
            signed.seq,
            f"{name} rewritten: the event at seq {signed.seq} does not have the hash the "
            "checkpoint signed",
            BreakKind.REWRITTEN,
        )
    return None
