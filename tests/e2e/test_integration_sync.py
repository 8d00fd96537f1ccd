"""Connect the emulated organization through the API and let the managed connector sync it."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.conftest import Deployed

pytestmark = pytest.mark.slow

TYPE_NAMES = {
    "iam_role": "iam-role", "s3_bucket": "s3-bucket", "ec2_instance": "ec2-instance",
    "rds_instance": "rds-instance", "rds_cluster": "rds-cluster",
}  # fmt: skip


def _expected(d: Deployed) -> Counter[str]:
    synced = d.org.synced_account_ids
    counts: Counter[str] = Counter()
    for resource in d.org.resources:
        if resource.account_id in synced:
            counts[TYPE_NAMES[str(resource.type.value)]] += 1
    counts["aws-account"] = len(
        [a for a in d.org.accounts if a.id not in d.org.excluded_account_ids]
    )
    counts["identity-center-group"] = len(d.org.groups)
    # The connector's own role lives in the management account (where moto's stack set also
    # put the member role): like Grantflow's other roles, it is never offered (issue 17).
    return counts


@pytest.mark.both_backends
def test_new_integration_becomes_active_with_everything_synced(deployed: Deployed) -> None:
    created = deployed.create_integration()
    assert created["status"] == "initializing"
    done = deployed.wait_status(created["id"], {"active", "warning", "error"})
    assert done["status"] == "active", done["status_message"]
    assert Counter(done["counts"]) == _expected(deployed)
    with deployed.admin() as c:
        excluded = deployed.org.excluded_account_ids
        for account in excluded:
            r = c.get("/api/v1/resources", params={"account": account}).json()
            assert r["total"] == 0
        roles = c.get("/api/v1/resources", params={"type": "iam-role", "limit": 200}).json()
        assert "grantflow-connector" not in {r["name"] for r in roles["items"]}
        history = c.get(f"/api/v1/integrations/{created['id']}/syncs").json()
        assert history[0]["state"] == "succeeded"
        assert history[0]["aws_calls"] > 0
