"""Which regions a sync scans is said, not guessed (issue 17, item 9): an integration's answer
names them (the Connected tab shows it), and the catalog's form says an empty list scans
only Region."""

from __future__ import annotations

from typing import Any

from grantflow.store.db import transaction
from grantflow.store.models import Integration
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_config

CONFIG = integration_config(region="eu-west-1")


def _integration(api: Api, name: str, **config: Any) -> dict[str, Any]:
    r = api.client.post("/api/v1/connectors", json={"name": name}, headers=api.as_admin())
    assert r.status_code == 201, r.text
    sessions = api.client.app.state.ctx.sessions  # type: ignore[attr-defined]
    with transaction(sessions) as session:
        row = Integration(name=name, type="aws-organization", connector_id=r.json()["id"],
                          status="active", resource_types=["ec2-instance"],
                          config={**CONFIG, **config})  # fmt: skip
        session.add(row)
        session.flush()
        integration_id = row.id
    got = api.client.get(f"/api/v1/integrations/{integration_id}", headers=api.as_admin())
    assert got.status_code == 200, got.text
    return dict(got.json())


def test_without_sync_regions_only_the_region_is_scanned_and_said(api: Api) -> None:
    assert _integration(api, "one-region")["scanned_regions"] == ["eu-west-1"]
    several = _integration(api, "three", sync_regions=["us-east-1", "eu-west-1", "ap-south-1"])
    assert several["scanned_regions"] == ["us-east-1", "eu-west-1", "ap-south-1"]


def test_the_form_says_an_empty_list_scans_only_the_region(api: Api) -> None:
    r = api.client.get("/api/v1/catalog", headers=api.as_admin())
    assert r.status_code == 200, r.text
    assert "only Region is scanned" in r.text
