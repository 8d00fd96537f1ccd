"""For the Slack tests: a local HTTP server standing in for Slack (the Web API methods
Grantflow calls, and the ``response_url`` a button click carries; it records every call and
can be told to fail), and a notice to send."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi.testclient import TestClient

from grantflow.api.app import create_app
from grantflow.notify.base import Notice, NoticeKind, Recipient
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import Settings
from tests.fixtures.api import make_settings

BOT_TOKEN = "xoxb-test-bot-token"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the signing secret of the apps below
BASE_URL = "https://grantflow.example.com"
ALICE = Recipient("u-alice", "alice@example.com", "Alice Example")
BOB = Recipient("u-bob", "Bob@Example.com", "Bob Builder")


def notice(kind: NoticeKind = NoticeKind.APPROVAL_NEEDED, **changes: Any) -> Notice:
    values: dict[str, Any] = {
        "kind": kind,
        "request_id": "0b9f6a52-7f7e-4a4b-9d55-3f1c6f0f2a10",
        "requester": ALICE,
        "summary": "Alice Example requests member on Admins for 2h",
        "justification": "INC-42: <!channel> restart the payments service",
        "integration": "Org",
        "resource_type": "identity-center-group",
        "resources": ("Admins",),
        "permission": "member",
        "duration_seconds": 7200,
        "state": "pending",
        "occurred_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "link": "https://grantflow.example.com/requests/0b9f6a52-7f7e-4a4b-9d55-3f1c6f0f2a10",
        "recipients": (BOB,) if kind is NoticeKind.APPROVAL_NEEDED else (ALICE,),
    }
    values.update(changes)
    return Notice(**values)


@dataclass
class Call:
    method: str  # "chat.postMessage", … or "response" for a response_url post
    params: dict[str, Any]
    authorization: str | None


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class SlackReceiver:
    """``users`` maps Slack user id → email; the Web API lives under ``api_url``."""

    def __init__(self) -> None:
        self.users: dict[str, str] = {}
        self.calls: list[Call] = []
        self.failures: dict[str, Failure] = {}
        self.posted = 0  # each chat.postMessage gets its own ts, as in Slack
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "click") -> str:
        return f"{self.url}/response/{name}"

    def __enter__(self) -> SlackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail(self, method: str, status: int, error: str | None, **headers: str) -> None:
        body: dict[str, Any] = {"ok": False, "error": error} if error else {}
        self.failures[method] = Failure(status, body, headers)

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "users.lookupByEmail":
            wanted = str(params.get("email")).lower()  # Slack matches emails case-insensitively
            ids = [uid for uid, email in self.users.items() if email.lower() == wanted]
            if not ids:
                return 200, {"ok": False, "error": "users_not_found"}
            return 200, {"ok": True, "user": {"id": ids[0], "profile": {}}}
        if method == "users.info":
            uid = str(params.get("user"))
            if uid not in self.users:
                return 200, {"ok": False, "error": "user_not_found"}
            return 200, {"ok": True, "user": {"id": uid, "profile": {"email": self.users[uid]}}}
        if method == "conversations.open":
            return 200, {"ok": True, "channel": {"id": "D" + str(params.get("users"))}}
        if method == "chat.postMessage":
            with self._lock:
                self.posted += 1
                ts = f"1700000000.{self.posted:06d}"
            return 200, {"ok": True, "channel": params.get("channel"), "ts": ts}
        if method == "chat.update":
            return 200, {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        return 404, {"ok": False, "error": "unknown_method"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                path = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params: dict[str, Any] = dict(parse_qsl(path.query))
                if raw and "json" in (self.headers.get("Content-Type") or ""):
                    params.update(json.loads(raw))
                elif raw:
                    params.update(parse_qsl(raw.decode()))
                if path.path.startswith("/response/"):
                    method = "response"
                elif path.path.startswith("/api/"):
                    method = path.path.removeprefix("/api/")
                else:
                    method = path.path
                with receiver._lock:
                    receiver.calls.append(Call(method, params, self.headers.get("Authorization")))
                failure = receiver.failures.get(method)
                if failure is not None:
                    status, body, headers = failure.status, failure.body, failure.headers
                elif method == "response":
                    status, body, headers = 200, {"ok": True}, {}
                else:
                    status, body = receiver._answer(method, params)
                    headers = {}
                data = json.dumps(body).encode() if body else b"<html>Bad Gateway</html>"
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if body else "text/html")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        return Handler


@contextmanager
def slack_app(db_url: str) -> Iterator[tuple[TestClient, Settings, SlackReceiver]]:
    """The API (no workers) with Slack configured against a :class:`SlackReceiver`: bot
    token, signing secret, ``#access`` as the default channel."""
    with SlackReceiver() as receiver:
        settings = make_settings(
            db_url, slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET,
            slack_api_url=receiver.api_url, base_url=BASE_URL, slack_default_channel="#access",
        )  # fmt: skip
        prepare_database(settings)
        with TestClient(create_app(settings, run_workers=False)) as client:
            yield client, settings, receiver


def signed_headers(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """The headers Slack sends with an interaction: its v0 signature of ``body``."""
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
