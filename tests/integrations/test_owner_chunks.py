"""Owners are resolved a chunk of resources at a time (issue 19 item 4: the server's memory
does not grow with the organization); every resource is still resolved, on both backends."""

from __future__ import annotations

import pytest

from grantflow.services.identity import owners
from tests.fixtures.api import Api
from tests.integrations.connector_driver import Driver, account, directory


def test_every_resource_is_resolved_across_chunks(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owners, "RESOLVE_CHUNK", 2)
    d = Driver(api)
    d.create(integration_owners=[{"kind": "group", "value": "platform"}],
             resource_owner={"tag_key": "owner", "attribute": "group_name"})  # fmt: skip
    d.verify_ok()
    org = [
        account("111111111111", buckets=("a1", "a2", "a3"), tags={"owner": "platform"}),
        account("222222222222", buckets=("b1", "b2")),
        account("333333333333", buckets=("c1",)),
    ]
    d.sync(org, directory=directory({"platform": ["alice"]}, ["alice"]))
    params = {"integration_id": d.integration_id, "limit": 200}
    page = api.client.get("/api/v1/resources", headers=d.admin, params=params).json()
    sources = {r["aws_id"]: r["attributes"].get("owner_source") for r in page["items"]}
    assert len(sources) == 9 > owners.RESOLVE_CHUNK
    assert sources.pop("111111111111") == owners.TAG_SOURCE
    assert set(sources.values()) == {owners.FALLBACK_SOURCE}
    assert all(r["owners"] for r in page["items"]), page["items"]
