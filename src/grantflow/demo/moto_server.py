"""Run moto in server mode as a child process on a free loopback port.

The emulated AWS is a real HTTP endpoint: boto3 talks to it with ``endpoint_url``
exactly as it would talk to AWS. Nothing here patches boto3.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

READY_TIMEOUT_SECONDS = 120.0  # only a failure waits that long; a loaded machine needs it


class MotoServerError(RuntimeError):
    """The moto server could not be started or reached."""


def free_loopback_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(endpoint: str, deadline: float) -> None:
    url = f"{endpoint}/moto-api/"
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise MotoServerError(f"moto server at {endpoint} did not answer within the deadline")


@dataclass
class MotoServer:
    """A moto server: either a child process we own or an endpoint given to us."""

    endpoint: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def reset(self) -> None:
        """Forget every emulated resource (moto's ``/moto-api/reset``)."""
        httpx.post(f"{self.endpoint}/moto-api/reset", timeout=30.0).raise_for_status()

    def stop(self, grace: float = 10.0) -> None:
        """Terminate the server; kill it if it is still there after ``grace`` seconds."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def start_moto_server(port: int | None = None) -> MotoServer:
    """Start ``moto.server`` on 127.0.0.1 and wait until it answers."""
    chosen = port or free_loopback_port()
    endpoint = f"http://127.0.0.1:{chosen}"
    env = dict(os.environ)
    env.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)  # loading them costs gigabytes
    # ~1,300 images per EC2 backend (one per account and region) cost seconds and megabytes
    # each; nothing here needs them.
    env.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(chosen)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    server = MotoServer(endpoint=endpoint, process=process)
    try:
        _wait_until_ready(endpoint, time.monotonic() + READY_TIMEOUT_SECONDS)
    except MotoServerError:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def moto_server(port: int | None = None) -> Iterator[MotoServer]:
    """Use ``AWS_ENDPOINT_URL`` when it is set, otherwise run our own moto server."""
    given = os.environ.get("AWS_ENDPOINT_URL")
    if given:
        yield MotoServer(endpoint=given.rstrip("/"))
        return
    server = start_moto_server(port)
    try:
        yield server
    finally:
        server.stop()
