"""The end-user CLI (`inventory`, `requests`, `access`) as real `grantflow` processes against a
running server whose managed connector grants in an emulated organization (moto server).

One organization, server and integration for the whole module: setting them up is the slow
part; every test makes its own requests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grantflow.demo.deploy import (
    create_connector_role,
    deploy_member_roles,
    deploy_stack,
    management_session,
    stack_set_targets,
)
from grantflow.demo.moto_server import free_loopback_port, start_moto_server
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape
from tests.e2e import helpers as h
from tests.e2e.conftest import Deployed, wait_for
from tests.fixtures.live import LiveServer

pytestmark = pytest.mark.slow

GRANTFLOW = str(Path(sys.executable).with_name("grantflow"))
INTEGRATION = "Emulated Org"
DETAILS = "Connect through the [prod] VPN first; questions to #oncall"


@dataclass
class World:
    d: Deployed
    home: Path
    integration: dict[str, Any]
    accounts: list[dict[str, Any]]
    requester: str
    approver: str
    tokens: dict[str, str] = field(default_factory=dict)

    def env(self, user: str) -> dict[str, str]:
        if user not in self.tokens:
            self.tokens[user] = self.d.token_for(user)
        return {
            **os.environ,
            "GRANTFLOW_URL": self.d.live.url,
            "GRANTFLOW_TOKEN": self.tokens[user],
            "XDG_CONFIG_HOME": str(self.home),
            "COLUMNS": "300",
        }

    def cli(self, user: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GRANTFLOW, *args],
            capture_output=True,
            text=True,
            env=self.env(user),
            timeout=timeout,
            check=False,
        )

    def cli_all(self, *calls: tuple[str, list[str]]) -> list[subprocess.CompletedProcess[str]]:
        """Independent invocations at once (each is a separate process, as a user's would be)."""
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(lambda call: self.cli(call[0], *call[1]), calls))

    def start(self, user: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [GRANTFLOW, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(user),
        )

    def json(self, user: str, *args: str) -> Any:
        done = self.cli(user, *args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def state(self, user: str, request_id: str) -> dict[str, Any]:
        """Straight from the API: test plumbing, not the CLI under test."""
        with self.d.live.http(self.env(user)["GRANTFLOW_TOKEN"]) as c:
            return dict(c.get(f"/api/v1/access-requests/{request_id}").json())

    def wait_state(self, user: str, request_id: str, states: set[str]) -> dict[str, Any]:
        return dict(
            wait_for(
                lambda: (r := self.state(user, request_id))["state"] in states and r,
                60,
                f"request in {states}",
            )
        )

    def to_approve(self, user: str) -> list[dict[str, Any]]:
        with self.d.live.http(self.env(user)["GRANTFLOW_TOKEN"]) as c:
            return list(c.get("/api/v1/access-requests", params={"scope": "to_approve"}).json())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Its own moto server (no other test's reset can wipe it), an organization, Grantflow
    deployed into it, a synced integration and two flows on AWS accounts: ReadOnlyAccess
    granted automatically, AdministratorAccess approved by one named user."""
    tmp = tmp_path_factory.mktemp("cli-world")
    moto = start_moto_server()
    live: LiveServer | None = None
    try:
        with pytest.MonkeyPatch.context() as env:
            for key, value in (
                ("AWS_ENDPOINT_URL", moto.endpoint),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
            ):
                env.setenv(key, value)
            env.delenv("AWS_PROFILE", raising=False)
            org = build_org(moto.endpoint, OrgShape.small())
            session = management_session(moto.endpoint)
            connector_role = create_connector_role(session)
            port = free_loopback_port()
            live = LiveServer(
                url=f"http://127.0.0.1:{port}",
                port=port,
                db_url=f"sqlite:///{tmp}/grantflow.db",
                tmp=tmp,
                extra_env={
                    "GRANTFLOW_MANAGED_CONNECTOR": "true",
                    "GRANTFLOW_CONNECTOR_ROLE_ARN": connector_role,
                },
            )
            live.start()
            with live.http() as c:
                managed = [x for x in c.get("/api/v1/connectors").json() if x["kind"] == "managed"]
            connector_id = managed[0]["id"]
            _, role_arn = deploy_stack(session, connector_id, connector_role, org.root_id)
            targets = stack_set_targets(org.root_id, [(o.id, o.path) for o in org.ous])
            deploy_member_roles(session, role_arn, targets, ["us-east-1"])
            d = Deployed(live, org, moto, connector_id, role_arn)
            integ = _accounts_integration(d)
            requester, approver = org.users[0].username, org.users[1].username
            approver_id, requester_id = h.ids(d, "user", [approver, requester])
            h.flow(
                d,
                integ["id"],
                "read-only for everyone",
                **{**h.AUTO_READ_ONLY, "max_duration_seconds": 7200},
            )
            h.flow(
                d,
                integ["id"],
                "admin with approval",
                requestors={"everyone": True},
                scope={"resource_types": ["aws-account"], "mode": "all"},
                permissions={"aws-account": ["AdministratorAccess"]},
                approval={
                    "mode": "any",
                    "groups": [{"kind": "users", "user_ids": [approver_id, requester_id]}],
                },
            )
            with d.admin() as c:
                page = c.get(
                    "/api/v1/resources",
                    params={"integration_id": integ["id"], "type": "aws-account"},
                ).json()
            # Suspended accounts are never requestable (issue 17): the tests use active ones.
            active = [a for a in page["items"] if a["attributes"].get("status") == "ACTIVE"]
            accounts = sorted(active, key=lambda a: a["aws_id"])
            yield World(d, tmp / "config", integ, accounts, requester, approver)
    finally:
        if live is not None:
            live.stop_all()
        moto.stop()


def _accounts_integration(d: Deployed) -> dict[str, Any]:
    """AWS accounts only, in one region: all these tests need, and the sync is quick."""
    body = d.integration_body(sync_regions=["us-east-1"], custom_access_details=DETAILS)
    body["resource_types"] = ["aws-account"]
    with d.admin() as c:
        created = c.post("/api/v1/integrations", json=body)
        assert created.status_code == 201, created.text
    done = d.wait_status(created.json()["id"], {"active", "warning", "error"})
    assert done["status"] == "active", done["status_message"]
    return done


def _create(*extra: str, account: dict[str, Any], perm: str = "ReadOnlyAccess") -> list[str]:
    return [
        "requests",
        "create",
        "-i",
        INTEGRATION,
        "-t",
        "aws-account",
        "-r",
        account["name"],
        "-p",
        perm,
        *extra,
    ]


def _created_id(stderr: str) -> str:
    return stderr.split("request ", 1)[1].split(" ", 1)[0]


def test_inventory_shows_what_the_user_can_request(world: World) -> None:
    user, account = world.requester, world.accounts[0]
    integrations, perms, found, types, unknown = world.cli_all(
        (user, ["inventory", "integrations", "-o", "json"]),
        (user, ["inventory", "permissions", "-i", INTEGRATION, "-t", "aws-account", "-o", "json"]),
        (
            user,
            [
                "inventory",
                "resources",
                "-i",
                INTEGRATION,
                "-t",
                "aws-account",
                "--search",
                account["aws_id"],
                "--output",
                "json",
            ],
        ),
        (user, ["inventory", "resource-types"]),
        (user, ["inventory", "resources", "-i", "Nope"]),
    )
    (integ,) = json.loads(integrations.stdout)
    assert (integ["name"], integ["resources"]) == (INTEGRATION, len(world.accounts))
    assert integ["resource_types"] == ["aws-account"]
    assert {
        (p["permission"], tuple(p["flows"]), tuple(p["approval"])) for p in json.loads(perms.stdout)
    } == {
        ("ReadOnlyAccess", ("read-only for everyone",), ("auto",)),
        ("AdministratorAccess", ("admin with approval",), ("any",)),
    }
    assert [(r["resource_id"], r["integration"]) for r in json.loads(found.stdout)] == [
        (account["id"], INTEGRATION)
    ]
    assert types.returncode == 0, types.stderr
    row = next(x for x in types.stdout.splitlines() if "aws-account" in x)
    assert INTEGRATION in row and "AdministratorAccess, ReadOnlyAccess" in row
    assert str(len(world.accounts)) in row
    assert unknown.returncode == 2
    assert "no integration named 'Nope'" in unknown.stderr and INTEGRATION in unknown.stderr


def test_create_waits_until_granted_and_prints_how_to_use_it(world: World) -> None:
    account = world.accounts[0]
    done = world.cli(world.requester, *_create("-d", "1h30m", "-j", "INC-1", account=account))
    assert done.returncode == 0, done.stderr
    assert f"account_id={account['aws_id']}&role_name=ReadOnlyAccess" in done.stdout
    assert f"sso_account_id = {account['aws_id']}" in done.stdout  # the CLI profile
    assert f"[profile grantflow-{account['aws_id']}-ReadOnlyAccess]" in done.stdout
    assert f"access details: {DETAILS}" in done.stdout  # literally, brackets and all
    assert f"granted ReadOnlyAccess on {account['name']}" in done.stdout
    request = world.json(world.requester, "requests", "describe", _created_id(done.stderr))
    assert (request["state"], request["duration_seconds"]) == ("granted", 5400)
    assert request["justification"] == "INC-1"
    ps_arn = world.d.org.permission_set_arns["ReadOnlyAccess"]
    assignment = (account["aws_id"], ps_arn, world.d.org.users[0].user_id)
    assert assignment in h.user_assignments(world.d, account["aws_id"], ps_arn)
    ended = world.cli(world.requester, "requests", "revoke", request["id"], "-o", "json")
    assert ended.returncode == 0, ended.stderr
    assert json.loads(ended.stdout)["state"] in {"revoking", "revoked"}


def test_no_wait_prints_json_alone_and_list_filters_by_state(world: World) -> None:
    account = world.accounts[1]
    done = world.cli(world.requester, *_create("--no-wait", "-o", "json", account=account))
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)  # stdout is the JSON alone
    assert created["state"] in {"approved", "granting"}
    assert [g["resource_id"] for g in created["grants"]] == [account["id"]]
    world.wait_state(world.requester, created["id"], {"granted"})
    mine = world.json(world.requester, "requests", "list", "--state", "granted")
    assert created["id"] in {r["id"] for r in mine}
    assert {r["state"] for r in mine} == {"granted"}
    assert world.cli(world.requester, "requests", "revoke", created["id"]).returncode == 0


def test_access_list_shows_time_left_extend_and_revoke(world: World) -> None:
    account = world.accounts[2]
    ps_arn = world.d.org.permission_set_arns["ReadOnlyAccess"]
    before = h.user_assignments(world.d, account["aws_id"], ps_arn)
    done = world.cli(world.requester, *_create("-d", "30m", "-o", "json", account=account))
    assert done.returncode == 0, done.stderr
    request_id = json.loads(done.stdout)["id"]
    live = {g["request_id"]: g for g in world.json(world.requester, "access", "list")}
    assert 25 * 60 < live[request_id]["seconds_left"] <= 30 * 60
    assert live[request_id]["resource_name"] == account["name"]
    table = world.cli(world.requester, "access", "list")
    line = next(x for x in table.stdout.splitlines() if request_id in x)
    assert account["name"] in line and re.search(r"\b(29|30)m\b", line), line
    longer = world.cli(world.requester, "requests", "extend", request_id, "-d", "30m")
    assert longer.returncode == 0, longer.stderr
    assert re.search(r"\((59|60)m left\)|\(1h left\)", longer.stdout), longer.stdout
    again = world.cli(world.requester, "requests", "extend", request_id, "-d", "30m")
    assert again.returncode == 1 and "allows 1 extension" in again.stderr  # the flow's limit
    assert world.cli(world.requester, "requests", "revoke", request_id).returncode == 0
    world.wait_state(world.requester, request_id, {"revoked"})
    assert h.user_assignments(world.d, account["aws_id"], ps_arn) == before


def test_approval_while_the_requester_waits_and_never_by_the_requester(world: World) -> None:
    account = world.accounts[3]
    waiting = world.start(
        world.requester, *_create("--timeout", "2m", account=account, perm="AdministratorAccess")
    )
    (request,) = wait_for(lambda: world.to_approve(world.approver), 30, "a request to approve")
    own = world.cli(world.requester, "requests", "approve", request["id"])
    assert own.returncode == 1
    assert "403" in own.stderr and "you cannot approve or reject your own request" in own.stderr
    todo = world.json(world.approver, "requests", "list", "--to-approve")
    assert [(t["id"], t["requester"], t["state"]) for t in todo] == [
        (request["id"], world.requester, "pending")
    ]
    # The approver types the short id a table shows: a unique prefix is enough.
    ok = world.cli(world.approver, "requests", "approve", request["id"][:8], "--reason",
                   "looks fine")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(request["id"]), ok.stdout
    stdout, stderr = waiting.communicate(timeout=90)
    assert waiting.returncode == 0, stderr
    assert f"{request['id']}: pending → " in stderr, stderr  # the state changes, as they happen
    assert f"account_id={account['aws_id']}&role_name=AdministratorAccess" in stdout
    mine = world.cli(world.requester, "requests", "describe", request["id"][:6])
    assert mine.returncode == 0 and request["id"] in mine.stdout, mine.stderr
    described = world.cli(world.approver, "requests", "describe", request["id"])
    assert "looks fine" in described.stdout and "granted" in described.stdout
    assert world.cli(world.approver, "requests", "revoke", request["id"]).returncode == 0


def test_rejection_ends_the_wait_with_exit_1_and_the_reason(world: World) -> None:
    waiting = world.start(
        world.requester, *_create(account=world.accounts[4], perm="AdministratorAccess")
    )
    (request,) = wait_for(lambda: world.to_approve(world.approver), 30, "a request to approve")
    no = world.cli(
        world.approver, "requests", "reject", request["id"], "-m", "not this week", "-o", "json"
    )
    assert no.returncode == 0, no.stderr
    assert json.loads(no.stdout)["state"] == "rejected"
    _, stderr = waiting.communicate(timeout=60)
    assert waiting.returncode == 1
    assert f"request {request['id']} rejected" in stderr and "not this week" in stderr


def test_timeout_exits_1_and_the_request_can_be_cancelled(world: World) -> None:
    late = world.cli(
        world.requester,
        *_create("--timeout", "3s", account=world.accounts[1], perm="AdministratorAccess"),
    )
    assert late.returncode == 1
    assert "is still pending after 3s" in late.stderr
    gone = world.cli(world.requester, "requests", "cancel", _created_id(late.stderr))
    assert gone.returncode == 0, gone.stderr
    assert world.state(world.requester, _created_id(late.stderr))["state"] == "cancelled"
    assert world.to_approve(world.approver) == []


BAD_OPTIONS = [
    (["-d", "2 hours"], "'2 hours' is not a duration"),
    (["-d", "0m"], "not a positive duration"),
    (["--timeout", "soon"], "'soon' is not a duration"),
    (["--output", "yaml"], "'yaml' is not one of"),
]


def test_bad_options_are_usage_errors(world: World) -> None:
    done = world.cli_all(
        *((world.requester, _create(*args, account=world.accounts[0])) for args, _ in BAD_OPTIONS)
    )
    for result, (args, message) in zip(done, BAD_OPTIONS, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        assert message in " ".join(result.stderr.replace("│", " ").split())  # the box wraps


def test_unknown_names_are_usage_errors_and_refusals_exit_1(world: World) -> None:
    me, account = world.requester, world.accounts[0]
    base = ["requests", "create", "-t", "aws-account", "-p", "ReadOnlyAccess"]
    integration, resource, perm, too_long, not_admin, missing, unknown = world.cli_all(
        (me, [*base, "-i", "Nope", "-r", account["name"]]),
        (me, [*base, "-i", INTEGRATION, "-r", "no-such"]),
        (me, _create(account=account, perm="PowerUserAccess")),
        (me, _create("-d", "1d", account=account)),
        (me, ["requests", "list", "--all"]),
        (me, ["requests", "describe", "00000000-0000-4000-8000-000000000000"]),
        (me, ["requests", "describe", "no-such-id"]),
    )
    assert integration.returncode == 2
    assert "no integration named 'Nope'" in integration.stderr
    assert resource.returncode == 2
    assert "no aws-account named 'no-such'" in resource.stderr
    assert perm.returncode == 2
    assert "AdministratorAccess, ReadOnlyAccess" in perm.stderr
    assert too_long.returncode == 1
    assert "422" in too_long.stderr and "(duration_seconds)" in too_long.stderr
    assert not_admin.returncode == 1 and "only admins" in not_admin.stderr
    assert missing.returncode == 1 and "404" in missing.stderr
    assert unknown.returncode == 2 and "no request you can see starts with" in unknown.stderr


def _complete(world: World, words: str) -> list[str]:
    env = {
        **world.env(world.approver),
        "_GRANTFLOW_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    done = subprocess.run(
        [GRANTFLOW], capture_output=True, text=True, env=env, check=False, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_shell_completion_offers_integration_names_and_request_ids(world: World) -> None:
    shown = world.cli(world.requester, "--show-completion", "bash")
    assert shown.returncode == 0, shown.stderr
    assert "_GRANTFLOW_COMPLETE=complete_bash" in shown.stdout
    with world.d.live.http(world.env(world.approver)["GRANTFLOW_TOKEN"]) as c:
        body = {"resource_ids": [world.accounts[0]["id"]], "permission": "ReadOnlyAccess"}
        mine = c.post("/api/v1/access-requests", json=body).json()["id"]
    assert _complete(world, "grantflow inventory resources -i Emu") == [INTEGRATION]
    assert _complete(world, "grantflow requests describe ") == [mine]
    assert _complete(world, f"grantflow requests revoke {mine[:6]}") == [mine]
    assert _complete(world, "grantflow requests describe zz") == []
