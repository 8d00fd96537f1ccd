"""Paging bounds shared by the list endpoints.

An offset is bounded so that it always fits the databases' 64-bit integers (SQLite refuses a
larger Python int with OverflowError, which was a 500): a billion rows is past any real table.
"""

from __future__ import annotations

MAX_OFFSET = 1_000_000_000
MAX_CURSOR = 2**63 - 1  # a sequence number cursor: a signed 64-bit column
