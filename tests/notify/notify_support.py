"""For the notification tests: a real HTTP receiver and a real SMTP server (aiosmtpd) on
loopback, each in a thread, and a small world (integration, account, flow, people) to make
access requests in through the API."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session, sessionmaker

from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import transaction
from grantflow.store.models import DirectoryPrincipal, Integration, Permission, Resource, User
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_body

SECRET = "whsec-0123456789abcdef-test"
ACCOUNT = "111111111111"
PS_ARN = "arn:aws:sso:::permissionSet/ssoins-1/ps-readonly"


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` until it is truthy; the deadline only bounds a failure (a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (README "Notifications"): recompute and compare in constant time."""
    timestamp = headers["x-grantflow-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), headers["x-grantflow-signature"])


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Answers each POST with the next status of ``script`` (then 200) and records it."""

    script: list[int] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, hit: Hit) -> int:
        with self.lock:
            self.hits.append(hit)
            return self.script.pop(0) if self.script else 200


@contextmanager
def http_receiver(script: list[int] | None = None) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(script=list(script or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(Hit(self.path, headers, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/grantflow"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Mail:
    sender: str
    rcpt: list[str]
    message: EmailMessage

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.rcpt]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


# ---- a world to request access in -------------------------------------------------------


@dataclass
class World:
    integration_id: str
    resource_id: str
    users: dict[str, str]  # username -> id
    tokens: dict[str, str]  # username -> personal API token

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def make_world(api: Api, notify: dict[str, Any] | None = None, approvers: tuple[str, ...] = (
        "bob", "carol")) -> World:  # fmt: skip
    admin = api.as_admin()
    connector = api.client.post("/api/v1/connectors", json={"name": "c"}, headers=admin).json()
    # the portal the granted notices link to (tests/notify/test_notify_e2e.py)
    body = integration_body(connector["id"], sso_portal="https://d-1.awsapps.com/start")
    r = api.client.post("/api/v1/integrations", json=body, headers=admin)
    assert r.status_code == 201, r.text
    integration_id = r.json()["id"]
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    sessions: sessionmaker[Session] = ctx.sessions
    users: dict[str, str] = {}
    tokens: dict[str, str] = {}
    with transaction(sessions) as session:
        integ = session.get(Integration, integration_id)
        assert integ is not None
        integ.facts = {**integ.facts, "instance_arn": "arn:aws:sso:::instance/ssoins-1",
                       "identity_store_id": "d-1"}  # fmt: skip
        session.add(Permission(integration_id=integration_id, resource_type="aws-account",
                               name="ReadOnlyAccess", aws_ref=PS_ARN))  # fmt: skip
        resource = Resource(integration_id=integration_id, type="aws-account", aws_id=ACCOUNT,
                            name="prod", account_id=ACCOUNT)  # fmt: skip
        session.add(resource)
        for name in ("alice", "bob", "carol", "dave"):
            user = User(username=name, email=f"{name}@example.com", display_name=name.title())
            session.add(user)
            session.flush()
            session.add(DirectoryPrincipal(identity_store_id="d-1", principal_id=f"u-{name}",
                                           user_id=user.id, user_name=name,
                                           matched_by="username"))  # fmt: skip
            users[name] = user.id
            tokens[name] = create_personal_token(session, user, "t", SYSTEM).plaintext
        resource_id = resource.id
    definition: dict[str, Any] = {
        "requestors": {"everyone": True},
        "scope": {"resource_types": ["aws-account"], "mode": "all"},
        "permissions": {"aws-account": ["ReadOnlyAccess"]},
        "approval": {"mode": "any",
                     "groups": [{"kind": "users", "user_ids": [users[a] for a in approvers]}]},
        "max_duration_seconds": 7200,
    }  # fmt: skip
    if notify is not None:
        definition["notify"] = notify
    flow = {"name": "ro", "integration_id": integration_id, "definition": definition}
    r = api.client.post("/api/v1/access-flows", json=flow, headers=admin)
    assert r.status_code == 201, r.text
    return World(integration_id, resource_id, users, tokens)


def submit(api: Api, world: World, who: str = "alice", seconds: int = 3600) -> dict[str, Any]:
    body = {"resource_ids": [world.resource_id], "permission": "ReadOnlyAccess",
            "duration_seconds": seconds, "justification": "INC-7 look at the logs"}  # fmt: skip
    r = api.client.post("/api/v1/access-requests", json=body, headers=world.auth(who))
    assert r.status_code == 201, r.text
    return dict(r.json())
