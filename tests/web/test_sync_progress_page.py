"""The Connected tab follows a running sync live (issue 19 item 5): the progress in words —
reading the organization, then accounts done of total and resources so far — updates without
a reload as the connector reports through the real job protocol, and goes once the sync ends."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from grantflow.connector.client import ControlPlaneClient
from tests.fixtures.integrations import integration_body
from tests.fixtures.live import LiveServer
from tests.integrations.connector_driver import account
from tests.web.conftest import Tab, set_password

TabFactory = Callable[..., Tab]
SUMMARY = {"organization_id": "o-abc1234567", "management_account_id": "123456789012",
           "root_id": "r-ab12", "accounts_total": 3, "accounts_by_outcome": {"synced": 3},
           "resources_by_type": {}, "aws_calls": 3, "duration_seconds": 0.1}  # fmt: skip


def _connected(live: LiveServer) -> ControlPlaneClient:
    """A connector and an integration through the API, verified: its first sync is queued."""
    with live.http() as admin:
        r = admin.post("/api/v1/connectors", json={"name": "edge", "kind": "self_hosted"})
        cid, token = r.json()["id"], r.json()["token"]
        body = integration_body(cid, ["aws-account", "s3-bucket"])
        r = admin.post("/api/v1/integrations", json=body)
        assert r.status_code == 201, r.text
    client = ControlPlaneClient(live.url, cid, token)
    (verify,) = client.lease(10, wait_seconds=10, lease_seconds=600)
    client.complete(verify, {"organization_id": "o-abc1234567",
                             "management_account_id": "123456789012"})  # fmt: skip
    return client


def test_connected_tab_shows_sync_progress_live(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    client = _connected(live_server)
    (job,) = client.lease(10, wait_seconds=10, lease_seconds=600)
    assert job.type == "sync"
    set_password(live_server.db_url, "ada", role="admin")
    tab = open_tab(live_server.url)
    tab.sign_in("ada")
    tab.goto("/admin/integrations")
    card = tab.page.locator("article.integration[data-name='Org']")
    progress = card.get_by_test_id("sync-progress")
    expect(progress).to_have_text("Syncing: reading the organization…")

    client.sync_progress(job, 3)
    expect(progress).to_have_text("Syncing: 0 of 3 accounts, 0 resources so far")
    client.sync_batch(job, account("111111111111", buckets=("a1", "a2", "a3")))
    expect(progress).to_have_text("Syncing: 1 of 3 accounts, 4 resources so far")
    expect(progress).to_have_attribute("role", "status")
    expect(card.locator("progress")).to_have_attribute("value", "1")
    expect(card.locator("progress")).to_have_attribute("max", "3")
    client.sync_batch(job, account("222222222222"))
    expect(progress).to_have_text("Syncing: 2 of 3 accounts, 5 resources so far")
    tab.shot("connected-sync-progress", full_page=False)

    client.sync_batch(job, account("333333333333"))
    expect(progress).to_have_text("Syncing: all 3 accounts read, 6 resources; finishing…")
    client.complete(job, SUMMARY)
    expect(progress).to_have_count(0)
    expect(card).to_have_attribute("data-status", "active")
    client.close()
    tab.assert_no_errors()
