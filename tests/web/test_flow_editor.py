"""The flow editor: permissions picked from the synced list (no free text once synced),
durations checked and reported in the form's minutes, errors cleared as soon as the field is
fixed; and a granted request offers Extend only when its flow allows an extension."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.fixtures.live import LiveServer
from tests.web import world
from tests.web.conftest import Tab, set_password

TabFactory = Callable[..., Tab]


def test_permissions_from_the_synced_list_and_durations_in_minutes(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    seeded = world.integration(live_server, "Acme", permissions=("ReadOnly", "AdministratorAccess"))
    set_password(live_server.db_url, "ada", role="admin")
    tab = open_tab(live_server.url)
    tab.sign_in("ada")
    tab.goto("/admin/flows")
    page = tab.page
    expect(page.locator("#flows tr", has_text="Acme flow")).to_be_visible()
    page.get_by_role("button", name="New access flow").click()
    page.get_by_label("Name", exact=True).fill("Read only for all")
    page.get_by_label("Everyone").check()
    perms = page.locator("#fl-perms")
    expect(perms.get_by_role("checkbox", name="AdministratorAccess")).to_be_visible()
    expect(perms.locator("input[type=text]")).to_have_count(0)  # no free text once synced
    perms.get_by_role("checkbox", name="ReadOnly").check()
    page.get_by_label("Approvers must give a reason").uncheck()
    page.get_by_label("Mode").select_option("auto")
    page.get_by_label("Maximum duration (minutes)").fill("60")
    page.get_by_label("Default duration (minutes)").fill("600")
    page.get_by_role("button", name="Save flow").click()

    error = page.locator("#err-definition-default_duration_seconds")
    expect(error).to_contain_text("600 minutes")
    expect(error).to_contain_text("60 minutes")
    expect(error).not_to_contain_text("seconds")
    tab.shot("flow-editor-duration-error")
    page.get_by_label("Default duration (minutes)").fill("30")
    expect(error).to_be_empty()  # cleared once fixed, before saving again
    page.get_by_role("button", name="Save flow").click()
    expect(page.locator("#flows tr", has_text="Read only for all")).to_be_visible()
    with live_server.http() as c:
        saved = next(f for f in c.get("/api/v1/access-flows").json()
                     if f["name"] == "Read only for all")  # fmt: skip
    assert saved["integration_id"] == seeded.integration_id
    assert saved["definition"]["permissions"] == {"aws-account": ["ReadOnly"]}
    assert saved["definition"]["default_duration_seconds"] == 1800
    tab.assert_no_errors()


def test_extend_is_offered_only_when_the_flow_allows_an_extension(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    grace = set_password(live_server.db_url, "grace")
    none = world.integration(live_server, "NoExtend", account="111111111111")
    two = world.integration(live_server, "TwoExtends", account="222222222222", max_extensions=2)
    fixed = world.access_request(
        live_server, none, grace, "granted", granted_at=world.hours(-1), expires_at=world.hours(1)
    )
    stretchy = world.access_request(
        live_server, two, grace, "granted", granted_at=world.hours(-1), expires_at=world.hours(1)
    )
    tab = open_tab(live_server.url)
    tab.sign_in("grace")
    tab.goto(f"/requests/{fixed}")
    page = tab.page
    expect(page.get_by_role("button", name="Revoke access now")).to_be_visible()
    expect(page.get_by_role("button", name="Extend")).to_have_count(0)
    tab.goto(f"/requests/{stretchy}")
    expect(page.get_by_role("button", name="Extend")).to_be_visible()
    expect(page.locator("#request")).to_contain_text("Extensions used: 0 of 2")
    tab.assert_no_errors()
