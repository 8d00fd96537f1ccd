"""A SCIM token for the app under test, and headers to use it."""

from __future__ import annotations

import pytest

from tests.fixtures.api import Api

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def scim_token(api: Api) -> str:
    r = api.client.post("/api/v1/scim/tokens", json={"name": "okta"}, headers=api.as_admin())
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


@pytest.fixture
def scim_headers(scim_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {scim_token}", "Content-Type": SCIM_JSON}
