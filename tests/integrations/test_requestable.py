""" "What can I request" on both backends: tag, account and OU scopes (nested OUs included),
exclusions, requestors — the SQL answer must equal the pure rule's."""

from __future__ import annotations

from typing import Any

from grantflow.services.audit.trail import SYSTEM
from grantflow.services.auth.tokens import create_personal_token
from grantflow.store.db import transaction
from grantflow.store.models import Group, GroupMembership, Resource, User
from tests.fixtures.api import Api
from tests.fixtures.integrations import integration_body

BUCKETS = [
    # name, account, OU path, tags
    ("data-1", "111111111111", ["r-ab12", "ou-ab12-aaaaaaaa"], {"owner": "data-team"}),
    (
        "data-2",
        "111111111111",
        ["r-ab12", "ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb"],
        {"owner": "data-team-old"},
    ),
    ("web-1", "222222222222", ["r-ab12", "ou-ab12-cccccccc"], {"owner": "web"}),
    ("web-2", "222222222222", ["r-ab12", "ou-ab12-cccccccc"], {}),
    ("nested", "333333333333", ["r-ab12", "ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb"], {}),
]


def _setup(api: Api) -> tuple[str, str, str]:
    cid = api.client.post("/api/v1/connectors", json={"name": "c"}, headers=api.as_admin())
    body = integration_body(cid.json()["id"], ["s3-bucket"])
    integ = api.client.post("/api/v1/integrations", json=body, headers=api.as_admin()).json()
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    with transaction(ctx.sessions) as session:
        member, team = User(username="mia", role="member"), Group(name="data")
        session.add_all([member, team])
        session.flush()
        session.add(GroupMembership(group_id=team.id, user_id=member.id))
        for name, account, ous, tags in BUCKETS:
            session.add(
                Resource(
                    integration_id=integ["id"],
                    type="s3-bucket",
                    aws_id=name,
                    name=name,
                    account_id=account,
                    region="us-east-1",
                    ou_path=ous,
                    tags=tags,
                )
            )
        token = create_personal_token(session, member, "t", SYSTEM).plaintext
        return integ["id"], team.id, token


def _flow(api: Api, integration_id: str, name: str, requestors: dict, scope: dict) -> None:
    definition: dict[str, Any] = {
        "requestors": requestors,
        "scope": {"resource_types": ["s3-bucket"], **scope},
        "permissions": {"s3-bucket": ["read-only"]},
        "approval": {"mode": "auto"},
    }
    r = api.client.post(
        "/api/v1/access-flows",
        headers=api.as_admin(),
        json={"name": name, "integration_id": integration_id, "definition": definition},
    )
    assert r.status_code == 201, r.text


def _requestable(api: Api, token: str, **params: str) -> dict[str, set[str]]:
    page = api.client.get(
        "/api/v1/requestable", params=params, headers={"Authorization": f"Bearer {token}"}
    ).json()
    return {i["name"]: {f["flow_name"] for f in i["flows"]} for i in page["items"]}


def test_scopes_exclusions_and_requestors(api: Api) -> None:
    integration_id, team_id, token = _setup(api)
    assert _requestable(api, token) == {}
    _flow(
        api,
        integration_id,
        "by tag",
        {"group_ids": [team_id]},
        {"mode": "tag", "tag": {"key": "owner", "value": "data-team"}},
    )
    _flow(
        api,
        integration_id,
        "by OU",
        {"everyone": True},
        {"mode": "ous", "ou_ids": ["ou-ab12-aaaaaaaa"], "exclude_account_ids": ["333333333333"]},
    )
    _flow(
        api,
        integration_id,
        "web account",
        {"everyone": True},
        {"mode": "accounts", "account_ids": ["222222222222"], "exclude_resource_ids": ["web-2"]},
    )
    _flow(
        api,
        integration_id,
        "not for mia",
        {"user_ids": []} | {"attribute": {"name": "department", "value": "finance"}},
        {"mode": "all"},
    )
    assert _requestable(api, token) == {
        "data-1": {"by tag", "by OU"},  # tag value matches exactly, not data-team-old
        "data-2": {"by OU"},  # nested below the OU
        "web-1": {"web account"},
    }
    assert set(_requestable(api, token, q="web")) == {"web-1"}
    assert set(_requestable(api, token, account="111111111111")) == {"data-1", "data-2"}
    assert set(_requestable(api, token, integration_id=integration_id)) == {
        "data-1", "data-2", "web-1"
    }  # fmt: skip
    assert _requestable(api, token, integration_id="00000000-0000-0000-0000-000000000000") == {}
