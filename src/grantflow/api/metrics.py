"""``/metrics`` is open unless GRANTFLOW_METRICS_TOKEN is set; then a scrape must send
``Authorization: Bearer <token>`` (``require_metrics_token``). The metrics themselves are
grantflow.metrics.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from pydantic import SecretStr


def scrape_allowed(authorization: str | None, token: SecretStr | None) -> bool:
    """Whether an ``Authorization`` header may read the metrics (always, without a token)."""
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode("utf-8")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8"), expected
    )


def require_metrics_token(request: Request) -> None:
    """The ``/metrics`` route's dependency: 401 without the configured bearer token."""
    token = request.app.state.ctx.settings.metrics_token
    if not scrape_allowed(request.headers.get("authorization"), token):
        raise HTTPException(
            status_code=401,
            detail="/metrics needs Authorization: Bearer <GRANTFLOW_METRICS_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
