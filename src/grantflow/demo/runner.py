"""`grantflow demo`: the emulated organization, Grantflow wired into it, and the server.

Everything an admin would do by hand happens here through the same code paths: the
connector role exists, the managed connector runs as it, the generated CloudFormation
template is deployed into the management account, and the connector verifies the role
through the job protocol.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.text import Text

from grantflow.cli.server import build_server, local_url
from grantflow.demo import scenario
from grantflow.demo.deploy import (
    CONNECTOR_ROLE_NAME,
    create_connector_role,
    deploy_member_roles,
    deploy_stack,
    management_session,
    stack_set_targets,
)
from grantflow.demo.inboxes import Mailbox, WebhookSink, mailbox, webhook_sink
from grantflow.demo.moto_server import moto_server
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape
from grantflow.demo.org_summary import OrgSummary
from grantflow.services.audit import audit_keys
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import LogFormat, Settings, WebhookTarget

READY_TIMEOUT_SECONDS = 60.0


def _demo_settings(port: int, workdir: Path, admin_token: str, connector_role: str,
                   mail: Mailbox, sink: WebhookSink) -> Settings:  # fmt: skip
    database_url = os.environ.get("GRANTFLOW_DATABASE_URL") or f"sqlite:///{workdir}/demo.db"
    return Settings(
        database_url=database_url,
        port=port,
        host="127.0.0.1",
        base_url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        log_format=LogFormat.CONSOLE,
        log_level=os.environ.get("GRANTFLOW_LOG_LEVEL", "WARNING"),
        managed_connector=True,
        connector_role_arn=connector_role,
        cookie_secure=False,  # the demo serves plain http on loopback
        smtp_host="127.0.0.1",
        smtp_port=mail.port,
        smtp_starttls=False,  # loopback mailbox
        smtp_from="Grantflow demo <grantflow@demo.example>",
        webhooks=[WebhookTarget(name="demo-siem", url=sink.url, secret=SecretStr(sink.secret))],
        data_dir=str(workdir),  # the audit key and checkpoint file of this demo
    )


def _wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def _verify_connector(
    client: httpx.Client, connector_id: str, role_arn: str, console: Console
) -> None:
    client.post(f"/api/v1/connectors/{connector_id}/verify", json={"role_arn": role_arn})
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        connector = client.get(f"/api/v1/connectors/{connector_id}").json()
        check = connector.get("last_verification") or {}
        if check.get("state") == "succeeded":
            result = check.get("result") or {}
            console.print(
                f"[green]✓[/green] connector {connector_id} ({connector['status']}) runs as "
                f"{connector['connector_role_arn']} and reached organization "
                f"{result.get('organization_id')} through {role_arn}"
            )
            return
        if check.get("state") == "failed":
            console.print(f"[red]✗ connector verification failed:[/red] {check.get('error')}")
            return
        time.sleep(0.3)
    console.print("[yellow]connector verification is still pending[/yellow]")


@dataclass(frozen=True)
class _Start:
    settings: Settings
    org: OrgSummary
    connector_id: str
    role_arn: str
    audit_bucket: str
    mail: Mailbox
    sink: WebhookSink


def _after_start(start: _Start, console: Console) -> None:
    settings = start.settings
    token = settings.admin_token.get_secret_value()  # type: ignore[union-attr]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=local_url(settings), headers=headers, timeout=30) as client:
        _wait_ready(client)
        _verify_connector(client, start.connector_id, start.role_arn, console)
        try:
            console.print("connecting the organization (first sync)…")
            integ = scenario.create_integration(
                client, start.org, start.connector_id, start.role_arn, start.audit_bucket
            )
            counts = ", ".join(f"{n} {t}" for t, n in sorted(integ["counts"].items()))
            console.print(f"[green]✓[/green] integration {integ['name']!r} is {integ['status']}: "
                          f"{counts}")  # fmt: skip
            flows = scenario.create_flows(client, integ["id"])
            console.print(f"[green]✓[/green] access flows: {', '.join(flows)}")
            logins = scenario.demo_logins(settings.database_url, start.org)
            requester = next((x.username for x in logins if x.why == "requester"), None)
            cli_token: str | None = None
            if requester:
                request_id = scenario.demo_grant(client, settings.database_url, start.org,
                                                 requester, start.audit_bucket)  # fmt: skip
                console.print(f"[green]✓[/green] {requester} holds read-only access "
                              f"(request {request_id}); its CloudTrail session is in "
                              f"s3://{start.audit_bucket}")  # fmt: skip
                cli_token = _show_notifications(client, start, settings.database_url, requester,
                                                console)  # fmt: skip
        except scenario.DemoSetupError as err:
            console.print(f"[red]demo setup failed:[/red] {err}")
            return
    for line in banner(settings.base_url, str(start.mail.directory), token, logins,
                       requester if cli_token else None, cli_token):  # fmt: skip
        console.print(Text(line, style="bold" if line.startswith("Grantflow") else ""),
                      soft_wrap=True)  # fmt: skip


def cli_command() -> str:
    """How to run this Grantflow's CLI from here: ``grantflow`` when that is on PATH (and is
    this one), else the script next to this Python (``.venv/bin/grantflow``)."""
    script = Path(sys.executable).parent / "grantflow"
    on_path = shutil.which("grantflow")
    if not script.exists() or (on_path and Path(on_path).resolve() == script.resolve()):
        return "grantflow"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def banner(
    base_url: str, mail_dir: str, admin_token: str, logins: Sequence[scenario.DemoLogin],
    requester: str | None, cli_token: str | None,
) -> list[str]:  # fmt: skip
    """The lines printed once the demo runs: each one short enough for 80 columns (the
    token and paths excepted, never broken), a sign-in table with headers, and CLI
    commands all in one form, each pasteable as it is."""
    lines = ["", f"Grantflow demo is running: {base_url}",
             f"  API docs:     {base_url}/docs",
             f"  Emails:       {mail_dir}", "                (one file per email sent)",
             f"  Admin token:  {admin_token}"]  # fmt: skip
    if requester and cli_token:
        cli = cli_command()
        lines += ["", f"  The CLI as {requester}, paste into a shell:",
                  f"    export GRANTFLOW_URL={base_url}", f"    export GRANTFLOW_TOKEN={cli_token}",
                  f"    {cli} inventory resources -t aws-account", f"    {cli} requests list",
                  f"    {cli} access list"]  # fmt: skip
    rows = [("user", "password", "role", "what for")] + [
        (x.username, x.password, x.role, x.why) for x in logins
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines += ["", "  Sign in at the URL above as:"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("    " + "  ".join([*cells, row[3]]))
    lines += ["", "Press Ctrl+C to stop."]
    return lines


def _show_notifications(client: httpx.Client, start: _Start, database_url: str, requester: str,
                        console: Console) -> str | None:  # fmt: skip
    """A request that needs approval, and the notices it sends: emails to the account's
    owners, signed webhook events to the demo SIEM, all in the delivery log."""
    pending = scenario.demo_pending_request(client, database_url, start.org, requester)
    if pending is None:
        console.print("[yellow]no owned account to show an approval request on[/yellow]")
        return None
    request_id, cli_token = pending
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (start.mail.received == 0 or not start.sink.events):
        time.sleep(0.3)
    log = client.get("/api/v1/notifications", params={"limit": 1}).json()
    events = ", ".join(f"{n} {t}" for t, n in sorted(start.sink.events.items()))
    console.print(
        f"[green]✓[/green] {requester} asked for AdministratorAccess (request {request_id}); "
        f"the account's owners were notified. Emails so far: {start.mail.received}, to "
        f"{', '.join(sorted(start.mail.recipients)) or 'nobody yet'}; webhook 'demo-siem' got "
        f"{events or 'nothing yet'} (signatures checked, {start.sink.bad_signatures} bad); "
        f"{log.get('total', 0)} deliveries in /admin/notifications"
    )
    return cli_token


def _stack_set_targets(org: OrgSummary) -> list[str]:
    return stack_set_targets(org.root_id, [(ou.id, ou.path) for ou in org.ous])


def _print_org(org: OrgSummary, console: Console) -> None:
    console.print(org.render())


def run_demo(port: int, seed: int, console: Console) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="grantflow-demo-") as tmp,
        moto_server() as moto,
        mailbox(Path(tmp) / "mail") as mail,
        webhook_sink(secrets.token_urlsafe(24)) as sink,
    ):
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        console.print(f"emulated AWS (moto server) at {moto.endpoint}; building the organization…")
        started = time.monotonic()
        org = build_org(moto.endpoint, OrgShape.demo(), seed)
        _print_org(org, console)
        console.print(f"organization built in {time.monotonic() - started:.1f}s")

        session = management_session(moto.endpoint)
        connector_role = create_connector_role(session)
        settings = _demo_settings(
            port, Path(tmp), "gf_pat_" + secrets.token_urlsafe(32), connector_role, mail, sink
        )
        prepare_database(settings)
        audit_keys.ensure(settings)
        # Ctrl-C stops the demo in seconds: its connector's lease long-poll is short (1 s), so
        # a 3 s graceful stop lets it end by itself instead of the usual 10 s wait.
        built = build_server(settings, graceful_seconds=3, lease_wait_seconds=1.0)
        connector_id = built.managed_connector_id
        assert connector_id is not None
        bucket = f"org-trail-{org.organization_id}"
        session.client("s3").create_bucket(Bucket=bucket)
        _stack, role_arn = deploy_stack(
            session, connector_id, connector_role, org.root_id, audit_bucket=bucket,
            session_cuts=True,  # the demo integration ends sessions on its own sets too
        )  # fmt: skip
        deploy_member_roles(session, role_arn, _stack_set_targets(org), ["us-east-1"])
        console.print(
            f"CloudFormation stack deployed in the management account {org.management_account_id}: "
            f"{role_arn} (trusts {CONNECTOR_ROLE_NAME} with external id {connector_id})"
        )
        start = _Start(settings, org, connector_id, role_arn, bucket, mail, sink)
        threading.Thread(target=_after_start, args=(start, console), daemon=True).start()
        try:
            built.run()
        finally:
            console.print("stopping the demo…")
            moto.stop(grace=1.0)  # emulated AWS holds nothing worth a graceful stop
