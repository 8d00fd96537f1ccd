"""What the CLI says is what the user can use (issue 17, item 17), from a real `grantflow`
process at 80 columns against a stub API that answers as the real one does: durations in
the form typed, suggestions that paste into a shell, ids and ARNs never cut in tables."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from grantflow.cli.durations import in_form_of, seconds_in_form_of

REQUEST_ID = "0f8e2c4a-1b3d-4e5f-8a9b-0c1d2e3f4a5b"
ARN = "arn:aws:iam::111122223333:role/service-role/payments-reporting-readonly-access"
ITEM = {
    "resource_id": "5c1f3a9e-7d2b-4c8e-9f0a-1b2c3d4e5f60",
    "name": "payments-reporting-readonly-access",
    "aws_id": ARN,
    "type": "iam-role",
    "integration_id": "i-1",
    "account_id": "111122223333",
    "flows": [
        {"id": "f-1", "name": "roles", "permissions": ["Assume"], "max_duration_seconds": 14400}
    ],
}
ROUTES: dict[tuple[str, str], tuple[int, Any]] = {
    ("GET", "/api/v1/integrations"): (200, [{"id": "i-1", "name": "Prod Org"}]),
    ("GET", "/api/v1/requestable"): (200, {"items": [ITEM], "total": 1}),
    ("POST", "/api/v1/access-requests"): (422, {"error": {
        "message": "at most 14400 seconds through flow 'roles'", "field": "duration_seconds"}}),
    ("POST", f"/api/v1/access-requests/{REQUEST_ID}/extend"): (422, {"error": {
        "message": "at most 3600 seconds", "field": "seconds"}}),
}  # fmt: skip


class _Stub(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, body = ROUTES.get((self.command, urlsplit(self.path).path), (404, {"error": {
            "message": "not found"}}))  # fmt: skip
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRANTFLOW_URL": url, "GRANTFLOW_TOKEN": "gf_pat_stub", "COLUMNS": "80",
           "HOME": os.environ.get("HOME", "/tmp")}  # fmt: skip
    command = [sys.executable, "-m", "grantflow.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120,
                          check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "typed", "shown"),
    [(14400, "5h", "4h"), (14400, "300m", "240m"), (5400, "2h", "1h30m"), (3600, "1d", "1h"),
     (90, "2m", "1m30s"), (86400, "1d12h", "1d")],
)  # fmt: skip
def test_a_duration_is_shown_in_the_form_typed(seconds: int, typed: str, shown: str) -> None:
    assert in_form_of(seconds, typed) == shown
    assert seconds_in_form_of(f"at most {seconds} seconds", typed) == f"at most {shown}"


def test_create_says_the_limit_as_typed(stub: str) -> None:
    got = _cli(stub, "requests", "create", "-i", "Prod Org", "-t", "iam-role", "-r", ITEM["name"],
               "-p", "Assume", "-d", "5h", "--no-wait")  # fmt: skip
    assert got.returncode == 1, got.stderr
    assert "at most 4h through flow 'roles'" in got.stderr
    assert "14400" not in got.stderr


def test_extend_says_the_limit_as_typed(stub: str) -> None:
    got = _cli(stub, "requests", "extend", REQUEST_ID, "-d", "90m")
    assert got.returncode == 1, got.stderr
    assert "at most 60m" in got.stderr and "3600" not in got.stderr


def test_suggestions_paste_into_a_shell(stub: str) -> None:
    got = _cli(stub, "requests", "create", "-i", "Prod Org", "-t", "iam-role", "-r", "nope",
               "-p", "Assume", "--no-wait")  # fmt: skip
    assert got.returncode == 2, got.stderr
    hint = " ".join(got.stderr.split()).split("`")[1]  # the suggested command
    assert shlex.split(hint) == ["grantflow", "inventory", "resources", "-i", "Prod Org", "-t",
                                 "iam-role"]  # fmt: skip
    unknown = _cli(stub, "inventory", "resources", "-i", "Dev Org")
    assert unknown.returncode == 2
    assert "'Prod Org'" in unknown.stderr


def test_tables_keep_ids_and_arns_whole_at_80_columns(stub: str) -> None:
    got = _cli(stub, "inventory", "resources")
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert any(ARN in line for line in lines), got.stdout  # on one line, not folded or cut
    assert any(ITEM["resource_id"] in line for line in lines) or "…" not in got.stdout
    assert "…" not in got.stdout
