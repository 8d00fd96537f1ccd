"""JSON merge patch (RFC 7396): how a partial object updates a stored one. Pure.

An object in the patch merges into the target key by key; ``null`` removes a key; anything
else (a string, a number, a list) replaces the value whole.
"""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied; neither argument is modified."""
    if not isinstance(patch, dict):
        return patch
    merged: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged
