"""The console and the portal on the emulated organization (moto), in Chromium:
the whole wizard to an Active integration; request → approve → sign-in link → revoke, with the
account assignment read back from AWS."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Deployed, wait_for
from tests.web.conftest import Tab, set_password

pytestmark = pytest.mark.slow
TabFactory = Callable[..., Tab]
DETAILS = "Break-glass runbook: https://wiki.example.com/aws\nOn call: #platform"


def _assignments(d: Deployed, account: str, ps_arn: str) -> set[tuple[str, str, str]]:
    sso = boto3.client("sso-admin", region_name="us-east-1")
    pages = sso.get_paginator("list_account_assignments").paginate(
        InstanceArn=d.org.instance_arn, AccountId=account, PermissionSetArn=ps_arn
    )
    return {(a["AccountId"], a["PermissionSetArn"], a["PrincipalId"])
            for page in pages for a in page["AccountAssignments"]
            if a["PrincipalType"] == "USER"}  # fmt: skip


def test_wizard_from_catalog_to_an_active_integration(
    deployed: Deployed, open_tab: TabFactory
) -> None:
    d = deployed
    set_password(d.live.db_url, "ada", role="admin")
    tab = open_tab(d.live.url)
    tab.sign_in("ada")
    page = tab.page
    tab.goto("/admin/catalog")
    page.get_by_role("link", name="Connect", exact=True).click()

    page.get_by_role("button", name="Next").click()
    connector = page.get_by_role("combobox", name="Connector")
    connector.select_option(d.connector_id)
    detail = page.locator("#connector-detail")
    expect(detail).to_contain_text(d.connector_id)
    page.locator("#template-box summary").click()
    page.get_by_label("Organizational unit for member roles").fill(d.org.root_id)
    page.get_by_role("button", name="Get template").click()
    expect(page.locator("#template-out pre").first).to_contain_text("aws cloudformation deploy")
    tab.shot("wizard-connector")
    page.locator("[data-step=connector] .next").click()

    body = d.integration_body()["config"]
    page.get_by_label("Integration Name").fill("Emulated Org")
    page.get_by_label("Region", exact=True).fill(body["region"])
    page.get_by_label("AWS SSO Region").fill(body["sso_region"])
    page.get_by_label("SSO Portal").fill(body["sso_portal"])
    page.get_by_label("Management Account Role ARN").fill(body["management_role_arn"])
    page.get_by_label("Exclude Organization Unit IDs").fill(", ".join(body["exclude_ou_ids"]))
    page.get_by_label("Regions to discover").fill(", ".join(body["sync_regions"]))
    page.locator("[data-step=config] .next").click()

    page.get_by_label("Custom Access Details").fill(DETAILS)
    expect(page.locator("#details-count")).to_have_text(f"{len(DETAILS)} / 400")
    # Before the first sync the directory holds local users only: ada owns the integration.
    page.get_by_label("Owners").select_option("ada")
    page.get_by_label("Tag key").fill("owner")
    page.get_by_label("Matched against IdP attribute").select_option("username")
    tab.shot("wizard-get-more-filled")
    page.locator("[data-step=more] .next").click()
    expect(page.locator("#confirm-summary")).to_contain_text("Emulated Org")
    tab.shot("wizard-confirm")
    page.get_by_role("button", name="Create integration").click()

    card = page.locator("article.integration[data-name='Emulated Org']")
    expect(card).to_be_visible()
    # Live status, no reload: Initializing/Refreshing → Active, counts filled in.
    expect(card).to_have_attribute("data-status", "active", timeout=120_000)
    expect(card.locator(".counts [data-type='aws-account']")).to_be_visible()
    expect(card).to_contain_text("Last sync")
    tab.shot("integrations-connected")
    card.get_by_role("button", name="Sync history").click()
    expect(page.locator("#history-body tbody tr").first).to_contain_text("Succeeded")

    for path, name in [("/admin/connectors", "connectors"), ("/admin/resources", "resources"),
                       ("/admin/flows", "flows"), ("/admin/users", "users"),
                       ("/admin/audit", "audit")]:  # fmt: skip
        tab.goto(path)
        page.wait_for_load_state("networkidle")
        tab.shot(name)
    expect(page.locator("#a-rows tr").first).to_contain_text("integration")
    tab.goto("/admin/notifications")  # no channel configured on this server: it says so
    expect(page.locator("#n-channels")).to_contain_text("No notification channel is configured")
    expect(page.locator("#n-rows")).to_contain_text("Nothing has been sent yet")
    tab.assert_no_errors()


def test_request_approve_sign_in_and_revoke_in_the_portal(
    deployed: Deployed, open_tab: TabFactory
) -> None:
    d = deployed
    integ = d.create_integration(custom_access_details=DETAILS)
    assert d.wait_status(integ["id"], {"active", "error"})["status"] == "active"
    requester, approver = d.org.users[0], d.org.users[1]
    set_password(d.live.db_url, requester.username)
    approver_id = set_password(d.live.db_url, approver.username)
    with d.admin() as c:
        r = c.post("/api/v1/access-flows", json={
            "name": "Admin with approval", "integration_id": integ["id"],
            "definition": {"requestors": {"everyone": True},
                           "scope": {"resource_types": ["aws-account"], "mode": "all"},
                           "permissions": {"aws-account": ["AdministratorAccess"]},
                           "approval": {"mode": "any", "groups": [
                               {"kind": "users", "user_ids": [approver_id]}]},
                           "justification_required": True}})  # fmt: skip
        assert r.status_code == 201, r.text
    account = next(a for a in d.org.member_accounts if a.id in d.org.synced_account_ids)
    ps_arn = d.org.permission_set_arns["AdministratorAccess"]
    before = _assignments(d, account.id, ps_arn)

    me = open_tab(d.live.url)
    me.sign_in(requester.username)
    page = me.page
    page.get_by_label("Search").fill(account.id)
    page.get_by_role("button", name="Search").click()
    row = page.locator("#results tr", has_text=account.id)
    expect(row).to_have_count(1)
    me.shot("portal-search")
    row.get_by_role("button").click()
    expect(page.get_by_label("Permission")).to_have_value("AdministratorAccess")
    page.get_by_label("Duration").select_option("1800")
    page.get_by_role("button", name="Submit request").click()
    expect(page.locator("#err-justification")).to_contain_text("justification")
    page.get_by_label("Justification").fill("INC-4242: restore the payments bucket policy")
    me.shot("portal-request-form")
    page.get_by_role("button", name="Submit request").click()
    expect(page.locator("#request h1 .state")).to_have_text("Pending")
    request_id = page.url.rsplit("/", 1)[1]

    boss = open_tab(d.live.url)
    boss.sign_in(approver.username)
    # An email's Approve link opens the request with the Approve button in focus; it decides
    # nothing by itself (the request is still pending after the page loads).
    boss.goto(f"/requests/{request_id}?decision=approve")
    expect(boss.page.locator("#d-asked")).to_contain_text('"approve" link')
    expect(boss.page.locator("#d-approve")).to_be_focused()
    expect(boss.page.locator("#request h1 .state")).to_have_text("Pending")
    boss.goto("/approvals")
    card = boss.page.locator(f"article[data-request-id='{request_id}']")
    expect(card.locator(".why")).to_contain_text("named in the flow")
    boss.shot("approvals")
    card.get_by_label("Reason").fill("Matches INC-4242")
    card.get_by_role("button", name="Approve").click()
    expect(boss.page.get_by_text("Nothing waits for your approval.")).to_be_visible()

    # The requester's page follows the request live: approved → granting → granted.
    expect(page.locator("#request h1 .state")).to_have_text("Granted", timeout=60_000)
    sign_in = page.get_by_test_id("sign-in")
    portal = integ["config"]["sso_portal"]
    link = f"{portal}/#/console?account_id={account.id}&role_name=AdministratorAccess"
    expect(sign_in).to_have_attribute("href", link)
    expect(page.get_by_test_id("cli")).to_contain_text(f"sso_account_id = {account.id}")
    expect(page.locator(".grant .access-details")).to_have_text(DETAILS)
    expect(page.locator(".time-left")).to_contain_text("m")
    me.shot("request-granted")
    user_id = requester.user_id
    assert _assignments(d, account.id, ps_arn) == before | {(account.id, ps_arn, user_id)}

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke access now").click()
    expect(page.locator("#request h1 .state")).to_have_text("Revoked", timeout=60_000)
    wait_for(lambda: _assignments(d, account.id, ps_arn) == before, 30, "assignment removed")
    me.goto("/requests")
    expect(page.locator(f"#requests tr[data-request-id='{request_id}']")).to_contain_text("Revoked")
    me.shot("my-requests")

    # Their name leads to their API tokens: make one (the secret shown once), use it, revoke it.
    page.get_by_test_id("who").click()
    expect(page).to_have_url(f"{d.live.url}/profile")
    page.get_by_label("Name").fill("laptop CLI")
    page.get_by_role("button", name="Make token").click()
    secret = page.get_by_test_id("new-token").inner_text().strip()
    assert secret.startswith("gf_pat_")
    expect(page.locator("#t-secret")).to_contain_text(f"grantflow login --url {d.live.url}")
    row = page.locator("#t-rows tr", has_text="laptop CLI")
    expect(row).to_contain_text(secret[:10])
    bearer = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{d.live.url}/api/v1/me", headers=bearer).json()["username"] == (
        requester.username
    )
    me.shot("profile-tokens")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#t-rows")).not_to_contain_text("laptop CLI")
    assert httpx.get(f"{d.live.url}/api/v1/me", headers=bearer).status_code == 401
    me.assert_no_errors()
    boss.assert_no_errors()
