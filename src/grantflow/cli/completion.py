"""Shell-completion callbacks: integration names and request ids from the signed-in server.

Completion runs on every <TAB>, so each lookup is one quick GET with a short timeout and says
nothing on failure: a server that cannot be reached offers no candidates instead of printing
an error into the user's prompt.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from grantflow.cli import credentials

_TIMEOUT = 3.0


def _get(path: str, params: dict[str, Any] | None = None) -> Any:
    stored = credentials.load()
    url = os.environ.get("GRANTFLOW_URL") or (stored.url if stored else None)
    token = os.environ.get("GRANTFLOW_TOKEN") or (stored.token if stored else None)
    if not url or not token:
        return None
    try:
        response = httpx.get(
            f"{url.rstrip('/')}{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "grantflow-cli"},
            timeout=_TIMEOUT,
        )
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


def integration_names(incomplete: str) -> list[str]:
    rows = _get("/api/v1/integrations") or []
    return sorted(str(r["name"]) for r in rows if str(r.get("name", "")).startswith(incomplete))


def request_ids(incomplete: str) -> list[tuple[str, str]]:
    rows = _get("/api/v1/access-requests", {"scope": "mine", "limit": 50}) or []
    return [
        (str(r["id"]), f"{r['state']} {r['resource_type']} {r['permission']}")
        for r in rows
        if str(r.get("id", "")).startswith(incomplete)
    ]
