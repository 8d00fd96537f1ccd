"""The integration's opt-in for session cuts on the organization's own permission sets: a
validated boolean, off by default, and the form (catalog → wizard) explains the trade-off."""

from __future__ import annotations

from tests.fixtures.api import Api
from tests.integrations.test_config_rules import _body, _connector

FIELD = "cut_sessions_on_own_permission_sets"


def test_the_setting_is_a_boolean_and_a_bad_value_names_the_field(api: Api) -> None:
    cid = _connector(api)
    r = api.client.post("/api/v1/integrations", json=_body(cid, **{FIELD: "sometimes"}),
                        headers=api.as_admin())  # fmt: skip
    assert (r.status_code, r.json()["error"]["field"]) == (422, f"config.{FIELD}")
    r = api.client.post("/api/v1/integrations", json=_body(cid, **{FIELD: True}),
                        headers=api.as_admin())  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["config"][FIELD] is True


def test_the_form_offers_it_off_and_explains_the_trade_off(api: Api) -> None:
    (entry,) = api.client.get("/api/v1/catalog", headers=api.as_admin()).json()
    field = {f["name"]: f for f in entry["config_fields"]}[FIELD]
    assert field["default"] is False and not field["required"] and field["step"] == "config"
    text = field["help"]
    assert "deny statement" in text and "Trade-off" in text and "provisions" in text
    assert "SessionCutsOnAssignablePermissionSets" in text
