"""The wizard against a live server (no AWS needed): an error only the API knows (a name taken
meanwhile) lands next to its field and nothing typed is lost; sign-in, the nav by role,
sign-out; the pages at phone width."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.fixtures.live import LiveServer
from tests.web import world
from tests.web.conftest import PHONE, Tab, set_password

TabFactory = Callable[..., Tab]
ROLE_ARN = "arn:aws:iam::111111111111:role/GrantflowManagement"


def _connector(live: LiveServer, name: str = "edge") -> dict[str, str]:
    with live.http() as c:
        r = c.post("/api/v1/connectors", json={"name": name, "kind": "self_hosted"})
        assert r.status_code == 201, r.text
        return dict(r.json())


def test_api_error_shows_next_to_its_field_and_keeps_the_rest(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    connector = _connector(live_server)
    set_password(live_server.db_url, "ada", role="admin")
    tab = open_tab(live_server.url)
    tab.sign_in("ada")
    page = tab.page
    page.get_by_role("link", name="Catalog").click()
    tab.shot("catalog")
    page.get_by_role("link", name="Connect", exact=True).click()

    expect(page.get_by_role("heading", name="Discovery")).to_be_visible()
    page.get_by_label("S3 bucket").uncheck()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("combobox", name="Connector")).to_be_visible()
    page.get_by_role("combobox", name="Connector").select_option(connector["id"])
    expect(page.locator("#connector-detail")).to_contain_text(connector["id"])
    page.locator("[data-step=connector] .next").click()

    page.get_by_label("Integration Name").fill("Acme Org")
    page.get_by_label("Region", exact=True).fill("us-east-1")
    page.get_by_label("AWS SSO Region").fill("eu-west-1")
    page.get_by_label("SSO Portal").fill("https://d-1234567890.awsapps.com/start")
    page.get_by_label("Management Account Role ARN").fill("not-a-role-arn")
    page.get_by_label("Exclude Organization Unit IDs").fill("ou-ab12-aaaaaaaa")
    expect(page.locator("#help-config-sso_portal")).to_contain_text("sign-in links")
    page.locator("[data-step=config] .next").click()
    expect(page.locator("#err-config-management_role_arn")).to_contain_text("IAM role ARN")
    page.get_by_label("Management Account Role ARN").fill(ROLE_ARN)
    page.locator("[data-step=config] .next").click()

    details = page.get_by_label("Custom Access Details")
    details.fill("Use the <b>break-glass</b> runbook")
    expect(page.locator("#details-count")).to_have_text("34 / 400")
    expect(page.locator("#details-preview .access-details")).to_have_text(
        "Use the <b>break-glass</b> runbook"
    )
    page.get_by_label("Tag key").fill("owner")
    expect(page.get_by_text("An Integration Owner is required")).to_be_visible()
    tab.shot("wizard-get-more")
    page.locator("[data-step=more] .next").click()
    # The step checks its own fields on Next: the owner rule shows here, before Confirm.
    expect(page.locator("#err-config-resource_owner")).to_contain_text("Integration Owner")
    page.get_by_label("Tag key").fill("")
    page.locator("[data-step=more] .next").click()

    # Meanwhile someone else takes the name: only the API knows. The config step re-opens
    # with the message next to the field, and everything typed is still there.
    world.integration(live_server, "Acme Org")
    page.get_by_role("button", name="Create integration").click()
    error = page.locator("#err-name")
    expect(error).to_contain_text("already exists")
    expect(page.get_by_label("Integration Name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Integration Name")).to_have_value("Acme Org")
    expect(page.get_by_label("SSO Portal")).to_have_value("https://d-1234567890.awsapps.com/start")
    expect(page.get_by_label("Exclude Organization Unit IDs")).to_have_value("ou-ab12-aaaaaaaa")
    tab.shot("wizard-validation-error")

    page.get_by_label("Integration Name").fill("Acme Org Two")
    page.locator("[data-step=config] .next").click()
    expect(page.get_by_label("Custom Access Details")).to_have_value(
        "Use the <b>break-glass</b> runbook"
    )
    page.locator("[data-step=more] .next").click()
    page.get_by_role("button", name="Create integration").click()
    card = page.locator("article.integration[data-name='Acme Org Two']")
    expect(card).to_be_visible()
    with live_server.http() as c:
        (created,) = [
            i for i in c.get("/api/v1/integrations").json() if i["name"] == "Acme Org Two"
        ]
    assert created["resource_types"] and "s3-bucket" not in created["resource_types"]
    assert created["config"]["custom_access_details"] == "Use the <b>break-glass</b> runbook"
    tab.assert_no_errors()


def test_sign_in_nav_by_role_and_phone_width(live_server: LiveServer, open_tab: TabFactory) -> None:
    set_password(live_server.db_url, "grace", role="member")
    tab = open_tab(live_server.url, PHONE)
    tab.goto("/approvals")
    expect(tab.page).to_have_url(f"{live_server.url}/login?next=/approvals")
    tab.page.get_by_label("Username").fill("grace")
    tab.page.get_by_label("Password").fill("wrong password!")
    tab.page.get_by_role("button", name="Sign in").click()
    expect(tab.page.locator("#login-error")).not_to_be_empty()
    tab.shot("login-phone")
    tab.page.get_by_label("Password").fill("correct horse battery staple")
    tab.page.get_by_role("button", name="Sign in").click()
    expect(tab.page).to_have_url(f"{live_server.url}/approvals")
    nav = tab.page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="My approvals")).to_be_visible()
    expect(nav.get_by_role("link", name="Integrations")).to_have_count(0)
    tab.goto("/admin/integrations")
    expect(tab.page.get_by_role("heading", name="Not allowed")).to_be_visible()
    tab.goto("/")
    expect(tab.page.locator("#result-count")).to_contain_text("Nothing to request")
    tab.shot("portal-phone")
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the portal scrolls sideways on a phone"
    tab.page.get_by_role("button", name="Sign out").click()
    expect(tab.page).to_have_url(f"{live_server.url}/login")
    tab.goto("/requests")
    expect(tab.page).to_have_url(f"{live_server.url}/login?next=/requests")
    tab.assert_no_errors()
