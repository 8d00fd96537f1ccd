"""`grantflow login --browser`: the OAuth 2.0 device authorization grant (RFC 8628).

The server hands out a device code (kept in this process) and a short user code. We print
the fixed page (``<url>/device``) and the code; the person types the code on that page in a
browser where they are signed in and approves. Meanwhile we poll with the device code, at the
server's interval (longer after each ``slow_down``), until the token arrives or the sign-in is
denied or expires. The code is never put in a URL, so the page we open carries no secret.
"""

from __future__ import annotations

import getpass
import socket
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from grantflow import __version__
from grantflow.cli.durations import format_duration
from grantflow.cli.output import err, problem, say
from grantflow.domain import device_login as dl

START_PATH = "/api/v1/auth/device"
POLL_PATH = "/api/v1/auth/device/token"
AGAIN = "run `grantflow login --browser` again"


@dataclass(frozen=True, slots=True)
class Started:
    device_code: str
    user_code: str
    expires_in: int
    interval: int


def machine_label() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "someone"
    return f"{user}@{socket.gethostname()}"


def sign_in(url: str, open_browser: bool, timeout: int) -> str:
    """The secret of a personal token the user approved in the browser."""
    base = url.rstrip("/")
    headers = {"User-Agent": f"grantflow-cli/{__version__}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        started = _start(http, machine_label())
        page = base + dl.VERIFICATION_PATH
        say(err, f"Open {page} in a browser where you are signed in to Grantflow,")
        err.print(f"and type this code: [bold]{started.user_code}[/bold]")
        if open_browser:
            webbrowser.open(page)
        with err.status(f"waiting for you to approve {started.user_code} in the browser…"):
            return poll(http, started, min(timeout, started.expires_in))


def _start(http: httpx.Client, label: str) -> Started:
    response = _post(http, START_PATH, {"label": label})
    if response.status_code != 200:
        raise problem(f"cannot start a sign-in: {_message(response)}")
    body = response.json()
    return Started(body["device_code"], body["user_code"], int(body["expires_in"]),
                   int(body["interval"]))  # fmt: skip


def poll(
    http: httpx.Client,
    started: Started,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll every ``interval`` seconds (5 more after each ``slow_down``) for ``wait_seconds``."""
    interval = float(started.interval)
    deadline = clock() + wait_seconds
    while True:
        left = deadline - clock()
        if left <= 0:
            raise problem(f"nobody approved the sign-in within "
                          f"{format_duration(int(wait_seconds))}; {AGAIN}")  # fmt: skip
        sleep(min(interval, left))
        response = _post(http, POLL_PATH, {"device_code": started.device_code})
        if response.status_code == 200:
            return str(response.json()["access_token"])
        error = _error(response)
        code = error.get("code")
        if code == "authorization_pending":
            continue
        if code == "slow_down":
            interval = max(interval + dl.SLOW_DOWN_STEP_SECONDS, float(error.get("interval", 0)))
            continue
        if code == "access_denied":
            raise problem("the sign-in was denied in the browser")
        if code == "expired_token":
            raise problem(f"the code expired before it was approved; {AGAIN}")
        raise problem(f"the sign-in failed: {_message(response)}; {AGAIN}")


def _post(http: httpx.Client, path: str, body: dict[str, str]) -> httpx.Response:
    try:
        return http.post(path, json=body)
    except httpx.TransportError as error:
        raise problem(f"cannot reach {http.base_url}: {error}") from None


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return {}
    return error if isinstance(error, dict) else {}


def _message(response: httpx.Response) -> str:
    message = _error(response).get("message")
    return f"HTTP {response.status_code}: {message or response.text[:300]}"
