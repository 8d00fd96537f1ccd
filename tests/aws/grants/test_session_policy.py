"""Session cuts in a permission set's inline policy, against the moto server, read back with
boto3: merged with the set's own statements, provisioned, lifted, idempotent; a pooled grant
rewriting its policy keeps them; Grantflow's permission sets last one hour."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from grantflow.aws.grants import GrantSettings, apply_grant
from grantflow.aws.identity_center import IdentityCenter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session_policy import CutStatus, apply_cuts, run_job
from grantflow.domain import session_cuts as cuts
from grantflow.domain.grant_specs import PooledPermission, PooledPermissionSetSpec
from grantflow.domain.grant_specs import PooledResourceType as T
from tests.aws.grants.conftest import ACCOUNT, OTHER_ACCOUNT, Directory
from tests.domain.policy_conditions import denied

T0 = datetime(2026, 12, 3, 19, 30, 5, tzinfo=UTC)
THEIRS = {"Sid": "Theirs", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


def _ic(d: Directory, settings: GrantSettings) -> IdentityCenter:
    return IdentityCenter(factory=d.factory, instance_arn=d.instance_arn, waiter=settings.waiter)


def _policy(d: Directory, arn: str) -> str:
    found = d.sso.get_inline_policy_for_permission_set(
        InstanceArn=d.instance_arn, PermissionSetArn=arn
    )
    return str(found.get("InlinePolicy") or "")


def _provisions(d: Directory, arn: str) -> int:
    """How many times the set was provisioned: moto 5.2.5 lists a set once per
    ProvisionPermissionSet call (and ignores the target account, see test_grants.py)."""
    listed = d.sso.list_permission_sets_provisioned_to_account(
        InstanceArn=d.instance_arn, AccountId=ACCOUNT
    )
    return list(listed["PermissionSets"]).count(arn)


def test_a_cut_is_merged_read_back_lifted_and_idempotent(
    directory: Directory, settings: GrantSettings
) -> None:
    d, ic = directory, _ic(directory, settings)
    arn = d.permission_set_arn
    d.sso.put_inline_policy_to_permission_set(
        InstanceArn=d.instance_arn, PermissionSetArn=arn,
        InlinePolicy=json.dumps({"Version": "2012-10-17", "Statement": [THEIRS]}),
    )  # fmt: skip
    entry = cuts.CutEntry(ACCOUNT, T0, "alice")
    first = apply_cuts(ic, arn, [entry], [ACCOUNT])
    assert (first.status, first.changed, first.session_seconds) == (CutStatus.APPLIED, True, 3600)
    assert first.provisioned == (ACCOUNT,)
    document = json.loads(_policy(d, arn))
    assert document["Statement"][0] == THEIRS
    ours = cuts.cut_statements_of(_policy(d, arn))
    assert [s["Sid"] for s in ours] == [cuts.sid_for(ACCOUNT, T0)]
    role_session = {"aws:userid": "AROAEXAMPLE:alice", "aws:PrincipalAccount": ACCOUNT,
                    "aws:TokenIssueTime": "2026-12-03T19:00:00Z"}  # fmt: skip
    assert denied(ours, role_session)
    assert _provisions(d, arn) == 1

    again = apply_cuts(ic, arn, [entry], [ACCOUNT])
    assert not again.changed and again.provisioned == (ACCOUNT,)  # provisioned again anyway
    assert _provisions(d, arn) == 2  # (a crash may have come between the write and it)
    assert cuts.cut_statements_of(_policy(d, arn)) == ours

    lifted = apply_cuts(ic, arn, [], [ACCOUNT])
    assert lifted.changed
    assert json.loads(_policy(d, arn)) == {"Version": "2012-10-17", "Statement": [THEIRS]}


def test_a_set_without_a_policy_gets_it_deleted_when_the_last_cut_is_lifted(
    directory: Directory, settings: GrantSettings
) -> None:
    d, ic = directory, _ic(directory, settings)
    arn = d.permission_set_arn
    assert _policy(d, arn) == ""
    apply_cuts(ic, arn, [cuts.CutEntry(OTHER_ACCOUNT, T0, "bob")], [OTHER_ACCOUNT])
    assert len(cuts.cut_statements_of(_policy(d, arn))) == 1
    apply_cuts(ic, arn, [], [OTHER_ACCOUNT])
    assert _policy(d, arn) == ""


def test_a_deleted_permission_set_has_nothing_left_to_cut(
    directory: Directory, settings: GrantSettings
) -> None:
    d = directory
    arn = d.sso.create_permission_set(InstanceArn=d.instance_arn, Name="Gone")["PermissionSet"][
        "PermissionSetArn"
    ]
    d.sso.delete_permission_set(InstanceArn=d.instance_arn, PermissionSetArn=arn)
    outcome = apply_cuts(_ic(d, settings), arn, [cuts.CutEntry(ACCOUNT, T0, "a")], [ACCOUNT])
    assert outcome.status is CutStatus.PERMISSION_SET_GONE


def test_the_connector_job_applies_the_payload(
    directory: Directory, settings: GrantSettings
) -> None:
    d = directory
    payload = {
        "instance_arn": d.instance_arn,
        "permission_set_arn": d.permission_set_arn,
        "cuts": [
            {
                "cut_id": "c1",
                "account_id": ACCOUNT,
                "user_name": "carol",
                "not_before": T0.isoformat(),
            }
        ],
        "releases": [],
        "accounts": [ACCOUNT],
        "provision": "always",
    }
    result = run_job(d.factory, payload, IdentityCenterLimiter(), settings)
    assert result["status"] == "applied" and result["provisioned"] == [ACCOUNT]
    [statement] = cuts.cut_statements_of(_policy(d, d.permission_set_arn))
    assert statement["Condition"]["StringLike"] == {"aws:userid": ["*:carol"]}  # type: ignore[index]
    checked = run_job(d.factory, {**payload, "provision": "if-changed"},
                      IdentityCenterLimiter(), settings)  # fmt: skip
    assert checked["changed"] is False and checked["provisioned"] == []
    assert _provisions(d, d.permission_set_arn) == 1


def test_a_pooled_grant_rewriting_its_policy_keeps_the_cut_and_lasts_one_hour(
    directory: Directory, settings: GrantSettings, limiter: IdentityCenterLimiter
) -> None:
    d = directory

    def spec(user: str) -> PooledPermissionSetSpec:
        return PooledPermissionSetSpec(
            instance_arn=d.instance_arn, identity_store_id=d.identity_store_id,
            principal_id=user, resource_type=T.S3_BUCKET,
            resource_arn="arn:aws:s3:::payments-exports", resource_id="payments-exports",
            account_id=ACCOUNT, permission=PooledPermission.READ_ONLY,
        )  # fmt: skip

    handle = apply_grant(d.factory, spec(d.users[0]), limiter, settings=settings)
    arn = handle.permission_set_arn
    assert arn is not None
    described = d.sso.describe_permission_set(InstanceArn=d.instance_arn, PermissionSetArn=arn)
    assert described["PermissionSet"]["SessionDuration"] == "PT1H"  # Identity Center's minimum
    apply_cuts(_ic(d, settings), arn, [cuts.CutEntry(ACCOUNT, T0, "alice")], [ACCOUNT])
    # the pooled policy drifted (someone edited it): the next grant rewrites it, with the cut
    d.sso.put_inline_policy_to_permission_set(
        InstanceArn=d.instance_arn, PermissionSetArn=arn,
        InlinePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
            THEIRS, *cuts.cut_statements_of(_policy(d, arn))]}),
    )  # fmt: skip
    apply_grant(d.factory, spec(d.users[1]), limiter, settings=settings)
    sids = [s.get("Sid") for s in json.loads(_policy(d, arn))["Statement"]]
    assert "Theirs" not in sids and cuts.sid_for(ACCOUNT, T0) in sids
