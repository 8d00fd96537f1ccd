"""The requester's and the approver's pages tell the truth: when access actually ended, who
approves (by name), and where the page belongs (My requests or My approvals). Rows are seeded
straight into the database (tests/web/world.py); no AWS is involved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from playwright.sync_api import expect

from tests.fixtures.live import LiveServer
from tests.web import world
from tests.web.conftest import Tab, set_password

TabFactory = Callable[..., Tab]


def _when(tab: Tab, value: datetime) -> str:
    """The page's own formatting of a time (locale of the browser)."""
    return str(tab.page.evaluate("(v) => GF.when(v)", value.isoformat()))


def test_a_revoked_request_shows_when_access_actually_ended(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    seeded = world.integration(live_server, "Acme")
    grace = set_password(live_server.db_url, "grace")
    planned, ended = world.hours(5), world.hours(-1)
    request_id = world.access_request(
        live_server, seeded, grace, "revoked", granted_at=world.hours(-2), expires_at=planned,
        ended_at=ended, end_reason="revoked",
    )  # fmt: skip
    tab = open_tab(live_server.url)
    tab.sign_in("grace")
    tab.goto("/requests")
    row = tab.page.locator(f"#requests tr[data-request-id='{request_id}']")
    expect(row).to_contain_text("Revoked")
    expect(row).to_contain_text(_when(tab, ended))
    expect(row).not_to_contain_text(_when(tab, planned))

    tab.goto(f"/requests/{request_id}")
    page = tab.page
    expect(page.locator("#request h1 .state")).to_have_text("Revoked")
    expect(page.locator("#request")).to_contain_text(_when(tab, ended))
    expect(page.locator("#request")).not_to_contain_text(f"until {_when(tab, planned)}")
    tab.assert_no_errors()


def test_the_form_and_the_page_name_the_approvers_and_the_approver_goes_back_to_approvals(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    grace = set_password(live_server.db_url, "grace")
    boss = set_password(live_server.db_url, "boss")
    platform = world.group(live_server, "platform", [boss])
    approval = {"mode": "all", "groups": [{"kind": "users", "user_ids": [boss]},
                                          {"kind": "groups", "group_ids": [platform]}]}  # fmt: skip
    seeded = world.integration(live_server, "Acme", approvers=approval)
    stored = {"mode": "all", "sets": [
        {"label": "named users", "why": "named in the flow", "principals": [f"user:{boss}"],
         "required": 1},
        {"label": "named groups", "why": "named in the flow",
         "principals": [f"group:{platform}"], "required": 1}]}  # fmt: skip
    request_id = world.access_request(live_server, seeded, grace, "pending", approval=stored)

    me = open_tab(live_server.url)
    me.sign_in("grace")
    page = me.page
    page.get_by_role("button", name="Request prod").click()
    expect(page.locator("#r-approval")).to_contain_text("Needs approval from Boss (boss)")
    expect(page.locator("#r-approval")).to_contain_text("group platform")
    me.goto(f"/requests/{request_id}")
    approvers = page.get_by_test_id("approvers")
    expect(approvers).to_contain_text("Boss (boss)")
    expect(approvers).to_contain_text("group platform")
    expect(approvers).not_to_contain_text("named users")
    crumb = page.get_by_role("navigation", name="Breadcrumb").get_by_role("link")
    expect(crumb).to_have_text("My requests")

    approver = open_tab(live_server.url)
    approver.sign_in("boss")
    approver.goto(f"/requests/{request_id}")
    expect(approver.page.locator("#d-approve")).to_be_visible()
    crumb = approver.page.get_by_role("navigation", name="Breadcrumb").get_by_role("link")
    expect(crumb).to_have_text("My approvals")
    expect(crumb).to_have_attribute("href", "/approvals")
    me.assert_no_errors()
    approver.assert_no_errors()
