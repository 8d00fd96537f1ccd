"""Webhooks: each notice POSTed as a JSON event signed with HMAC-SHA256.

Headers: ``X-Grantflow-Event`` (``request.approved`` …), ``X-Grantflow-Delivery`` (stable
across retries: receivers deduplicate on it), ``X-Grantflow-Timestamp`` (Unix seconds) and
``X-Grantflow-Signature: sha256=<hex>``, the HMAC-SHA256 with the webhook's secret of
``"<timestamp>.<body>"``. A 2xx answer is delivered; 408, 429, 5xx and network errors are
retried with backoff; any other answer is final (a receiver that refuses will refuse again).
Secrets and URLs (which may carry tokens) are never put in errors or logs: only the name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx

from grantflow.domain.notifications import CHANNEL_WEBHOOK
from grantflow.notify.base import DeliveryError, Notice
from grantflow.notify.config import WebhookTargetConfig

RETRYABLE_STATUS = frozenset({408, 429})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Grantflow-Signature`` value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def body_of(notice: Notice) -> bytes:
    return json.dumps(notice.as_event(), separators=(",", ":"), sort_keys=True).encode()


class WebhookChannel:
    name = CHANNEL_WEBHOOK

    def __init__(self, hooks: Sequence[WebhookTargetConfig], timeout_seconds: float = 10.0) -> None:
        self._hooks = {h.name: h for h in hooks}
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._hooks)

    def targets(self, notice: Notice, flow_options: dict[str, Any]) -> list[str]:
        chosen = flow_options.get("webhooks")
        names = list(self._hooks) if chosen is None else [str(n) for n in chosen]
        return [n for n in names if n in self._hooks]

    def send(self, notice: Notice, target: str) -> None:
        hook = self._hooks.get(target)
        if hook is None:
            raise DeliveryError(f"webhook {target!r} is no longer configured", retryable=False)
        body = body_of(notice)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Grantflow-Webhook/1",
            "X-Grantflow-Event": f"request.{notice.kind.value}",
            "X-Grantflow-Delivery": notice.delivery_id,
            "X-Grantflow-Timestamp": timestamp,
            "X-Grantflow-Signature": sign(hook.secret.get_secret_value(), timestamp, body),
        }
        try:
            response = self._client.post(hook.url, content=body, headers=headers)
        except httpx.TimeoutException as err:
            raise DeliveryError(f"webhook {target!r} timed out") from err
        except httpx.HTTPError as err:
            raise DeliveryError(f"webhook {target!r} unreachable: {type(err).__name__}") from err
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in RETRYABLE_STATUS
        raise DeliveryError(f"webhook {target!r} answered HTTP {status}", retryable=retryable)

    def close(self) -> None:
        self._client.close()
