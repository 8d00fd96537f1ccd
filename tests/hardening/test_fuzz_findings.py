"""Regressions for what the fuzzer (test_fuzz_api.py) found, each pinned on its own."""

from __future__ import annotations

import pytest

from tests.fixtures.api import Api
from tests.fixtures.seed import seed_world

INTEGRATION_FIELDS = ("name", "connector_id", "resource_types", "config")
FLOW_FIELDS = ("name", "description", "enabled", "definition")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_patch_with_null_is_a_validation_error_not_a_500(api: Api) -> None:
    """PATCH {"name": null} on an integration or a flow wrote NULL into a NOT NULL column (or
    called a method on None) and answered 500; it is now 422 naming the field, nothing changes."""
    ids = seed_world(api.client.app).ids  # type: ignore[arg-type]
    cells = [(f"/api/v1/integrations/{ids['integration_id']}", f) for f in INTEGRATION_FIELDS]
    cells += [(f"/api/v1/access-flows/{ids['flow_id']}", f) for f in FLOW_FIELDS]
    for path, name in cells:
        before = api.client.get(path, headers=api.as_admin()).json()
        r = api.client.patch(path, json={name: None}, headers=api.as_admin())
        assert (r.status_code, r.json()["error"]["field"]) == (422, name), (path, r.text)
        assert api.client.get(path, headers=api.as_admin()).json() == before
    # What stays nullable still works: no sync schedule.
    r = api.client.patch(cells[0][0], json={"sync_interval_seconds": None}, headers=api.as_admin())
    assert r.status_code == 200 and r.json()["sync_interval_seconds"] is None


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_patch_schemas_do_not_offer_null_where_it_is_refused(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    offered = {
        (model, name)
        for model, fields in (
            ("IntegrationUpdate", INTEGRATION_FIELDS),
            ("FlowUpdate", FLOW_FIELDS),
        )
        for name in fields
        if "null" in str(schemas[model]["properties"][name])
    }
    assert offered == set()
    assert "null" in str(schemas["IntegrationUpdate"]["properties"]["sync_interval_seconds"])


HUGE = 10**20  # larger than any 64-bit integer


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_huge_offsets_and_cursors_are_refused_not_a_500(api: Api) -> None:
    """GET /api/v1/groups?offset=10**20 reached SQLite as an int it cannot hold (OverflowError,
    500). Every list endpoint's offset, and the audit cursor, is now bounded: 422."""
    paths = [
        "/api/v1/groups?offset={n}", "/api/v1/users?offset={n}", "/api/v1/resources?offset={n}",
        "/api/v1/requestable?offset={n}", "/api/v1/audit-events?before={n}",
        "/api/v1/notifications?offset={n}",
    ]  # fmt: skip
    for path in paths:
        r = api.client.get(path.format(n=HUGE), headers=api.as_admin())
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert api.client.get(path.format(n=1000), headers=api.as_admin()).status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_operation_ids_are_unique(api: Api) -> None:
    """The SCIM catch-all route documented five operations under one operationId (FastAPI
    warned "Duplicate Operation ID"); OpenAPI requires them unique, and clients generated from
    the document break on duplicates."""
    paths = api.client.get("/openapi.json").json()["paths"]
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) > 80
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
