"""The hash chain notices edits, deletions, insertions and reordering."""

from __future__ import annotations

from dataclasses import replace

from grantflow.domain.audit_chain import GENESIS_HASH, ChainedEvent, event_hash, verify_chain


def _chain(n: int) -> list[ChainedEvent]:
    events, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        fields = {"action": f"a{seq}", "seq_data": seq}
        digest = event_hash(prev, fields)
        events.append(ChainedEvent(seq, fields, prev, digest))
        prev = digest
    return events


def test_intact_chain_verifies() -> None:
    assert verify_chain(_chain(5)) is None
    assert verify_chain([]) is None


def test_edit_is_found_where_it_happened() -> None:
    events = _chain(5)
    events[2] = replace(events[2], fields={"action": "forged", "seq_data": 3})
    broken = verify_chain(events)
    assert broken is not None and broken.seq == 3 and "edited" in broken.reason


def test_deletion_breaks_the_next_link() -> None:
    events = _chain(5)
    del events[1]
    broken = verify_chain(events)
    assert broken is not None and broken.seq == 3 and "link" in broken.reason


def test_reorder_is_found() -> None:
    events = _chain(4)
    events[1], events[2] = events[2], events[1]
    broken = verify_chain(events)
    assert broken is not None and broken.seq == 3  # event 3 now stands where event 2 should


def test_insertion_is_found() -> None:
    events = _chain(3)
    fake = ChainedEvent(2, {"action": "inserted"}, events[0].hash, "f" * 64)
    broken = verify_chain([events[0], fake, *events[1:]])
    assert broken is not None and broken.seq == 2
