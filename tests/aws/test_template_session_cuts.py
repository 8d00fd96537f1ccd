"""The template's opt-in for session cuts on the organization's own permission sets: off by
default; on, exactly the three writes a cut needs, on assignable permission sets only
(deployed into moto and read back from IAM)."""

from __future__ import annotations

from grantflow.aws import cloudformation
from grantflow.demo.moto_server import MotoServer
from tests.aws.test_cloudformation import (
    CONNECTOR_ID,
    CONNECTOR_ROLE_ARN,
    _attached_policies,
    _deploy,
    _organization,
    _session,
)


def test_session_cuts_on_own_permission_sets_are_off_by_default(aws: MotoServer) -> None:
    session = _session()
    _deploy(session, _organization(session)["ou"])
    assert "GrantflowSessionCuts" not in _attached_policies(session)


def test_opted_in_the_template_allows_exactly_the_cuts_writes_on_assignable_sets(
    aws: MotoServer,
) -> None:
    session = _session()
    _deploy(session, _organization(session)["ou"], SessionCutsOnAssignablePermissionSets="true")
    documents = _attached_policies(session)
    (statement,) = documents["GrantflowSessionCuts"]["Statement"]
    assert statement == {
        "Sid": "CutSessionsOnAssignablePermissionSets",
        "Effect": "Allow",
        "Action": [
            "sso:DeleteInlinePolicyFromPermissionSet",
            "sso:ProvisionPermissionSet",
            "sso:PutInlinePolicyToPermissionSet",
        ],
        "Resource": "arn:aws:sso:::permissionSet/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/grantflow:assignable": "true"}},
    }
    # the grant policy still changes only Grantflow's own (managed) permission sets
    grants = documents["GrantflowGrants"]["Statement"]
    change = next(s for s in grants if s["Sid"] == "ChangeGrantflowPermissionSets")
    assert change["Condition"] == {"StringEquals": {"aws:ResourceTag/grantflow:managed": "true"}}


def test_the_deploy_command_carries_the_opt_in_only_when_asked() -> None:
    plain = cloudformation.deploy_command(CONNECTOR_ID, CONNECTOR_ROLE_ARN, "r-abcd")
    assert cloudformation.SESSION_CUTS not in plain
    scope = cloudformation.GrantScope(session_cuts=True)
    opted = cloudformation.deploy_command(CONNECTOR_ID, CONNECTOR_ROLE_ARN, "r-abcd", scope=scope)
    assert "SessionCutsOnAssignablePermissionSets=true" in opted
