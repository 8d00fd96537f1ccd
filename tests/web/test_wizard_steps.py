"""The wizard step by step, keyboard first (no AWS needed): Enter moves to the next step and
only Confirm creates the integration; each step checks its own fields on Next and shows every
error at once, in words, next to its field."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.fixtures.live import LiveServer
from tests.web import world
from tests.web.conftest import Tab, set_password

TabFactory = Callable[..., Tab]
ROLE_ARN = "arn:aws:iam::111111111111:role/GrantflowManagement"
PORTAL = "https://d-1234567890.awsapps.com/start"


def _connector(live: LiveServer, name: str = "edge") -> dict[str, str]:
    with live.http() as c:
        r = c.post("/api/v1/connectors", json={"name": name, "kind": "self_hosted"})
        assert r.status_code == 201, r.text
        return dict(r.json())


def _integrations(live: LiveServer) -> list[dict[str, object]]:
    with live.http() as c:
        return list(c.get("/api/v1/integrations").json())


def _open_wizard(live: LiveServer, open_tab: TabFactory) -> Tab:
    set_password(live.db_url, "ada", role="admin")
    tab = open_tab(live.url)
    tab.sign_in("ada")
    tab.goto("/admin/catalog/aws-organization")
    expect(tab.page.get_by_role("heading", name="Discovery")).to_be_visible()
    return tab


def _to_config_step(page: Page, connector_id: str) -> None:
    page.locator("[data-step=discovery] .next").click()
    page.get_by_role("combobox", name="Connector").select_option(connector_id)
    page.locator("[data-step=connector] .next").click()
    expect(page.get_by_label("Integration Name")).to_be_visible()


def test_enter_moves_to_the_next_step_and_only_confirm_creates(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    connector = _connector(live_server)
    tab = _open_wizard(live_server, open_tab)
    page = tab.page
    _to_config_step(page, connector["id"])
    page.get_by_label("Region", exact=True).fill("us-east-1")
    page.get_by_label("AWS SSO Region").fill("us-east-1")
    page.get_by_label("SSO Portal").fill(PORTAL)
    page.get_by_label("Management Account Role ARN").fill(ROLE_ARN)
    page.get_by_label("Integration Name").fill("Keyboard Org")
    page.get_by_label("Integration Name").press("Enter")

    # Enter opened Get more; nothing was created.
    expect(page.get_by_label("Custom Access Details")).to_be_visible()
    expect(page.get_by_label("Integration Name")).to_be_hidden()
    assert _integrations(live_server) == []
    page.get_by_label("Tag key").press("Enter")  # Get more → Confirm, still nothing created
    expect(page.locator("#confirm-summary")).to_contain_text("Keyboard Org")
    assert _integrations(live_server) == []

    page.get_by_role("button", name="Create integration").click()
    expect(page.locator("article.integration[data-name='Keyboard Org']")).to_be_visible()
    assert [i["name"] for i in _integrations(live_server)] == ["Keyboard Org"]
    tab.assert_no_errors()


def test_each_step_checks_its_fields_on_next_all_errors_at_once_in_words(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    connector = _connector(live_server)
    world.integration(live_server, "Taken")
    tab = _open_wizard(live_server, open_tab)
    page = tab.page
    page.locator("[data-step=discovery] .next").click()
    page.locator("#template-box summary").click()
    page.get_by_role("button", name="Get template").click()
    expect(page.locator("#template-out")).to_contain_text("Choose a connector first.")
    page.get_by_role("combobox", name="Connector").select_option(connector["id"])
    expect(page.locator("#template-out")).not_to_contain_text("Choose a connector first.")
    page.get_by_label("Organizational unit for member roles").fill("engineering")
    page.get_by_role("button", name="Get template").click()
    expect(page.locator("#err-template_ou")).to_contain_text("root id (r-xxxx) or an OU id")
    expect(page.locator("#template-box")).not_to_contain_text("should match pattern")
    page.get_by_label("Organizational unit for member roles").fill("")
    page.locator("[data-step=connector] .next").click()

    page.get_by_label("Integration Name").fill("Taken")
    page.get_by_label("Region", exact=True).fill("moon-1")
    page.get_by_label("AWS SSO Region").fill("us-east-1")
    page.get_by_label("SSO Portal").fill("http://d-1234567890.awsapps.com/start")
    page.get_by_label("Management Account Role ARN").fill("not-a-role-arn")
    page.get_by_label("Exclude Organization Unit IDs").fill("ou-ab12-aaaaaaaa, engineering")
    page.locator("[data-step=config] .next").click()

    # Every problem of the step at once, next to its field, and the step stays open.
    expect(page.locator("#err-name")).to_contain_text("already exists")
    expect(page.locator("#err-config-region")).to_contain_text("not an AWS region code")
    expect(page.locator("#err-config-sso_portal")).to_contain_text("https://")
    expect(page.locator("#err-config-management_role_arn")).to_contain_text("IAM role ARN")
    expect(page.locator("#err-config-exclude_ou_ids")).to_contain_text("engineering")
    expect(page.locator("[data-step=config] .step-body")).not_to_contain_text("should match")
    expect(page.get_by_label("Custom Access Details")).to_be_hidden()
    tab.shot("wizard-step-errors")

    page.get_by_label("Integration Name").fill("Fresh")
    expect(page.locator("#err-name")).to_be_empty()  # cleared once the field changes
    page.get_by_label("Region", exact=True).fill("us-east-1")
    page.get_by_label("SSO Portal").fill(PORTAL)
    page.get_by_label("Management Account Role ARN").fill(ROLE_ARN)
    page.get_by_label("Exclude Organization Unit IDs").fill("ou-ab12-aaaaaaaa")
    page.locator("[data-step=config] .next").click()
    expect(page.get_by_label("Custom Access Details")).to_be_visible()

    page.get_by_label("Tag key").fill("owner")  # the owner rule, on this step's Next
    page.locator("[data-step=more] .next").click()
    expect(page.locator("#err-config-resource_owner")).to_contain_text("Integration Owner")
    expect(page.locator("#confirm-summary")).to_be_hidden()
    page.get_by_label("Tag key").fill("")
    page.locator("[data-step=more] .next").click()
    page.get_by_role("button", name="Create integration").click()
    expect(page.locator("article.integration[data-name='Fresh']")).to_be_visible()
    tab.assert_no_errors()
