"""The seed's one-pass setup against an organization shaped unlike the demo, through the
connector protocol over HTTP (issue 17): owners named before the directory is known, suspended
accounts, unknown or excluded OUs, permission sets that do not exist, truthful sync counts and
partial config updates."""

from __future__ import annotations

from typing import Any

from tests.fixtures.api import Api
from tests.integrations.connector_driver import Driver, account, directory, permission_set


def test_an_identity_center_group_can_own_the_integration_before_the_first_sync(
    api: Api,
) -> None:
    d = Driver(api)
    owners = [{"kind": "group", "value": "platform"}, {"kind": "group", "value": "ghosts"}]
    r = d.create(integration_owners=owners)
    assert r.status_code == 201, r.text
    d.verify_ok()
    got = d.sync([account("111111111111")],
                 directory=directory({"platform": ["alice"]}, ["alice"]))  # fmt: skip
    # 'platform' came with the first sync; 'ghosts' names nobody: Warning, naming it.
    assert got["status"] == "warning"
    assert "'ghosts'" in got["status_message"] and "'platform'" not in got["status_message"]
    # Once the directory is known, an owner must exist to be saved.
    config = {"integration_owners": [{"kind": "group", "value": "nobody"}]}
    r = api.client.patch(f"/api/v1/integrations/{d.integration_id}", json={"config": config},
                         headers=d.admin)  # fmt: skip
    assert (r.status_code, r.json()["error"]["field"]) == (422, "config.integration_owners")
    assert "'nobody'" in r.json()["error"]["message"]


def test_config_patch_is_a_merge_patch_validated_whole(api: Api) -> None:
    d = Driver(api)
    assert d.create(exclude_ou_ids=["ou-ab12-11111111"]).status_code == 201
    url = f"/api/v1/integrations/{d.integration_id}"
    r = api.client.patch(url, json={"config": {"sync_regions": ["us-east-1", "eu-west-1"]}},
                         headers=d.admin)  # fmt: skip
    assert r.status_code == 200, r.text
    config = api.client.get(url, headers=d.admin).json()["config"]
    assert config["sync_regions"] == ["us-east-1", "eu-west-1"]
    assert config["region"] == "us-east-1" and config["exclude_ou_ids"] == ["ou-ab12-11111111"]
    # null removes an optional setting; a bad value is named by its field.
    r = api.client.patch(url, json={"config": {"exclude_ou_ids": None}}, headers=d.admin)
    assert r.status_code == 200 and r.json()["config"]["exclude_ou_ids"] == []
    r = api.client.patch(url, json={"config": {"region": "us-east-9"}}, headers=d.admin)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "config.region")
    r = api.client.patch(url, json={"config": {"management_role_arn": None}}, headers=d.admin)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "config.management_role_arn")
    r = api.client.patch(url, json={"config": None}, headers=d.admin)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "config")


def _everyone_flow(d: Driver, name: str = "all accounts") -> dict[str, Any]:
    r = d.flow(name, requestors={"everyone": True},
               scope={"resource_types": ["aws-account"], "mode": "all"},
               permissions={"aws-account": ["ReadOnly"]}, approval={"mode": "auto"})  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_suspended_accounts_are_never_requestable_and_end_what_they_held(api: Api) -> None:
    d = Driver(api)
    d.create()
    d.verify_ok()
    people = directory({}, ["alice"])
    sets = [permission_set("ReadOnly")]
    d.sync([account("111111111111"), account("222222222222"),
            account("333333333333", outcome="suspended", status="SUSPENDED")],
           directory=people, permission_sets=sets)  # fmt: skip
    _everyone_flow(d)
    alice = d.token_for("alice")
    offered = api.client.get("/api/v1/requestable", params={"type": "aws-account"},
                             headers=alice).json()  # fmt: skip
    assert {i["aws_id"] for i in offered["items"]} == {"111111111111", "222222222222"}
    accounts = d.resources("aws-account")
    r = api.client.post("/api/v1/access-requests", headers=alice,
                        json={"resource_ids": [accounts["333333333333"]],
                              "permission": "ReadOnly"})  # fmt: skip
    assert r.status_code in (403, 409, 422), r.text
    assert "SUSPENDED" in r.text
    # A request on an account that is suspended later ends at the next sync, saying why.
    r = api.client.post("/api/v1/access-requests", headers=alice,
                        json={"resource_ids": [accounts["222222222222"]],
                              "permission": "ReadOnly"})  # fmt: skip
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    assert r.json()["state"] in ("granting", "granted")
    d.resync([account("111111111111"),
              account("222222222222", outcome="suspended", status="SUSPENDED")],
             directory=people, permission_sets=sets)  # fmt: skip
    got = api.client.get(f"/api/v1/access-requests/{request_id}", headers=d.admin).json()
    assert got["state"] not in ("granting", "granted"), got
    events = api.client.get("/api/v1/audit-events", params={"request": request_id},
                            headers=d.admin).json()["items"]  # fmt: skip
    reasons = [str(e) for e in events if e["action"] == "request.revoke"]
    assert any("222222222222" in x and "SUSPENDED" in x for x in reasons), reasons


OUS = ["ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb", "ou-ab12-cccccccc"]


def test_an_unknown_exclude_ou_is_a_warning_and_flows_on_excluded_ous_warn(api: Api) -> None:
    d = Driver(api)
    d.create(exclude_ou_ids=["ou-ab12-bbbbbbbb", "ou-zzzz-zzzzzzzz"])
    payload = d.verify_ok(unknown_exclude_ou_ids=["ou-zzzz-zzzzzzzz"])
    assert payload["exclude_ou_ids"] == ["ou-ab12-bbbbbbbb", "ou-zzzz-zzzzzzzz"]
    said = d.status()  # the verify step already says so, before the first sync ends
    assert said["status"] == "initializing" and "ou-zzzz-zzzzzzzz" in said["status_message"]
    got = d.sync([account("111111111111", ou_path=("r-ab12", OUS[0]))], ou_ids=OUS,
                 permission_sets=[permission_set("ReadOnly")])  # fmt: skip
    assert got["status"] == "warning"
    assert "ou-zzzz-zzzzzzzz" in got["status_message"]
    assert "ou-ab12-bbbbbbbb" not in got["status_message"]
    r = d.flow("ous", requestors={"everyone": True},
               scope={"resource_types": ["aws-account"], "mode": "ous",
                      "ou_ids": [OUS[0], OUS[1], "ou-ab12-99999999"]},
               permissions={"aws-account": ["ReadOnly"]}, approval={"mode": "auto"})  # fmt: skip
    assert r.status_code == 201, r.text
    warnings = r.json()["warnings"]
    assert [w for w in warnings if OUS[1] in w and "excluded" in w], warnings
    assert [w for w in warnings if "ou-ab12-99999999" in w and "not an OU" in w], warnings
    assert not [w for w in warnings if OUS[0] in w], warnings
    r = d.flow("accounts", requestors={"everyone": True},
               scope={"resource_types": ["aws-account"], "mode": "accounts",
                      "account_ids": ["111111111111", "444444444444"]},
               permissions={"aws-account": ["ReadOnly"]}, approval={"mode": "auto"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert [w for w in r.json()["warnings"] if "444444444444" in w] == r.json()["warnings"]
    assert len(r.json()["warnings"]) == 1


def test_flows_offer_only_permission_sets_that_exist(api: Api) -> None:
    d = Driver(api)
    d.create()
    d.verify_ok()
    people = directory({}, ["alice"])
    d.sync([account("111111111111")], directory=people,
           permission_sets=[permission_set("ReadOnly"), permission_set("Admin")])  # fmt: skip
    r = d.flow("bad", requestors={"everyone": True},
               scope={"resource_types": ["aws-account", "s3-bucket"]},
               permissions={"aws-account": ["NoSuchPermissionSet"],
                            "s3-bucket": ["read-only"]}, approval={"mode": "auto"})  # fmt: skip
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "definition.permissions.aws-account"
    assert "NoSuchPermissionSet" in error["message"] and "Admin, ReadOnly" in error["message"]
    r = d.flow("bad level", requestors={"everyone": True},
               scope={"resource_types": ["s3-bucket"]},
               permissions={"s3-bucket": ["write-everything"]},
               approval={"mode": "auto"})  # fmt: skip
    assert (r.status_code, r.json()["error"]["field"]) == (422, "definition.permissions.s3-bucket")
    r = d.flow("good", requestors={"everyone": True},
               scope={"resource_types": ["aws-account"]},
               permissions={"aws-account": ["ReadOnly", "Admin"]},
               approval={"mode": "auto"})  # fmt: skip
    assert r.status_code == 201 and r.json()["warnings"] == [], r.text
    flow_id = r.json()["id"]
    # Admin is deleted from Identity Center: the flow warns, and no longer offers it.
    d.resync([account("111111111111")], directory=people,
             permission_sets=[permission_set("ReadOnly")])  # fmt: skip
    got = api.client.get(f"/api/v1/access-flows/{flow_id}", headers=d.admin).json()
    assert [w for w in got["warnings"] if "'Admin'" in w] == got["warnings"] != []
    alice = d.token_for("alice")
    (item,) = api.client.get("/api/v1/requestable", headers=alice).json()["items"]
    assert item["flows"][0]["permissions"] == ["ReadOnly"]
    r = api.client.post("/api/v1/access-requests", headers=alice,
                        json={"resource_ids": [item["resource_id"]],
                              "permission": "Admin"})  # fmt: skip
    assert r.status_code in (403, 409, 422), r.text


def test_a_resync_reports_created_updated_unchanged_and_removed_truthfully(api: Api) -> None:
    d = Driver(api)
    d.create(integration_owners=[{"kind": "group", "value": "platform"}],
             resource_owner={"tag_key": "owner", "attribute": "group_name"})  # fmt: skip
    d.verify_ok()
    people = directory({"platform": ["alice"]}, ["alice"])
    first = [account("111111111111", buckets=("a1", "a2", "a3"), tags={"owner": "platform"})]
    d.sync(first, directory=people)
    counts = d.history()[0]["counts"]
    assert counts == {"aws-account": {"created": 1}, "s3-bucket": {"created": 3}}, counts
    d.resync(first, directory=people)
    counts = d.history()[0]["counts"]
    assert counts == {"aws-account": {"unchanged": 1}, "s3-bucket": {"unchanged": 3}}, counts
    renamed = [account("111111111111", buckets=("a1", "a2"), tags={"owner": "data"})]
    d.resync(renamed, directory=people)
    counts = d.history()[0]["counts"]
    assert counts == {"aws-account": {"updated": 1},
                      "s3-bucket": {"unchanged": 2, "removed": 1}}, counts  # fmt: skip
