"""The demo-shaped organization (30 member accounts), synced once with small pages."""

from __future__ import annotations

import math

import pytest

from grantflow.demo.org_shape import OrgShape
from grantflow.domain.inventory import AccountOutcome
from tests.aws.sync.helpers import (
    connector_factory,
    expected_member_keys,
    found_member_keys,
    options_for,
    run,
)
from tests.fixtures.org import OrgFactory

PAGE_SIZE = 10


@pytest.mark.slow
def test_demo_organization_sync_is_exact_across_pages(org_factory: OrgFactory) -> None:
    org = org_factory(OrgShape.demo())
    assert len(org.accounts) >= 25
    connector = connector_factory()
    result = run(connector, options_for(org, page_size=PAGE_SIZE, max_workers=8))

    assert found_member_keys(result.records()) == expected_member_keys(org)
    in_scope = {a.id for a in org.accounts} - org.excluded_account_ids
    assert {inv.account_id for inv in result.emitted} == in_scope
    assert result.summary.accounts_by_outcome[AccountOutcome.SYNCED] == len(org.synced_account_ids)
    assert result.summary.accounts_by_outcome[AccountOutcome.SUSPENDED] == 1
    assert result.summary.excluded_accounts == len(org.excluded_account_ids)
    # Several pages of ListAccounts; the CallCounter counts each page as one call.
    pages = connector.calls.counts()[("organizations", "ListAccounts")]
    assert pages >= math.ceil(len(org.accounts) / PAGE_SIZE) > 1
