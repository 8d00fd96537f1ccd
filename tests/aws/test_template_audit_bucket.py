"""The deploy command names AuditBucketName (issue 17, item 9): Enable Audit needs the
organization trail's bucket in the stack, and the printed command used to leave it out."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from grantflow.aws import cloudformation
from grantflow.store.db import transaction
from grantflow.store.models import Integration
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_config

CONNECTOR_ID = "gfc-" + "0123456789abcdefghij"
ROLE = "arn:aws:iam::111122223333:role/grantflow-connector"


def test_the_deploy_command_always_names_the_audit_bucket() -> None:
    empty = cloudformation.deploy_command(CONNECTOR_ID, ROLE, "r-abcd")
    assert "AuditBucketName=''" in empty  # visible, and an empty string to the shell
    filled = cloudformation.deploy_command(CONNECTOR_ID, ROLE, "r-abcd", audit_bucket="org-trail")
    assert "OrganizationalUnitId=r-abcd AuditBucketName=org-trail" in filled
    with pytest.raises(ValueError, match="AuditBucketName"):
        cloudformation.deploy_command(CONNECTOR_ID, ROLE, "r-abcd", audit_bucket="Bad;rm -rf /")


def test_the_quick_create_link_fills_the_audit_bucket_when_there_is_one() -> None:
    url = cloudformation.quick_create_url(
        "https://b.example/t.yaml", "us-east-1", CONNECTOR_ID, ROLE, "r-abcd",
        audit_bucket="org-trail",
    )  # fmt: skip
    query = parse_qs(urlsplit(url).fragment.partition("?")[2])
    assert query["param_AuditBucketName"] == ["org-trail"]


def _template(api: Api, cid: str, **params: str) -> Any:
    r = api.client.get(f"/api/v1/connectors/{cid}/cloudformation", headers=api.as_admin(),
                       params={"organizational_unit_id": "r-abcd", **params})  # fmt: skip
    return r


def test_the_template_endpoint_takes_the_bucket_or_the_one_in_use(api: Api) -> None:
    r = api.client.post("/api/v1/connectors", json={"name": "audit"}, headers=api.as_admin())
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    got = _template(api, cid).json()
    assert "AuditBucketName=''" in got["deploy_command"]
    assert got["parameters"]["AuditBucketName"] == ""
    assert any("Enable Audit needs it" in step for step in got["instructions"])
    asked = _template(api, cid, audit_bucket="my-org-trail").json()
    assert "AuditBucketName=my-org-trail" in asked["deploy_command"]
    refused = _template(api, cid, audit_bucket="Not A Bucket")
    assert refused.status_code == 422, refused.text
    sessions = api.client.app.state.ctx.sessions  # type: ignore[attr-defined]
    with transaction(sessions) as session:  # an integration of this connector audits sessions
        session.add(
            Integration(
                name="audited",
                type="aws-organization",
                connector_id=cid,
                status="active",
                resource_types=["aws-account"],
                config=integration_config(enable_audit=True, audit_bucket="trail-in-use"),
            )
        )
    again = _template(api, cid).json()  # a redeploy keeps the bucket audit already reads
    assert "AuditBucketName=trail-in-use" in again["deploy_command"]
