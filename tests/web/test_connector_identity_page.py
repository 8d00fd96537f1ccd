"""The Connectors page flags a connector whose reported role differs from the confirmed one,
and lets an admin confirm a role (issue 16, item 2; the API side is in
tests/security/test_connector_identity.py)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import expect

from tests.fixtures.live import LiveServer
from tests.web.conftest import Tab, set_password

TabFactory = Callable[..., Tab]
OURS = "arn:aws:iam::111122223333:role/grantflow-connector"
FOREIGN = "arn:aws:iam::999999999999:role/attacker-role"


def _beat(live: LiveServer, connector: dict[str, str], arn: str) -> None:
    r = httpx.post(
        f"{live.url}/api/v1/connectors/{connector['id']}/heartbeat",
        json={"version": "0.1.0", "aws_identity_arn": arn},
        headers={"Authorization": f"Bearer {connector['token']}"},
    )
    assert r.status_code == 200, r.text


def test_a_changed_identity_is_flagged_and_an_admin_confirms_a_role(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    with live_server.http() as c:
        connector = dict(c.post("/api/v1/connectors", json={"name": "edge"}).json())
    _beat(live_server, connector, OURS)
    set_password(live_server.db_url, "ada", role="admin")
    tab = open_tab(live_server.url)
    tab.sign_in("ada")
    page = tab.page
    tab.goto("/admin/connectors")
    row = page.locator(f"tr[data-connector-id='{connector['id']}']")
    expect(row.get_by_text("Not confirmed")).to_be_visible()
    row.get_by_role("button", name="Role…").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Confirm the reported role {OURS}").click()
    expect(row.get_by_text("Confirmed", exact=True)).to_be_visible()

    _beat(live_server, connector, FOREIGN)  # a stolen token reports another account's role
    expect(row.get_by_text("Reported role changed")).to_be_visible(timeout=20_000)
    expect(row.get_by_text(FOREIGN)).to_be_visible()
    panel = page.locator("#identity")
    expect(panel.get_by_role("alert")).to_contain_text(f"now reports {FOREIGN}")
    expect(panel.get_by_role("button", name=f"Confirm the reported role {FOREIGN}")).to_be_visible()
    row.get_by_role("button", name="Template").click()
    page.get_by_label("Organizational unit for member roles").fill("ou-abcd-12345678")
    page.get_by_role("button", name="Show command").click()
    command = page.locator("#template-out pre")
    expect(command).to_contain_text(f"ConnectorRoleArn={OURS}")
    expect(command).not_to_contain_text("999999999999")
    tab.shot("connector-identity-changed")
    tab.assert_no_errors()
