"""The connector job protocol: every job type has a payload and a result model, and each
survives the trip to JSON and back exactly as its producer wrote it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grantflow.domain import connector_jobs as cj
from grantflow.domain.connector_jobs import JobType

ROLE = "arn:aws:iam::111122223333:role/grantflow-management"
SPEC = {"kind": "account_assignment", "instance_arn": "arn:aws:sso:::instance/ssoins-1",
        "identity_store_id": "d-1", "principal_id": "u-1", "account_id": "111122223333",
        "permission_set_arn": "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
        "known_pre_existing": None}  # fmt: skip
HANDLE = {"kind": "account_assignment", "instance_arn": "arn:aws:sso:::instance/ssoins-1",
          "identity_store_id": "d-1", "principal_id": "u-1", "pre_existing": False,
          "assignment": ["111122223333", "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
                         "u-1"]}  # fmt: skip

# What each producer sends today (services/*, api/routes/connectors.py, connector/handlers.py)
PAYLOADS: dict[JobType, dict[str, Any]] = {
    JobType.VERIFY: {"integration_id": "i-1", "role_arn": ROLE, "external_id": "gfc-1",
                     "region": "us-east-1", "exclude_ou_ids": ["ou-ab12-cdef3456"]},
    JobType.PING: {"delay_seconds": 1.5},
    JobType.SYNC: {"integration_id": "i-1", "sync_run_id": "s-1", "generation": 3,
                   "management_role_arn": ROLE, "external_id": "gfc-1", "region": "us-east-1",
                   "sso_region": "us-east-1", "regions": ["us-east-1"],
                   "resource_types": ["aws_account"], "excluded_ou_ids": []},
    JobType.GRANT: {"grant_id": "g-1", "tuple_key": "t-1", "spec": SPEC,
                    "management_role_arn": ROLE, "external_id": "gfc-1"},
    JobType.REVOKE: {"grant_id": "g-1", "tuple_key": "t-1", "handle": HANDLE, "spec": SPEC,
                     "still_needed": False, "management_role_arn": ROLE, "external_id": "gfc-1"},
    JobType.PLAN: {"integration_id": "i-1", "repair": True, "management_role_arn": ROLE,
                   "external_id": "gfc-1",
                   "items": [{"grant_id": "g-1", "action": "grant", "expect": "present",
                              "spec": SPEC},
                             {"grant_id": "g-2", "action": "revoke", "expect": "absent",
                              "handle": HANDLE, "still_needed": False}]},
    JobType.AUDIT_INGEST: {"integration_id": "i-1", "bucket": "trail", "organization_id": "o-1",
                           "region": "us-east-1", "cursor": {"p/": "p/k.json.gz"},
                           "as_of": "2026-01-02T03:04:05+00:00", "management_role_arn": ROLE,
                           "external_id": "gfc-1", "max_object_bytes": 1000, "max_records": 10,
                           "matchers": [{"grant_id": "g-1", "account_id": "111122223333",
                                         "permission_set_name": "ReadOnly",
                                         "session_names": ["jane@example.com"],
                                         "start": "2026-01-01T00:00:00Z", "end": None}]},
    JobType.SESSION_CUTS: {"management_role_arn": ROLE, "external_id": "gfc-1",
                           "integration_id": "i-1", "instance_arn": "arn:aws:sso:::instance/i",
                           "identity_center_region": "us-east-1",
                           "permission_set_arn": "arn:aws:sso:::permissionSet/i/ps",
                           "cuts": [{"cut_id": "c-1", "account_id": "111122223333",
                                     "user_name": "jane", "not_before": "2026-01-02T03:04:05"}],
                           "releases": [{"cut_id": "c-2", "why": "held-again"}],
                           "accounts": ["111122223333"], "reason": "cut", "provision": "always"},
}  # fmt: skip

RESULTS: dict[JobType, dict[str, Any]] = {
    JobType.VERIFY: {"organization_id": "o-1", "management_account_id": "111122223333",
                     "management_account_email": "root@example.com",
                     "assumed_identity_arn": ROLE, "unknown_exclude_ou_ids": []},
    JobType.PING: {"connector_id": "gfc-1", "pid": 42, "version": "1.0"},
    JobType.SYNC: {"organization_id": "o-1", "management_account_id": "111122223333",
                   "root_id": "r-1", "accounts_total": 1, "accounts_by_outcome": {"synced": 1},
                   "resources_by_type": {"aws_account": 1}, "aws_calls": 3,
                   "duration_seconds": 0.5},
    JobType.GRANT: {"handle": HANDLE},
    JobType.REVOKE: {"status": "revoked", "permission_set_deleted": False, "plan": ["delete"]},
    JobType.PLAN: {"items": [{"grant_id": "g-1", "action": "grant", "pre_existing": False,
                              "steps": ["create"], "in_sync": False}]},
    JobType.AUDIT_INGEST: {"files_read": 2, "records_read": 9, "matches": [{"eventID": "e"}],
                           "cursor": {"p/": "p/k"}, "unreadable": [], "more": False},
    JobType.SESSION_CUTS: {"status": "applied", "changed": True, "session_seconds": 3600,
                           "statements": 1, "policy_chars": 200, "coalesced": False,
                           "provisioned": ["111122223333"]},
}  # fmt: skip


def test_every_job_type_has_a_payload_and_a_result_model() -> None:
    assert set(cj.PAYLOADS) == set(JobType) == set(cj.RESULTS)
    assert set(PAYLOADS) == set(JobType) == set(RESULTS)  # and this test covers each


@pytest.mark.parametrize("job_type", list(JobType))
def test_a_payload_goes_to_the_wire_and_back_unchanged(job_type: JobType) -> None:
    model = cj.parse_payload(job_type.value, PAYLOADS[job_type])
    wire = json.loads(json.dumps(cj.payload_for(job_type, model)))
    assert cj.parse_payload(job_type.value, wire) == model
    # the stored dict is exactly what the producer wrote: an older connector reads it as before
    assert wire == PAYLOADS[job_type]


@pytest.mark.parametrize("job_type", list(JobType))
def test_a_result_goes_to_the_wire_and_back_unchanged(job_type: JobType) -> None:
    model = cj.parse_result(job_type.value, RESULTS[job_type])
    wire = json.loads(json.dumps(cj.result_dump(model)))
    assert cj.parse_result(job_type.value, wire) == model
    assert set(wire) == set(RESULTS[job_type])


def test_a_payload_is_only_sent_for_its_own_job_type() -> None:
    ping = cj.PingPayload(delay_seconds=0)
    assert cj.payload_for(JobType.PING, ping) == {"delay_seconds": 0}
    with pytest.raises(TypeError, match="not the payload of a grant job"):
        cj.payload_for(JobType.GRANT, ping)


def test_a_bad_payload_names_its_field_and_reason() -> None:
    bad = {**PAYLOADS[JobType.PLAN], "items": [{"grant_id": "g", "action": "delete"}]}
    with pytest.raises(cj.BadJobData) as caught:
        cj.parse_payload("plan", bad)
    assert caught.value.field == "items.0.action"
    assert "'grant' or 'revoke'" in caught.value.reason
    with pytest.raises(cj.BadJobData, match=r"invalid grant payload: spec\b"):
        cj.parse_payload("grant", {**PAYLOADS[JobType.GRANT], "spec": {"kind": "nope"}})


def test_an_unknown_job_type_is_a_clear_error() -> None:
    with pytest.raises(cj.BadJobData, match="unknown job type 'teleport'"):
        cj.parse_payload("teleport", {})


def test_a_newer_peers_extra_keys_do_not_break_the_older_side() -> None:
    assert cj.parse_payload("ping", {"delay_seconds": 0, "priority_hint": 3}) == cj.PingPayload()
    result = cj.parse_result("verify", {**RESULTS[JobType.VERIFY], "partition": "aws"})
    assert cj.result_dump(result)["partition"] == "aws"  # kept: the audit trail records it
