"""Issue 16, item 2: a connector token cannot point the template at a foreign account.

The review's stolen connector token sent a heartbeat naming
``arn:aws:iam::999999999999:role/attacker-role``, and that ARN became the template's
ConnectorRoleArn and the deploy command. Now the template trusts only a role an admin
confirmed; a changed report is audited (``connector.identity_changed``, old and new) and shown
as ``identity.state == "changed"``, and is never used. The connector page's flag is
browser-tested in tests/web/test_connector_identity_page.py.
"""

from __future__ import annotations

from typing import Any

from grantflow.aws import cloudformation
from grantflow.services.integrations.managed_connector import ensure_managed_connector
from grantflow.store.db import transaction
from grantflow.store.models import Connector
from tests.fixtures.api import Api, make_settings

OURS = "arn:aws:iam::111122223333:role/grantflow-connector"
OURS_SESSION = "arn:aws:sts::111122223333:assumed-role/grantflow-connector/i-0abc"
FOREIGN = "arn:aws:iam::999999999999:role/attacker-role"
OU = "ou-abcd-12345678"


def _connector(api: Api, name: str = "c1") -> tuple[str, dict[str, str]]:
    r = api.client.post("/api/v1/connectors", json={"name": name}, headers=api.as_admin())
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}


def _beat(api: Api, cid: str, headers: dict[str, str], arn: str | None) -> None:
    account = arn.split(":")[4] if arn else None
    body = {"version": "0.1.0", "aws_identity_arn": arn, "aws_account_id": account}
    r = api.client.post(f"/api/v1/connectors/{cid}/heartbeat", json=body, headers=headers)
    assert r.status_code == 200, r.text


def _get(api: Api, cid: str) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/connectors/{cid}", headers=api.as_admin())
    assert r.status_code == 200, r.text
    return dict(r.json())


def _template(api: Api, cid: str) -> dict[str, Any]:
    r = api.client.get(
        f"/api/v1/connectors/{cid}/cloudformation",
        params={"organizational_unit_id": OU},
        headers=api.as_admin(),
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _confirm(api: Api, cid: str, role_arn: str, headers: dict[str, str] | None = None) -> Any:
    return api.client.put(
        f"/api/v1/connectors/{cid}/confirmed-role",
        json={"role_arn": role_arn},
        headers=headers or api.as_admin(),
    )


def _events(api: Api, action: str) -> list[dict[str, Any]]:
    r = api.client.get("/api/v1/audit-events", params={"action": action}, headers=api.as_admin())
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_a_foreign_arn_in_a_heartbeat_never_reaches_the_template(api: Api) -> None:
    cid, token = _connector(api)
    _beat(api, cid, token, OURS_SESSION)
    reported = _get(api, cid)["identity"]["reported_role_arn"]
    assert reported == OURS
    assert _confirm(api, cid, reported).status_code == 200

    _beat(api, cid, token, FOREIGN)  # the stolen token

    template = _template(api, cid)
    assert template["parameters"]["ConnectorRoleArn"] == OURS
    assert template["connector_role_confirmed"] is True
    assert f"ConnectorRoleArn={OURS}" in template["deploy_command"]
    assert "999999999999" not in template["deploy_command"]
    assert any("attacker-role" in step for step in template["instructions"])  # the warning
    got = _get(api, cid)
    assert (got["connector_role_arn"], got["aws_identity_arn"]) == (OURS, FOREIGN)
    assert got["identity"]["state"] == "changed"
    assert FOREIGN in got["identity"]["message"] and OURS in got["identity"]["message"]
    (changed,) = _events(api, "connector.identity_changed")
    assert (changed["actor_type"], changed["actor_id"], changed["target_id"]) == (
        "connector",
        cid,
        cid,
    )
    assert changed["data"]["old_aws_identity_arn"] == OURS_SESSION
    assert changed["data"]["aws_identity_arn"] == FOREIGN
    assert changed["data"]["confirmed_role_arn"] == OURS
    assert changed["data"]["matches_confirmed"] is False


def test_without_a_confirmed_role_the_template_shows_a_placeholder(api: Api) -> None:
    cid, token = _connector(api)
    _beat(api, cid, token, FOREIGN)
    template = _template(api, cid)
    assert template["parameters"]["ConnectorRoleArn"] == cloudformation.ROLE_ARN_PLACEHOLDER
    assert template["connector_role_confirmed"] is False
    assert "999999999999" not in template["deploy_command"]
    assert cloudformation.ROLE_ARN_PLACEHOLDER in template["deploy_command"]
    assert "confirmed-role" in template["instructions"][0]
    got = _get(api, cid)
    assert got["connector_role_arn"] is None
    assert (got["identity"]["state"], got["identity"]["reported_role_arn"]) == (
        "unconfirmed",
        FOREIGN,
    )
    (connected,) = _events(api, "connector.connected")
    assert connected["data"]["aws_identity_arn"] == FOREIGN


def test_a_heartbeat_without_identity_does_not_hide_the_next_change(api: Api) -> None:
    cid, token = _connector(api)
    _beat(api, cid, token, OURS_SESSION)
    assert _confirm(api, cid, OURS).status_code == 200
    _beat(api, cid, token, None)
    assert _get(api, cid)["aws_identity_arn"] == OURS_SESSION  # the last known report
    _beat(api, cid, token, FOREIGN)
    assert [
        e["data"]["old_aws_identity_arn"] for e in _events(api, "connector.identity_changed")
    ] == [OURS_SESSION]
    assert _get(api, cid)["identity"]["state"] == "changed"


def test_a_new_session_of_the_same_role_is_no_identity_change(api: Api) -> None:
    cid, token = _connector(api)
    _beat(api, cid, token, OURS_SESSION)
    _beat(api, cid, token, OURS_SESSION.replace("i-0abc", "i-0def"))
    assert _events(api, "connector.identity_changed") == []
    assert _get(api, cid)["identity"]["state"] == "unconfirmed"


def test_only_an_admin_confirms_and_every_confirmation_is_audited(api: Api) -> None:
    cid, token = _connector(api)
    _beat(api, cid, token, FOREIGN)
    assert _confirm(api, cid, FOREIGN, headers=token).status_code == 403  # the connector itself
    r = _confirm(api, cid, "arn:aws:iam::12:role/x")
    assert (r.status_code, r.json()["error"]["field"]) == (422, "role_arn")
    assert _confirm(api, "gfc-nosuchconnector000000", OURS).status_code == 404
    r = _confirm(api, cid, OURS)  # set explicitly: not what the connector reports
    assert r.status_code == 200, r.text
    assert r.json()["identity"]["confirmed_by"] == "admin"
    assert r.json()["identity"]["state"] == "changed"
    (confirmed,) = _events(api, "connector.role_confirmed")
    assert confirmed["actor_type"] == "user"
    assert confirmed["data"]["role_arn"] == OURS
    assert confirmed["data"]["reported_role_arn"] == FOREIGN
    assert confirmed["data"]["matches_reported"] is False

    r = api.client.delete(f"/api/v1/connectors/{cid}/confirmed-role", headers=token)
    assert r.status_code == 403
    r = api.client.delete(f"/api/v1/connectors/{cid}/confirmed-role", headers=api.as_admin())
    assert r.status_code == 200 and r.json()["connector_role_arn"] is None
    assert [e["data"]["previous_role_arn"] for e in _events(api, "connector.role_withdrawn")] == [
        OURS
    ]
    parameters = _template(api, cid)["parameters"]
    assert parameters["ConnectorRoleArn"] == cloudformation.ROLE_ARN_PLACEHOLDER


def test_a_role_confirmed_before_the_connector_connects_is_kept(api: Api) -> None:
    cid, token = _connector(api)
    assert _confirm(api, cid, OURS).status_code == 200
    _beat(api, cid, token, OURS_SESSION)
    got = _get(api, cid)
    assert (got["identity"]["state"], got["connector_role_arn"]) == ("confirmed", OURS)
    (connected,) = _events(api, "connector.connected")
    assert connected["data"]["matches_confirmed"] is True


def test_the_managed_connectors_role_setting_is_its_confirmation(api: Api) -> None:
    ctx = api.client.app.state.ctx  # type: ignore[attr-defined]
    settings = make_settings(api.settings.database_url, connector_role_arn=OURS)
    with transaction(ctx.sessions) as session:
        cid, _token = ensure_managed_connector(session, settings)
    got = _get(api, cid)
    assert got["connector_role_arn"] == OURS
    assert got["identity"]["confirmed_by"] == "GRANTFLOW_CONNECTOR_ROLE_ARN"
    (confirmed,) = _events(api, "connector.role_confirmed")
    assert (confirmed["actor_type"], confirmed["data"]["role_arn"]) == ("system", OURS)
    with transaction(ctx.sessions) as session:  # the next start: nothing to confirm again
        ensure_managed_connector(session, settings)
        row = session.get(Connector, cid)
        assert row is not None and row.confirmed_role_arn == OURS
    assert len(_events(api, "connector.role_confirmed")) == 1
