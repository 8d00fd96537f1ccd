"""A sync's progress through the real connector protocol (issue 19 item 5): the connector's
agent and HTTP client against `grantflow serve`, while `grantflow integrations sync` follows
the run — as plain lines when its output is not a terminal, as a Rich bar on a terminal.

Deterministic: the sync job's handler (the agent's real reporting functions, scripted
accounts) moves one step, then waits until the API and the CLI show that step."""

from __future__ import annotations

import os
import pty
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from grantflow.connector.agent import ConnectorAgent
from grantflow.connector.client import ControlPlaneClient, LeasedJob
from grantflow.connector.handlers import JobContext
from grantflow.domain.inventory import AccountInventory
from tests.fixtures.integrations import integration_body
from tests.fixtures.live import LiveServer
from tests.integrations.connector_driver import account

pytestmark = pytest.mark.slow

WAIT = 120.0  # generous: the machine is busy; every wait ends as soon as its condition holds
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Output:
    """What a process writes, read on a thread; ``wait_for`` blocks until a pattern shows."""

    def __init__(self, read: Callable[[], bytes]) -> None:
        self.text = ""
        self._chunks: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(read,), daemon=True).start()

    def _pump(self, read: Callable[[], bytes]) -> None:
        while True:
            try:
                chunk = read()
            except OSError:  # the pty closes with EIO when the process ends
                chunk = b""
            if not chunk:
                self._chunks.put("")
                return
            self._chunks.put(chunk.decode(errors="replace"))

    def wait_for(self, pattern: str, timeout: float = WAIT) -> None:
        found = re.compile(pattern)
        while not found.search(ANSI.sub("", self.text)):
            try:
                chunk = self._chunks.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{pattern!r} not shown; output:\n{self.text}") from None
            if chunk == "":
                raise AssertionError(f"{pattern!r} not shown before the end:\n{self.text}")
            self.text += chunk

    def until_end(self, timeout: float = WAIT) -> str:
        """Everything, once the process has closed its output."""
        while True:
            chunk = self._chunks.get(timeout=timeout)
            if chunk == "":
                return self.text
            self.text += chunk


def _setup(live: LiveServer) -> tuple[ControlPlaneClient, str]:
    with live.http() as admin:
        r = admin.post("/api/v1/connectors", json={"name": "edge", "kind": "self_hosted"})
        assert r.status_code == 201, r.text
        cid, token = r.json()["id"], r.json()["token"]
        body = integration_body(cid, ["aws-account", "s3-bucket"])
        r = admin.post("/api/v1/integrations", json=body)
        assert r.status_code == 201, r.text
        integration_id = r.json()["id"]
    client = ControlPlaneClient(live.url, cid, token)
    (verify,) = _lease(client, "verify")
    client.complete(verify, {"organization_id": "o-abc1234567",
                             "management_account_id": "123456789012"})  # fmt: skip
    return client, integration_id


def _lease(client: ControlPlaneClient, job_type: str) -> list[LeasedJob]:
    leased = client.lease(10, wait_seconds=10, lease_seconds=600)
    assert [j.type for j in leased] == [job_type], leased
    return leased


def _cli(live: LiveServer) -> list[str]:
    return [sys.executable, "-m", "grantflow.cli.main", "integrations", "sync", "Org",
            "--url", live.url, "--token", live.admin_token, "--timeout", "600"]  # fmt: skip


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTFLOW_")}
    return {**env, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / ".config"), **extra}


SUMMARY = {"organization_id": "o-abc1234567", "management_account_id": "123456789012",
           "root_id": "r-ab12", "accounts_total": 2, "accounts_by_outcome": {"synced": 2},
           "resources_by_type": {}, "aws_calls": 3, "duration_seconds": 0.1}  # fmt: skip


def _progress(live: LiveServer, integration_id: str) -> tuple[Any, ...]:
    with live.http() as admin:
        run = admin.get(f"/api/v1/integrations/{integration_id}").json()["current_sync"]
    return (run["accounts_done"], run["accounts_total"], run["resources_seen"])


def _scripted_sync(
    live: LiveServer, integration_id: str, shown: Callable[[int, int, int], None]
) -> Callable[[JobContext, Mapping[str, Any]], dict[str, Any]]:
    """A sync handler that reports through the agent (two accounts, four then one record)
    and, after each step, waits until the API and ``shown`` see it."""

    def handler(ctx: JobContext, _payload: Mapping[str, Any]) -> dict[str, Any]:
        ctx.report_sync_total(2)
        assert _progress(live, integration_id) == (0, 2, 0)
        shown(0, 2, 0)
        first = account("111111111111", buckets=("a1", "a2", "a3"))
        ctx.send_inventory(AccountInventory.model_validate(first))
        assert _progress(live, integration_id) == (1, 2, 4)
        shown(1, 2, 4)
        ctx.send_inventory(AccountInventory.model_validate(account("222222222222")))
        assert _progress(live, integration_id) == (2, 2, 5)
        return SUMMARY

    return handler


def _run(client: ControlPlaneClient, handler: Any) -> None:
    (job,) = _lease(client, "sync")
    agent = ConnectorAgent(client, object(), handlers={"sync": handler})  # type: ignore[arg-type]
    agent._run(job)  # the agent's own job runner: its reports go over HTTP


def test_progress_reaches_the_api_and_the_cli_as_plain_lines(
    live_server: LiveServer, tmp_path: Path
) -> None:
    client, integration_id = _setup(live_server)  # the first sync is queued
    cli = subprocess.Popen(_cli(live_server), env=_env(tmp_path),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    assert cli.stdout is not None
    out = Output(lambda: os.read(cli.stdout.fileno(), 4096))  # type: ignore[union-attr]

    def shown(done: int, total: int, seen: int) -> None:
        out.wait_for(rf"syncing Org: {done}/{total} accounts, {seen} resources so far\n")

    try:
        _run(client, _scripted_sync(live_server, integration_id, shown))
        assert cli.wait(WAIT) == 0, out.until_end()
        out.until_end()
    finally:
        cli.kill()
        client.close()
    lines = [line for line in out.text.splitlines() if line.startswith("syncing Org:")]
    assert lines[-3:] == ["syncing Org: 0/2 accounts, 0 resources so far",
                          "syncing Org: 1/2 accounts, 4 resources so far",
                          "syncing Org: 2/2 accounts, 5 resources so far"], out.text  # fmt: skip
    assert "\x1b[" not in out.text  # plain text: no terminal codes in a log or a pipe
    assert "sync succeeded" in out.text and "3 AWS calls" in out.text


def test_on_a_terminal_the_cli_shows_a_progress_bar(
    live_server: LiveServer, tmp_path: Path
) -> None:
    client, integration_id = _setup(live_server)
    leader, follower = pty.openpty()
    cli = subprocess.Popen(_cli(live_server),
                           env=_env(tmp_path, TERM="xterm-256color", COLUMNS="100"),
                           stdin=follower, stdout=follower, stderr=follower)  # fmt: skip
    os.close(follower)
    out = Output(lambda: os.read(leader, 4096))

    def shown(done: int, total: int, seen: int) -> None:
        out.wait_for(rf"syncing Org .*{done}/{total} accounts · {seen} resources")

    try:
        _run(client, _scripted_sync(live_server, integration_id, shown))
        out.wait_for(r"AWS calls")
        assert cli.wait(WAIT) == 0, out.text
    finally:
        cli.kill()
        client.close()
        os.close(leader)
    assert "━" in out.text  # Rich's bar
    assert "\x1b[" in out.text  # drawn in place with terminal codes, not as lines
