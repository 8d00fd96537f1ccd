"""`grantflow integrations`: list them, and sync one with a live progress bar."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from grantflow.cli import credentials
from grantflow.cli.api_client import Api
from grantflow.cli.errors import fail

integrations_app = typer.Typer(help="Integrations: list, sync.", no_args_is_help=True)
console = Console(highlight=False)

Url = Annotated[
    str | None, typer.Option(envvar="GRANTFLOW_URL", help="Base URL (default: from login)")
]
Token = Annotated[
    str | None,
    typer.Option(envvar="GRANTFLOW_TOKEN", help="API token (default: from login)"),
]


def _api(url: str | None, token: str | None) -> Api:
    stored = credentials.load()
    url = url or (stored.url if stored else None)
    token = token or (stored.token if stored else None)
    if not url or not token:
        raise fail("not signed in: run `grantflow login` or pass --url and --token", code=2)
    return Api(url, token)


def _find(api: Api, name: str) -> dict[str, Any]:
    for item in api.get("/api/v1/integrations"):
        if item["name"] == name or item["id"] == name:
            return dict(item)
    raise fail(f"no integration named {name!r}")


@integrations_app.command("list")
def list_integrations(url: Url = None, token: Token = None) -> None:
    """Integrations with their status and resource counts (admins), or with what you may
    request there (members, who see the public view)."""
    with _api(url, token) as api:
        rows = api.get("/api/v1/integrations")
    if any(row.get("view") == "member" for row in rows):
        table = Table("name", "status", "you may request")
        for row in rows:
            offers = ", ".join(t["resource_type"] for t in row.get("requestable", []))
            table.add_row(row["name"], row["status"], offers or "-")
        console.print(table)
        return
    table = Table("name", "status", "last sync", "resources", "message")
    for row in rows:
        total = sum(row["counts"].values())
        table.add_row(row["name"], row["status"], str(row["last_sync_at"] or "never"),
                      str(total), row["status_message"] or "")  # fmt: skip
    console.print(table)


def _summary(run: dict[str, Any]) -> Table:
    columns = ("created", "updated", "unchanged", "removed")
    table = Table("type", *columns, title=f"sync {run['state']}")
    for rtype, counts in sorted(run["counts"].items()):
        table.add_row(rtype, *(str(counts.get(k, 0)) for k in columns))
    return table


def progress_line(name: str, run: dict[str, Any]) -> str:
    """A running sync in words: accounts done of total, resources so far."""
    done, total = run["accounts_done"], run.get("accounts_total")
    if total is None and not done:
        return f"syncing {name}: reading the organization"
    accounts = f"{done}/{total}" if total is not None else str(done)
    return f"syncing {name}: {accounts} accounts, {run.get('resources_seen', 0)} resources so far"


class _Follow:
    """Polls one sync run until it ends, showing its progress: a Rich bar on a terminal,
    else a plain line each time the progress moves."""

    def __init__(self, api: Api, integ: dict[str, Any], run: dict[str, Any]) -> None:
        self.api, self.name = api, str(integ["name"])
        self.path = f"/api/v1/integrations/{integ['id']}/syncs/{run['id']}"
        self.run = run
        self.polled = False
        self.timeout = 0.0

    def poll(self) -> dict[str, Any]:
        self.run = dict(self.api.get(self.path, params={"accounts": "false"}))
        return self.run

    def until_done(self, timeout: float) -> dict[str, Any]:
        self.timeout = timeout
        deadline = time.monotonic() + timeout
        if console.is_terminal:
            self._with_bar(deadline)
        else:
            self._with_lines(deadline)
        return dict(self.api.get(self.path))  # the whole run: counts and accounts

    def _with_bar(self, deadline: float) -> None:
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("accounts · {task.fields[resources]} resources"),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"syncing {self.name}", total=None, resources=0)
            while self._running(deadline):
                run = self.run
                progress.update(task, completed=run["accounts_done"], total=run["accounts_total"],
                                resources=run.get("resources_seen", 0))  # fmt: skip
            done = self.run["accounts_done"]
            progress.update(task, total=done or 1, completed=done or 1,
                            resources=self.run.get("resources_seen", 0))  # fmt: skip

    def _with_lines(self, deadline: float) -> None:
        last = ""
        while True:
            running = self._running(deadline)
            line = progress_line(self.name, self.run)
            if line != last:
                console.print(line, markup=False)
                last = line
            if not running:
                return

    def _running(self, deadline: float) -> bool:
        """Polls once (after a pause, but the first time); False once the run has ended."""
        if self.polled:
            if time.monotonic() >= deadline:
                raise fail(f"the sync did not finish within {self.timeout:.0f}s")
            time.sleep(0.5)
        self.polled = True
        return bool(self.poll()["state"] == "running")


@integrations_app.command("sync")
def sync(
    name: Annotated[str, typer.Argument(help="Integration name or id")],
    url: Url = None,
    token: Token = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the sync")] = 600,
) -> None:
    """Sync now and follow it: accounts done / total and resources so far (a progress bar
    on a terminal, plain lines otherwise), then what changed."""
    with _api(url, token) as api:
        integ = _find(api, name)
        run = api.post(f"/api/v1/integrations/{integ['id']}/sync")
        run = _Follow(api, integ, run).until_done(timeout)
    console.print(_summary(run))
    troubled = {a: i for a, i in run["accounts"].items() if i["outcome"] not in ("synced",)}
    for account, info in sorted(troubled.items()):
        console.print(
            f"[yellow]{account} {info['name']}: {info['outcome']}[/yellow] {info['detail'] or ''}"
        )
    console.print(f"{run['aws_calls']} AWS calls")
    if run["state"] == "failed":
        raise fail(run["error"] or "the sync failed")
