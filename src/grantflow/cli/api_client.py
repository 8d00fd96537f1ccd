"""The CLI's HTTP client for the Grantflow API (URL and token from options or environment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from rich.markup import escape

from grantflow.cli.errors import fail


class Api:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "grantflow-cli"},
            timeout=timeout,
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def call(
        self, method: str, path: str, *, explain: Callable[[str], str] | None = None, **kwargs: Any
    ) -> Any:
        """``explain``: rewrites an error's message for the user (e.g. durations as typed)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise fail(f"cannot reach {self._http.base_url}: {err}") from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                field = f" ({error['field']})" if error.get("field") else ""
                message = f"{error['message']}{field}"
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            if explain is not None:
                message = explain(message)
            raise fail(f"HTTP {response.status_code}: {escape(message)}")
        return response.json() if response.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)
