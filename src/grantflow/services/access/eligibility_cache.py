"""The requestable listing kept in memory, per eligibility generation.

"What can I request" is a union of sets (one per flow, ``services.access.requestable``) over
every resource, counted and paged in the listing's order (type, name, id). Recomputing the
union in the database costs hundreds of milliseconds at 100,000 resources; here it costs
microseconds, because each set is kept as a bitset over the resources' *ranks* in that order:

* a :class:`Listing` holds, for one state of the data, every resource id in order (rank →
  id, id → rank), each type's rank range (type is the first sort key, so a type filter is a
  contiguous range), the lowercased names and AWS ids for the search, and the inactive
  resources as a bitset (an account or integration filter is a set like a flow's);
* a set is a Python ``int`` used as a bitset (``|``, ``&``, ``~`` and ``int.bit_count`` run in
  C; 100,000 resources are 12.5 KB), built once from its SQL query and kept by content
  (whatever the caller names it by: a flow's compiled scope), least recently used first out;
* a page walks the set bits from the offset, skipping whole chunks by their popcount.

Exactness comes from the database: the row ``eligibility_generation`` carries a token replaced
in the same transaction as every write to resources or their index (``store.resource_index``).
Each request reads the token first and uses only the listing built for that token, so a
listing built from older data is never served once a change has committed — on this process
or any other replica. A listing labelled with a token was read after that token was, so it is
never older than its label. The first request after a change pays the rebuild (:func:`warm`
lets a writer pay it instead).
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate, groupby
from typing import Any

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from grantflow.store import resource_index
from grantflow.store.models import Resource
from grantflow.store.models_index import InactiveResource

# Bitsets kept per listing, by size: ~2,600 sets of 100,000 resources (500 flows need 500).
MAX_SET_BYTES = 32 * 1024 * 1024
# Listings kept at once (the current one, and one being replaced while requests finish).
MAX_LISTINGS = 2
_SEP = "\x00"  # between a name and its AWS id, and between resources, in the search text
_CHUNK = 1024  # bytes of a bitset skipped at once by their popcount when paging
_BITS = tuple(tuple(b for b in range(8) if byte >> b & 1) for byte in range(256))


@dataclass(frozen=True, slots=True)
class Criteria:
    """The listing's filters: a type, an account, an integration, a name or AWS id search."""

    type: str | None = None
    account: str | None = None
    integration_id: str | None = None
    q: str | None = None


def bits(ranks: Iterable[int], size: int) -> int:
    """The bitset of ``ranks`` (each below ``size``)."""
    buf = bytearray((size + 7) // 8)
    for rank in ranks:
        buf[rank >> 3] |= 1 << (rank & 7)
    return int.from_bytes(buf, "little")


def as_bytes(bitset: int) -> bytes:
    """The bitset's bytes, lowest bits first (bit ``r`` is ``data[r // 8] >> r % 8 & 1``)."""
    return bitset.to_bytes((bitset.bit_length() + 7) // 8, "little")


def set_ranks(bitset: int, offset: int, limit: int) -> list[int]:
    """The ranks of the set bits number ``offset`` to ``offset + limit - 1`` (lowest first)."""
    if bitset <= 0 or limit <= 0:
        return []
    data = as_bytes(bitset)
    out: list[int] = []
    skip = offset
    for start in range(0, len(data), _CHUNK):
        chunk = data[start : start + _CHUNK]
        count = int.from_bytes(chunk, "little").bit_count()
        if skip >= count:
            skip -= count
            continue
        for j, byte in enumerate(chunk):
            if not byte:
                continue
            positions = _BITS[byte]
            if skip >= len(positions):
                skip -= len(positions)
                continue
            base = (start + j) * 8
            for bit in positions[skip:]:
                out.append(base + bit)
                if len(out) == limit:
                    return out
            skip = 0
    return out


@dataclass
class Listing:
    """Every resource in the listing's order, for one eligibility generation."""

    token: str | None
    ids: list[str]
    rank: dict[str, int]
    type_ranges: dict[str, tuple[int, int]]
    text: str
    starts: array[int]
    inactive: int
    _sets: OrderedDict[Hashable, int] = field(default_factory=OrderedDict)
    _set_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def everything(self) -> int:
        return (1 << self.size) - 1

    def cached(self, key: Hashable, build: Callable[[], int]) -> int:
        """The bitset kept under ``key``, built by ``build`` on first use."""
        with self._lock:
            found = self._sets.get(key)
            if found is not None:
                self._sets.move_to_end(key)
                return found
            made = build()
            self._sets[key] = made
            self._set_bytes += _bytes(made)
            while self._set_bytes > MAX_SET_BYTES and len(self._sets) > 1:
                _, old = self._sets.popitem(last=False)
                self._set_bytes -= _bytes(old)
            return made

    def of_query(self, session: Session, key: Hashable, query: Callable[[], Select[Any]]) -> int:
        """The bitset of the resource ids ``query()`` selects, kept under ``key`` (and noted as
        wanted, so that :func:`warm` builds it again for the next state of the data)."""
        _note_wanted(_database(session), key, query)

        def build() -> int:
            rank = self.rank
            found = (rank.get(i) for i in session.connection().execute(query()).scalars())
            return bits((r for r in found if r is not None), self.size)

        return self.cached(key, build)

    def mask(self, session: Session, criteria: Criteria) -> int:
        """The resources passing ``criteria`` (every resource when it names nothing)."""
        out = self.everything
        if criteria.type is not None:
            lo, hi = self.type_ranges.get(criteria.type, (0, 0))
            out &= ((1 << (hi - lo)) - 1) << lo
        for name, column, value in (
            ("account", Resource.account_id, criteria.account),
            ("integration", Resource.integration_id, criteria.integration_id),
        ):
            if value is not None:
                query = partial(select(Resource.id).where, column == value)
                out &= self.of_query(session, (name, value), query)
        if criteria.q:
            out &= self.cached(("q", criteria.q.lower()), lambda: self._search(criteria.q or ""))
        return out

    def _search(self, q: str) -> int:
        """Resources whose lowercased name or AWS id contains ``q`` (lowercased)."""
        needle = q.lower()
        if not needle or _SEP in needle:
            return 0
        text, starts, found = self.text, self.starts, []
        at = text.find(needle)
        while at >= 0:
            rank = bisect_right(starts, at) - 1
            found.append(rank)
            if rank + 1 >= len(starts):
                break
            at = text.find(needle, starts[rank + 1])
        return bits(found, self.size)

    def page_ids(self, eligible: int, offset: int, limit: int) -> list[str]:
        return [self.ids[r] for r in set_ranks(eligible, offset, limit)]


def _bytes(bitset: int) -> int:
    return (bitset.bit_length() + 7) // 8 + 32


def build_listing(session: Session, token: str | None) -> Listing:
    """Read every resource's id, type, name and AWS id in the listing's order (the
    database's: its collation decides how names sort, as the SQL listing did before)."""
    conn = session.connection()
    rows = conn.execute(
        select(Resource.id, Resource.type, Resource.name, Resource.aws_id).order_by(
            Resource.type, Resource.name, Resource.id
        )
    ).all()
    ids = [row[0] for row in rows]
    type_ranges: dict[str, tuple[int, int]] = {}
    start = 0
    for rtype, group in groupby(row[1] for row in rows):
        end = start + sum(1 for _ in group)
        type_ranges[rtype] = (start, end)
        start = end
    entries = [f"{(row[2] or '').lower()}{_SEP}{(row[3] or '').lower()}{_SEP}" for row in rows]
    starts = array("q", accumulate(map(len, entries), initial=0))
    starts.pop()
    rank = {rid: n for n, rid in enumerate(ids)}
    inactive_ids = conn.execute(select(InactiveResource.resource_id)).scalars()
    inactive = bits((rank[i] for i in inactive_ids if i in rank), len(ids))
    return Listing(token, ids, rank, type_ranges, "".join(entries), starts, inactive)


_listings: OrderedDict[tuple[str, str], Listing] = OrderedDict()
_build_lock = threading.Lock()


def _database(session: Session) -> str:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return engine.url.render_as_string(hide_password=True)


def listing(session: Session) -> Listing:
    """The listing of the data ``session`` sees: the kept one when its token is current, else
    a new one (kept under the token read before the data was)."""
    token = resource_index.generation(session.connection())
    if token is None:  # no generation row: nothing may be kept
        return build_listing(session, None)
    key = (_database(session), token)
    found = _listings.get(key)
    if found is not None:
        return found
    with _build_lock:
        found = _listings.get(key)
        if found is not None:
            return found
        made = build_listing(session, token)
        for other in [k for k in _listings if k[0] == key[0]]:
            del _listings[other]  # an older state of the same database: never served again
        _listings[key] = made
        while len(_listings) > MAX_LISTINGS:
            _listings.popitem(last=False)
        return made


# The sets requests asked for lately, per database, with their queries: what warm() rebuilds.
MAX_WANTED = 1000
_wanted: dict[str, OrderedDict[Hashable, Callable[[], Select[Any]]]] = {}
_settling: dict[str, str | None] = {}  # per database: the token the last warm() saw
_warmed: dict[str, str] = {}  # per database: the token warm() last finished


_wanted_lock = threading.Lock()


def _note_wanted(database: str, key: Hashable, query: Callable[[], Select[Any]]) -> None:
    with _wanted_lock:
        wanted = _wanted.setdefault(database, OrderedDict())
        wanted[key] = query
        wanted.move_to_end(key)
        while len(wanted) > MAX_WANTED:
            wanted.popitem(last=False)


def warm(session: Session, more: Callable[[Listing], int] | None = None) -> int:
    """Build the listing of the current state, the sets asked for lately and whatever
    ``more`` builds on it, so that the first request after a change does not pay for them;
    returns how many sets were built. Called periodically (``requestable.warm_tick``): it
    waits until the token has not moved since its previous call, so a sync that commits
    account after account is warmed once it has finished, not after every account."""
    database = _database(session)
    token = resource_index.generation(session.connection())
    if token is None or _warmed.get(database) == token:
        return 0
    if _settling.get(database) != token:
        _settling[database] = token
        return 0
    current = listing(session)
    before = len(current._sets)
    with _wanted_lock:
        wanted = list(_wanted.get(database, {}).items())
    for key, query in wanted:
        current.of_query(session, key, query)
    if more is not None:
        more(current)
    _warmed[database] = token
    return len(current._sets) - before


def clear() -> None:
    """Forget every listing (tests, and a process that wants its memory back)."""
    with _build_lock:
        _listings.clear()
        _warmed.clear()
