"""Admin: every request and the access live now, in the console (not only
`grantflow requests list --all`); members are refused the page."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.fixtures.live import LiveServer
from tests.web import world
from tests.web.conftest import Tab, set_password

TabFactory = Callable[..., Tab]


def test_admin_sees_all_requests_and_live_access(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    seeded = world.integration(live_server, "Acme")
    grace = set_password(live_server.db_url, "grace")
    alan = set_password(live_server.db_url, "alan")
    set_password(live_server.db_url, "ada", role="admin")
    live = world.access_request(
        live_server, seeded, grace, "granted", granted_at=world.hours(-1),
        expires_at=world.hours(1),
    )  # fmt: skip
    ended = world.access_request(
        live_server, seeded, alan, "revoked", granted_at=world.hours(-3),
        expires_at=world.hours(2), ended_at=world.hours(-2), end_reason="revoked",
    )  # fmt: skip
    pending = world.access_request(live_server, seeded, alan, "pending")

    tab = open_tab(live_server.url)
    tab.sign_in("ada")
    tab.page.get_by_role("navigation", name="Main").get_by_role("link", name="All requests").click()
    page = tab.page
    expect(page).to_have_url(f"{live_server.url}/admin/requests")
    live_rows = page.locator("#live-rows tr")
    expect(live_rows).to_have_count(1)
    expect(live_rows.first).to_have_attribute("data-request-id", live)
    expect(live_rows.first).to_contain_text("grace")
    expect(live_rows.first).to_contain_text("Acme")
    rows = page.locator("#ar-rows tr")
    expect(rows).to_have_count(3)
    expect(page.locator(f"#ar-rows tr[data-request-id='{ended}']")).to_contain_text("ended")
    page.get_by_label("State").select_option("pending")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-request-id", pending)
    tab.shot("admin-requests")
    rows.first.get_by_role("link").click()
    crumb = page.get_by_role("navigation", name="Breadcrumb").get_by_role("link")
    expect(crumb).to_have_text("All requests")
    tab.assert_no_errors()

    member = open_tab(live_server.url)
    member.sign_in("grace")
    member.goto("/admin/requests")
    expect(member.page.get_by_role("heading", name="Not allowed")).to_be_visible()
