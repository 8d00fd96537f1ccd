"""`grantflow login --browser`: the user approves this machine in the web console.

See `grantflow.domain.cli_login`: the secret is made here and never leaves this process until
it is stored (0600); the browser sees only its hash. We poll ``/api/v1/me`` with the secret:
401 until the user approves, 200 after.
"""

from __future__ import annotations

import getpass
import socket
import time
import webbrowser
from urllib.parse import urlencode

import httpx

from grantflow.cli.durations import format_duration
from grantflow.cli.output import err, problem, say
from grantflow.domain.cli_login import TOKEN_PREFIX, CliLoginLink, confirmation_code
from grantflow.domain.secrets import issue_token

POLL_SECONDS = 1.0


def machine_label() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "someone"
    return f"{user}@{socket.gethostname()}"


def sign_in(url: str, open_browser: bool, timeout: int) -> str:
    """The secret of a personal token the user approved in the browser."""
    issued = issue_token(TOKEN_PREFIX)
    link = CliLoginLink(issued.token_hash, issued.prefix, machine_label(), int(time.time()))
    address = f"{url.rstrip('/')}/cli-login?{urlencode(link.query())}"
    code = confirmation_code(issued.token_hash)
    say(err, f"Open this link, sign in and approve:\n  {address}")
    err.print(f"The page must show the code [bold]{code}[/bold].")
    if open_browser:
        webbrowser.open(address)
    with err.status(f"waiting for you to approve {code} in the browser…"):
        return _poll(url, issued.plaintext, timeout)


def _poll(url: str, secret: str, timeout: int) -> str:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {secret}", "User-Agent": "grantflow-cli"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=10) as http:
        while time.monotonic() < deadline:
            try:
                status = http.get("/api/v1/me").status_code
            except httpx.TransportError as error:
                raise problem(f"cannot reach {url}: {error}") from None
            if status == 200:
                return secret
            if status != 401:
                raise problem(f"HTTP {status} from {url}/api/v1/me while waiting for approval")
            time.sleep(POLL_SECONDS)
    raise problem(f"nobody approved the sign-in within {format_duration(timeout)}; run "
               "`grantflow login --browser` again")  # fmt: skip
