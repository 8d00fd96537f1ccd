"""A running sync's progress in the API (issue 19 item 5): the connector reports how many
accounts it will read once it has walked the organization, each batch moves accounts done and
resources seen, and the integration (``current_sync``) and the run itself show them while the
sync runs. Through the connector protocol over HTTP, step by step: no timing."""

from __future__ import annotations

from typing import Any

from tests.fixtures.api import Api
from tests.integrations.connector_driver import Driver, account


def _post(d: Driver, job: dict[str, Any], what: str, body: dict[str, Any]) -> Any:
    return d.api.client.post(
        f"/api/v1/connectors/{d.connector_id}/jobs/{job['id']}/{what}",
        json={"lease_id": job["lease_id"], **body},
        headers=d.headers,
    )


def _current(d: Driver) -> dict[str, Any]:
    current = d.status()["current_sync"]
    assert current is not None, "no sync is running"
    return dict(current)


def _progress(run: dict[str, Any]) -> tuple[Any, ...]:
    return (run["state"], run["accounts_done"], run["accounts_total"], run["resources_seen"])


def test_progress_is_visible_while_the_sync_runs(api: Api) -> None:
    d = Driver(api)
    d.create()
    d.verify_ok()
    job = d.lease("sync")
    assert _progress(_current(d)) == ("running", 0, None, 0)  # walking the organization

    r = _post(d, job, "sync-progress", {"accounts_total": 3})
    assert r.status_code == 200, r.text
    assert r.json() == {"accounts_done": 0, "accounts_total": 3, "resources_seen": 0}
    assert _progress(_current(d)) == ("running", 0, 3, 0)

    first = account("111111111111", buckets=("a1", "a2", "a3"))
    assert _post(d, job, "sync-batch", {"account": first}).status_code == 200
    current = _current(d)
    assert _progress(current) == ("running", 1, 3, 4)
    assert current["updated_at"] is not None
    assert current["accounts"] is None  # the page polls this: progress, not every account
    # A batch delivered again (at-least-once) counts once.
    r = _post(d, job, "sync-batch", {"account": first})
    assert r.json() == {"accounts_done": 1, "accounts_total": 3, "resources_seen": 4}

    # The run on its own, progress only (what `grantflow integrations sync` polls).
    url = f"/api/v1/integrations/{d.integration_id}/syncs/{current['id']}"
    lean = api.client.get(url, params={"accounts": "false"}, headers=d.admin).json()
    assert _progress(lean) == ("running", 1, 3, 4) and lean["accounts"] is None
    full = api.client.get(url, headers=d.admin).json()
    assert set(full["accounts"]) == {"111111111111"}

    assert _post(d, job, "sync-batch", {"account": account("222222222222")}).status_code == 200
    assert _progress(_current(d)) == ("running", 2, 3, 5)
    assert _post(d, job, "sync-batch", {"account": account("333333333333")}).status_code == 200
    d.complete(job, {"organization_id": "o-abc1234567", "management_account_id": "123456789012",
                     "root_id": "r-ab12", "accounts_total": 3,
                     "accounts_by_outcome": {"synced": 3}, "resources_by_type": {},
                     "aws_calls": 1, "duration_seconds": 0.1})  # fmt: skip
    status = d.status()
    assert status["current_sync"] is None
    assert _progress(status["last_sync"]) == ("succeeded", 3, 3, 6)


def test_progress_reports_are_checked(api: Api) -> None:
    d = Driver(api)
    d.create()
    d.verify_ok()
    job = d.lease("sync")
    r = _post(d, job, "sync-progress", {"accounts_total": -1})
    assert (r.status_code, r.json()["error"]["field"]) == (422, "accounts_total")
    stale = {**job, "lease_id": "not-the-lease"}
    assert _post(d, stale, "sync-progress", {"accounts_total": 3}).status_code == 409
    other = {"Authorization": "Bearer gf_con_not-a-token"}
    r = api.client.post(
        f"/api/v1/connectors/{d.connector_id}/jobs/{job['id']}/sync-progress",
        json={"lease_id": job["lease_id"], "accounts_total": 3},
        headers=other,
    )
    assert r.status_code == 401
    url = f"/api/v1/integrations/{d.integration_id}/syncs/no-such-run"
    r = api.client.get(url, headers=d.admin)
    assert r.status_code == 404
