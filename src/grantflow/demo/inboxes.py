"""The demo's stand-ins for a mail server and a SIEM: where notifications land, on loopback.

The mailbox is a real SMTP server (aiosmtpd) that files each message as an ``.eml`` file; the
webhook sink is a real HTTP server that checks every event's HMAC signature the way a
receiver should (``grantflow.notify.webhook.sign``) and counts what arrived.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from grantflow.demo.moto_server import free_loopback_port
from grantflow.notify.webhook import sign


@dataclass
class Mailbox:
    directory: Path
    port: int
    received: int = 0
    recipients: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.received += 1
            path = self.directory / f"{self.received:04d}.eml"
            self.recipients.update(envelope.rcpt_tos)
        path.write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def mailbox(directory: Path) -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    directory.mkdir(parents=True, exist_ok=True)
    box = Mailbox(directory, free_loopback_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class WebhookSink:
    secret: str
    port: int
    events: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/grantflow-events"

    def accept(self, headers: Any, body: bytes) -> bool:
        timestamp = str(headers.get("X-Grantflow-Timestamp", ""))
        given = str(headers.get("X-Grantflow-Signature", ""))
        good = hmac.compare_digest(given, sign(self.secret, timestamp, body))
        with self._lock:
            if good:
                self.events[str(json.loads(body).get("type"))] += 1
            else:
                self.bad_signatures += 1
        return good


@contextlib.contextmanager
def webhook_sink(secret: str) -> Iterator[WebhookSink]:
    sink = WebhookSink(secret, free_loopback_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204 if sink.accept(self.headers, body) else 401)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", sink.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
