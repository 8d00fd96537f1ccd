"""Issue 15, item 7c: members see a public view of integrations.

The review read every integration's full configuration as a member, including the management
role ARN and the connector id that is the role's ExternalId. Members now get name, type,
status and what they may request; admins keep the full view. The CLI commands members use
still work on the public view.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from grantflow.cli import integrations as cli_integrations
from grantflow.cli import inventory as cli_inventory
from grantflow.cli.api_client import Api as CliApi
from grantflow.cli.main import app as cli
from tests.fixtures.api import Api
from tests.fixtures.seed import CONFIG, World, seed_world

PUBLIC_FIELDS = {"view", "id", "name", "type", "status", "enabled", "requestable"}


def _as(world: World, caller: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[caller]}"}


def _secrets_of(world: World) -> list[str]:
    """What a member must never read: the role, its account and the ExternalId."""
    role = CONFIG["management_role_arn"]
    return [role, role.split(":")[4], world.ids["connector_id"]]


def test_members_get_the_public_view(api: Api) -> None:
    world = seed_world(api.client.app)
    listed = api.client.get("/api/v1/integrations", headers=_as(world, "member"))
    one = api.client.get(
        f"/api/v1/integrations/{world.ids['integration_id']}", headers=_as(world, "member")
    )
    assert (listed.status_code, one.status_code) == (200, 200)
    (item,) = listed.json()
    assert set(item) == PUBLIC_FIELDS and one.json() == item
    assert (item["view"], item["name"], item["status"]) == ("member", "seeded-org", "active")
    assert item["requestable"] == [{"resource_type": "aws-account", "permissions": ["ReadOnly"]}]
    for secret in _secrets_of(world):
        assert secret not in listed.text and secret not in one.text


def test_admins_keep_the_full_view(api: Api) -> None:
    world = seed_world(api.client.app)
    (item,) = api.client.get("/api/v1/integrations", headers=_as(world, "admin")).json()
    assert item["view"] == "admin"
    assert item["config"]["management_role_arn"] == CONFIG["management_role_arn"]
    assert item["connector_id"] == world.ids["connector_id"]


def _cli_api(app: Any, token: str) -> CliApi:
    """The CLI's client, talking to the app in process."""
    api = CliApi("http://testserver", token)
    api._http.close()
    api._http = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    return api


@pytest.mark.parametrize("caller", ["member", "admin"])
def test_the_cli_works_on_either_view(
    api: Api, monkeypatch: pytest.MonkeyPatch, caller: str
) -> None:
    world = seed_world(api.client.app)

    def connect(_url: str | None, _token: str | None) -> CliApi:
        return _cli_api(api.client.app, world.tokens[caller])

    for module in (cli_integrations, cli_inventory):
        monkeypatch.setattr(module, "_api", connect)
    runner = CliRunner()
    listed = runner.invoke(cli, ["integrations", "list"])
    assert listed.exit_code == 0, listed.output
    assert "seeded-org" in listed.output
    inventory = runner.invoke(cli, ["inventory", "integrations", "-o", "json"])
    assert inventory.exit_code == 0, inventory.output
    lines = inventory.output.splitlines()  # the app's request log shares the output
    rows = json.loads("\n".join(lines[lines.index("[") :]))
    assert [(r["name"], r["resource_types"]) for r in rows] == [("seeded-org", ["aws-account"])]
    if caller == "member":
        assert "aws-account" in listed.output
        for secret in _secrets_of(world):
            assert secret not in listed.output + inventory.output
