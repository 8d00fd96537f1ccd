"""Fields the pages show so people can read them: approvers by name (request and
requestable), the integration's name on requestable items, the extensions a flow allows, and
the permissions a flow of an integration may name."""

from __future__ import annotations

from grantflow.store.db import transaction
from grantflow.store.models import Integration
from grantflow.store.types import utcnow
from tests.fixtures.api import Api
from tests.fixtures.seed import seed_world


def test_requests_and_requestable_name_the_approvers(api: Api) -> None:
    world = seed_world(api.client.app)  # type: ignore[arg-type]
    requester = {"Authorization": f"Bearer {world.tokens['requester']}"}
    r = api.client.get(f"/api/v1/access-requests/{world.ids['request_id']}", headers=requester)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["names"] for s in body["approval"]["sets"]] == [["seeded-approver"]]
    assert (body["extensions"], body["max_extensions"]) == (0, 0)

    page = api.client.get("/api/v1/requestable", headers=requester).json()
    assert {(i["integration_name"], tuple(tuple(f["approvers"]) for f in i["flows"]))
            for i in page["items"]} == {("seeded-org", (("seeded-approver",),))}  # fmt: skip


def test_permission_choices_follow_the_sync_and_are_for_admins(api: Api) -> None:
    world = seed_world(api.client.app)  # type: ignore[arg-type]
    path = f"/api/v1/access-flows/permissions?integration_id={world.ids['integration_id']}"
    before = api.client.get(path, headers=api.as_admin())
    assert before.json() == [{"resource_type": "aws-account", "names": None}]  # not synced yet
    with transaction(api.client.app.state.ctx.sessions) as session:  # type: ignore[attr-defined]
        session.get_one(Integration, world.ids["integration_id"]).last_sync_at = utcnow()
    after = api.client.get(path, headers=api.as_admin())
    assert after.json() == [{"resource_type": "aws-account", "names": ["ReadOnly"]}]
    member = {"Authorization": f"Bearer {world.tokens['member']}"}
    assert api.client.get(path, headers=member).status_code == 403
    missing = api.client.get("/api/v1/access-flows/permissions?integration_id=nope",
                             headers=api.as_admin())  # fmt: skip
    assert missing.status_code == 404
