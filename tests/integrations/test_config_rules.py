"""Every integration config rule answers 422 naming its field; the catalog describes the form."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_body


def _connector(api: Api) -> str:
    r = api.client.post("/api/v1/connectors", json={"name": "c"}, headers=api.as_admin())
    return str(r.json()["id"])


def _body(connector_id: str, **config: Any) -> dict[str, Any]:
    return integration_body(connector_id, **{"sso_region": "eu-west-1", **config})


CASES = [
    ({"region": "us-east-9"}, "config.region"),
    ({"sso_region": "mars-1"}, "config.sso_region"),
    ({"sso_portal": "http://d-1.awsapps.com/start"}, "config.sso_portal"),
    ({"sso_portal": "not a url"}, "config.sso_portal"),
    ({"management_role_arn": "arn:aws:iam::123:role/x"}, "config.management_role_arn"),
    ({"management_role_arn": "arn:aws:iam::123456789012:user/x"}, "config.management_role_arn"),
    ({"exclude_ou_ids": ["ou-bad"]}, "config.exclude_ou_ids"),
    ({"exclude_ou_ids": ["ou-ab12-11111111", "ou-ab12-11111111"]}, "config.exclude_ou_ids"),
    ({"custom_access_details": "x" * 401}, "config.custom_access_details"),
    ({"resource_owner": {"tag_key": "owner", "attribute": "group_name"}},
     "config.resource_owner"),
    ({"enable_audit": True}, "config.audit_bucket"),
    ({"unknown_setting": 1}, "config.unknown_setting"),
]  # fmt: skip


@pytest.mark.parametrize(("config", "field"), CASES)
def test_each_rule_is_a_422_naming_the_field(api: Api, config: dict, field: str) -> None:
    r = api.client.post("/api/v1/integrations", json=_body(_connector(api), **config),
                        headers=api.as_admin())  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize("name", ["", "x" * 65, "bad/name", "émoji✓"])
def test_bad_names(api: Api, name: str) -> None:
    body = {**_body(_connector(api)), "name": name}
    r = api.client.post("/api/v1/integrations", json=body, headers=api.as_admin())
    assert (r.status_code, r.json()["error"]["field"]) == (422, "name")


def test_types_must_be_known(api: Api) -> None:
    """Owners are checked once the directory is known (tests/integrations/test_first_sync.py)."""
    cid = _connector(api)
    body = {**_body(cid), "resource_types": ["aws-account", "gcp-project"]}
    r = api.client.post("/api/v1/integrations", json=body, headers=api.as_admin())
    assert (r.status_code, r.json()["error"]["field"]) == (422, "resource_types")


def test_valid_integration_starts_initializing_and_asks_for_verify(api: Api) -> None:
    cid = _connector(api)
    r = api.client.post("/api/v1/integrations", json=_body(cid), headers=api.as_admin())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "initializing"
    jobs = api.client.get(f"/api/v1/connectors/{cid}/jobs", headers=api.as_admin()).json()
    assert [j["type"] for j in jobs] == ["verify"]
    dup = api.client.post("/api/v1/integrations", json=_body(cid), headers=api.as_admin())
    assert (dup.status_code, dup.json()["error"]["field"]) == (409, "name")


def test_disable_stops_and_enable_resumes(api: Api) -> None:
    cid = _connector(api)
    integ = api.client.post("/api/v1/integrations", json=_body(cid), headers=api.as_admin()).json()
    r = api.client.post(f"/api/v1/integrations/{integ['id']}/disable", headers=api.as_admin())
    assert r.json()["status"] == "disabled"
    r = api.client.post(f"/api/v1/integrations/{integ['id']}/sync", headers=api.as_admin())
    assert r.status_code == 409
    r = api.client.post(f"/api/v1/integrations/{integ['id']}/enable", headers=api.as_admin())
    assert r.json()["status"] == "initializing"


def test_catalog_describes_the_form(api: Api) -> None:
    (entry,) = api.client.get("/api/v1/catalog", headers=api.as_admin()).json()
    assert (entry["type"], entry["display_name"], entry["category"]) == (
        "aws-organization", "Amazon Organization", "Discovery")  # fmt: skip
    fields = {f["name"]: f for f in entry["config_fields"]}
    assert fields["sso_portal"]["label"] == "SSO Portal" and fields["sso_portal"]["required"]
    assert fields["custom_access_details"]["step"] == "more"
    assert not fields["enable_audit"]["required"] and fields["enable_audit"]["default"] is False
    types = {t["key"]: t for t in entry["resource_types"]}
    assert {p["key"] for p in types["s3-bucket"]["permissions"]} == {"read-only", "read-write"}
