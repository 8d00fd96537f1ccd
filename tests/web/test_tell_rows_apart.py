"""Rows a person can tell apart: with two integrations the same account shows which
integration (and flow) each row is; the audit log names people and objects instead of UUIDs;
sync history shows counts as words, not JSON."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.fixtures.live import LiveServer
from tests.web import world
from tests.web.conftest import Tab, set_password

TabFactory = Callable[..., Tab]
ACCOUNT = "111111111111"


def test_request_access_and_resources_show_the_integration_and_flow(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    world.integration(live_server, "Acme", account=ACCOUNT)
    world.integration(live_server, "Beta", account=ACCOUNT)
    set_password(live_server.db_url, "grace")
    set_password(live_server.db_url, "ada", role="admin")
    me = open_tab(live_server.url)
    me.sign_in("grace")
    rows = me.page.locator("#results tr", has_text=ACCOUNT)
    expect(rows).to_have_count(2)
    for name in ("Acme", "Beta"):
        row = me.page.locator("#results tr", has_text=f"via {name} flow")
        expect(row.locator("td.integration")).to_contain_text(name)
    me.page.get_by_role("button", name="Request prod in Beta").click()
    expect(me.page.locator("#r-name")).to_contain_text("in Beta")
    me.shot("portal-two-integrations")
    me.assert_no_errors()

    admin = open_tab(live_server.url)
    admin.sign_in("ada")
    admin.goto("/admin/resources")
    cells = admin.page.locator("#r-rows td.integration")
    expect(cells).to_have_count(2)
    assert sorted(cells.all_inner_texts()) == ["Acme", "Beta"]
    admin.assert_no_errors()


def test_audit_log_names_things_and_sync_history_counts_in_words(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    seeded = world.integration(live_server, "Acme", account=ACCOUNT)
    world.sync_run(live_server, seeded, {"aws-account": {"created": 3, "unchanged": 2}})
    ada_id = set_password(live_server.db_url, "ada", role="admin")
    tab = open_tab(live_server.url)
    tab.sign_in("ada")
    page = tab.page
    tab.goto("/admin/integrations")
    card = page.locator("article.integration[data-name='Acme']")
    card.get_by_role("button", name="Sync history").click()
    history = page.locator("#history-body tbody")
    expect(history).to_contain_text("aws-account: 3 created, 2 unchanged")
    expect(history).not_to_contain_text("{")

    renamed = page.evaluate(
        "(id) => GF.api('PATCH', '/api/v1/integrations/' + id, {name: 'Acme Corp'})"
        ".then((r) => r.status)",
        seeded.integration_id,
    )
    assert renamed == 200
    tab.goto("/admin/audit")
    row = page.locator("#a-rows tr", has_text="integration.updated").first
    expect(row).to_contain_text("ada")
    expect(row).to_contain_text("Acme Corp")
    expect(row).not_to_contain_text(seeded.integration_id)
    expect(row).not_to_contain_text(ada_id)
    expect(row).not_to_contain_text('{"')
    tab.shot("audit-names")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, "the audit log is wider than the page"
    tab.assert_no_errors()
