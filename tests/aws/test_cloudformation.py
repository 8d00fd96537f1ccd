"""The generated template: cfn-lint clean, parameters constrained, and deployable into moto.

What moto (5.2.5) lacks, found while writing these tests:

* ``AWS::CloudFormation::StackSet`` is not supported as a *resource*: moto logs "No Moto
  CloudFormation support" and reports the resource CREATE_COMPLETE without creating anything.
  So the member template is deployed here through ``create_stack_set`` /
  ``create_stack_instances`` with the very properties the template gives the resource.
* moto's ``create_stack_instances`` resolves an OU target to the accounts directly in it and
  in its direct child OUs only (one level).
* moto does not check ``AllowedPattern`` on parameters; the patterns are tested with ``re``.
* moto does not enforce trust policies or ``sts:ExternalId`` (see test_verify.py).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from cfnlint.api import lint

from grantflow.aws import cloudformation, registry
from grantflow.demo.moto_server import MotoServer

CONNECTOR_ID = "gfc-" + "0123456789abcdefghij"
CONNECTOR_ROLE_ARN = "arn:aws:iam::111122223333:role/grantflow-connector"
GROUP_A = "a1b2c3d4-0000-4000-8000-000000000001"
GROUP_B = "9067726d9b-a1b2c3d4-0000-4000-8000-000000000002"
EXPECTATION = Path(__file__).with_name("expected_template_policy.json")
UPDATE_VARIABLE = "GRANTFLOW_UPDATE_TEMPLATE_EXPECTATION"


def _findings(template_text: str) -> list[str]:
    return [str(m) for m in lint(template_text, regions=["us-east-1"]) if m.rule.id[0] in "EW"]


def test_cfn_lint_management_template_is_clean() -> None:
    assert _findings(cloudformation.render_template()) == []


def test_cfn_lint_member_template_is_clean() -> None:
    assert _findings(cloudformation.member_template_body()) == []


def test_cfn_lint_would_catch_a_bad_action() -> None:
    """Guards the two tests above: the lint really looks at the policy actions."""
    broken = cloudformation.render_template().replace(
        "sso:ListPermissionSets", "sso:ListPermissionSetz"
    )
    assert any("W3037" in finding for finding in _findings(broken))


def _pattern(name: str) -> str:
    params = cloudformation.template_dict()["Parameters"]
    return params[name]["AllowedPattern"]  # type: ignore[index,no-any-return]


def _accepts(name: str, value: str) -> bool:
    # CloudFormation matches AllowedPattern against the whole value.
    return re.fullmatch(_pattern(name), value) is not None


def test_exported_patterns_are_the_template_patterns() -> None:
    assert _pattern("ConnectorId") == cloudformation.CONNECTOR_ID_PATTERN
    assert _pattern("ConnectorRoleArn") == cloudformation.ROLE_ARN_PATTERN
    assert _pattern("OrganizationalUnitId") == cloudformation.OU_ID_PATTERN


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("OrganizationalUnitId", "r-abcd", True),
        ("OrganizationalUnitId", "ou-abcd-12345678", True),
        ("OrganizationalUnitId", "ou-bad", False),
        ("OrganizationalUnitId", "r-abc", False),
        ("OrganizationalUnitId", "arn:aws:organizations::1:ou/o-x/ou-abcd-12345678", False),
        ("OrganizationalUnitId", "ou-abcd-12345678 ", False),
        ("ConnectorId", CONNECTOR_ID, True),
        ("ConnectorId", "gfc-ABCDEFGHIJ0123456789", False),
        ("ConnectorId", "gfc-0123456789abcdefghi", False),
        ("ConnectorId", "xyz-0123456789abcdefghij", False),
        ("ConnectorRoleArn", CONNECTOR_ROLE_ARN, True),
        ("ConnectorRoleArn", "arn:aws-us-gov:iam::111122223333:role/path/to/gf", True),
        ("ConnectorRoleArn", "arn:aws-cn:iam::111122223333:role/gf", True),
        ("ConnectorRoleArn", "arn:aws:iam::111122223333:user/alice", False),
        ("ConnectorRoleArn", "arn:aws:iam::1111:role/gf", False),
        ("ConnectorRoleArn", "arn junk", False),
    ],
)
def test_parameter_patterns(name: str, value: str, accepted: bool) -> None:
    assert _accepts(name, value) is accepted


def test_deploy_command() -> None:
    command = cloudformation.deploy_command(CONNECTOR_ID, CONNECTOR_ROLE_ARN, "r-abcd")
    assert command == (
        "aws cloudformation deploy --template-file grantflow-management.yaml "
        "--stack-name grantflow --capabilities CAPABILITY_NAMED_IAM --parameter-overrides "
        f"ConnectorId={CONNECTOR_ID} ConnectorRoleArn={CONNECTOR_ROLE_ARN} "
        "OrganizationalUnitId=r-abcd AuditBucketName=''"
    )


def test_deploy_command_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="OrganizationalUnitId"):
        cloudformation.deploy_command(CONNECTOR_ID, CONNECTOR_ROLE_ARN, "ou-bad; rm -rf /")


def test_quick_create_url() -> None:
    url = cloudformation.quick_create_url(
        "https://bucket.s3.amazonaws.com/grantflow.yaml",
        "eu-west-1",
        CONNECTOR_ID,
        CONNECTOR_ROLE_ARN,
        "ou-abcd-12345678",
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://console.aws.amazon.com/cloudformation/home"
    )
    assert parts.query == "region=eu-west-1"
    route, _, query = parts.fragment.partition("?")
    assert route == "/stacks/quickcreate"
    assert parse_qs(query) == {
        "templateURL": ["https://bucket.s3.amazonaws.com/grantflow.yaml"],
        "stackName": ["grantflow"],
        "param_ConnectorId": [CONNECTOR_ID],
        "param_ConnectorRoleArn": [CONNECTOR_ROLE_ARN],
        "param_OrganizationalUnitId": ["ou-abcd-12345678"],
    }


def test_deploy_command_carries_a_grant_scope_only_when_not_the_default() -> None:
    scope = cloudformation.GrantScope(
        group_ids=(GROUP_B, GROUP_A, GROUP_A), allow_management_account=True
    )
    command = cloudformation.deploy_command(CONNECTOR_ID, CONNECTOR_ROLE_ARN, "r-abcd", scope=scope)
    assert command.endswith(
        f"OrganizationalUnitId=r-abcd AuditBucketName='' GrantableGroupIds={GROUP_B},{GROUP_A} "
        "AllowManagementAccountAssignments=true"
    )
    default = cloudformation.deploy_command(
        CONNECTOR_ID, CONNECTOR_ROLE_ARN, "r-abcd", scope=cloudformation.GrantScope()
    )
    assert default == cloudformation.deploy_command(CONNECTOR_ID, CONNECTOR_ROLE_ARN, "r-abcd")
    url = cloudformation.quick_create_url(
        "https://b.example/t.yaml",
        "us-east-1",
        CONNECTOR_ID,
        CONNECTOR_ROLE_ARN,
        "r-abcd",
        scope=cloudformation.GrantScope(group_ids=(GROUP_A,)),
    )
    assert parse_qs(urlsplit(url).fragment.partition("?")[2])["param_GrantableGroupIds"] == [
        GROUP_A
    ]


@pytest.mark.parametrize("bad", ["*", "a1b2c3d4", f"{GROUP_A},{GROUP_B}", f"{GROUP_A} "])
def test_grant_scope_rejects_what_is_not_one_group_id(bad: str) -> None:
    with pytest.raises(ValueError, match="GrantableGroupIds"):
        cloudformation.deploy_command(
            CONNECTOR_ID,
            CONNECTOR_ROLE_ARN,
            "r-abcd",
            scope=cloudformation.GrantScope(group_ids=(bad,)),
        )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("", True), (GROUP_A, True), (GROUP_B, True), ("*", False), ("g-1", False)],
)
def test_group_id_pattern_is_checked_per_list_item(value: str, accepted: bool) -> None:
    # CloudFormation applies a CommaDelimitedList's AllowedPattern to each item.
    assert _accepts(cloudformation.GRANTABLE_GROUPS, value) is accepted


# --- the checked-in expectation of every action, resource and condition -------------------


def _policy_view(template: dict[str, Any]) -> dict[str, Any]:
    """Every policy of the template (trust and permission), keyed by resource, with the
    template condition that creates it and the conditions those refer to."""
    view: dict[str, Any] = {"Conditions": template.get("Conditions", {}), "Policies": {}}
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        entry: dict[str, Any] = {}
        if "Condition" in resource:
            entry["CreatedWhen"] = resource["Condition"]
        if "AssumeRolePolicyDocument" in props:
            entry["Trust"] = props["AssumeRolePolicyDocument"]
        if "PolicyDocument" in props:
            entry["Roles"] = props["Roles"]
            entry["Policy"] = props["PolicyDocument"]
        for inline in props.get("Policies", []):
            entry.setdefault("Inline", {})[inline["PolicyName"]] = inline["PolicyDocument"]
        if "TemplateBody" in props:
            entry["TemplateBody"] = _policy_view(json.loads(props["TemplateBody"]))
        if entry:
            view["Policies"][name] = entry
    return view


def _canonical(document: object) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def test_template_policies_match_the_checked_in_expectation() -> None:
    """Any change to an action, a resource, a condition or the trust fails here with a diff.

    A deliberate change: set GRANTFLOW_UPDATE_TEMPLATE_EXPECTATION=1, run this test once, and
    review the file's diff with the change (README: "The CloudFormation template")."""
    generated = _canonical(_policy_view(cloudformation.template_dict()))
    if os.environ.get(UPDATE_VARIABLE) == "1":
        EXPECTATION.write_text(generated)
    expected = EXPECTATION.read_text()
    if generated != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                generated.splitlines(keepends=True),
                fromfile=f"{EXPECTATION.name} (checked in)",
                tofile="generated template",
            )
        )
        pytest.fail(
            f"The template's policies drifted from {EXPECTATION.name}; if intended, rerun "
            f"with {UPDATE_VARIABLE}=1 and commit the file.\n{diff}",
            pytrace=False,
        )


def test_the_expectation_test_reports_a_drift_with_a_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the test above: one widened resource is caught and shown."""
    original = cloudformation.template_dict

    def widened() -> dict[str, object]:
        template = original()
        grants = template["Resources"]["GrantPolicy"]["Properties"]["PolicyDocument"]  # type: ignore[index]
        grants["Statement"][1].pop("Condition")
        return template

    monkeypatch.setattr(cloudformation, "template_dict", widened)
    monkeypatch.delenv(UPDATE_VARIABLE, raising=False)
    with pytest.raises(pytest.fail.Exception) as failed:
        test_template_policies_match_the_checked_in_expectation()
    message = str(failed.value)
    assert '-                "aws:ResourceTag/grantflow:managed": "true"' in message


def test_ec2_prerequisite_note() -> None:
    assert "AmazonSSMManagedInstanceCore" in cloudformation.EC2_PREREQUISITE_NOTE


# --- deployed into moto -------------------------------------------------------------------


def _session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def _organization(session: boto3.Session) -> dict[str, Any]:
    org = session.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]
    accounts = {}
    for name in ("dev", "prod", "outside"):
        status = org.create_account(AccountName=name, Email=f"{name}@example.com")
        accounts[name] = status["CreateAccountStatus"]["AccountId"]
    for name in ("dev", "prod"):
        org.move_account(
            AccountId=accounts[name], SourceParentId=root, DestinationParentId=ou["Id"]
        )
    return {"root": root, "ou": ou["Id"], "accounts": accounts}


def _deploy(session: boto3.Session, ou_id: str, **extra: str) -> dict[str, Any]:
    cfn = session.client("cloudformation")
    values = {
        "ConnectorId": CONNECTOR_ID,
        "ConnectorRoleArn": CONNECTOR_ROLE_ARN,
        "OrganizationalUnitId": ou_id,
        **extra,
    }
    cfn.create_stack(
        StackName="grantflow",
        TemplateBody=cloudformation.render_template(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
    )
    stack = cfn.describe_stacks(StackName="grantflow")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _deploy_member_stack_set(session: boto3.Session, ou_id: str, role_arn: str) -> None:
    """What the StackSet resource would do, through the API (moto lacks the resource)."""
    props = cloudformation.template_dict()["Resources"]["MemberRoleStackSet"]["Properties"]  # type: ignore[index]
    cfn = session.client("cloudformation")
    cfn.create_stack_set(
        StackSetName="grantflow-member-role",
        TemplateBody=props["TemplateBody"],
        PermissionModel=props["PermissionModel"],
        AutoDeployment=props["AutoDeployment"],
        Capabilities=props["Capabilities"],
        Parameters=[{"ParameterKey": "ManagementRoleArn", "ParameterValue": role_arn}],
    )
    cfn.create_stack_instances(
        StackSetName="grantflow-member-role",
        DeploymentTargets={"OrganizationalUnitIds": [ou_id]},
        Regions=["us-east-1"],
    )


def _iam_in(session: boto3.Session, account_id: str) -> Any:
    role = f"arn:aws:iam::{account_id}:role/{registry.MEMBER_ROLE_NAME}"
    creds = session.client("sts").assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name="us-east-1",
    ).client("iam")


def test_deploy_creates_the_management_role(aws: MotoServer) -> None:
    session = _session()
    org = _organization(session)
    outputs = _deploy(session, org["ou"])

    role = session.client("iam").get_role(RoleName=registry.MANAGEMENT_ROLE_NAME)["Role"]
    assert role["AssumeRolePolicyDocument"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": CONNECTOR_ROLE_ARN},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": CONNECTOR_ID}},
            }
        ],
    }
    assert outputs == {cloudformation.OUTPUT_ROLE_ARN: role["Arn"]}


def _attached_policies(session: boto3.Session) -> dict[str, dict[str, Any]]:
    """Name → policy document of every policy attached to the deployed management role."""
    iam = session.client("iam")
    attached = iam.list_attached_role_policies(RoleName=registry.MANAGEMENT_ROLE_NAME)
    documents: dict[str, dict[str, Any]] = {}
    for policy in attached["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)
        document = document["PolicyVersion"]["Document"]
        if isinstance(document, str):
            document = json.loads(document)
        documents[policy["PolicyName"]] = document
    return documents


def _statement_actions(documents: dict[str, dict[str, Any]]) -> set[str]:
    return {a for d in documents.values() for s in d["Statement"] for a in s["Action"]}


def test_deployed_policies_hold_the_registry_actions(aws: MotoServer) -> None:
    session = _session()
    _deploy(session, _organization(session)["ou"], GrantableGroupIds=f"{GROUP_A},{GROUP_B}")
    documents = _attached_policies(session)
    assert set(documents) == {
        "GrantflowDiscovery",
        "GrantflowGrants",
        "GrantflowGroupMemberships",
        "GrantflowNotInManagementAccount",
    }
    assert _statement_actions(documents) == set(
        registry.management_read_actions()
        | registry.role_chaining_actions()
        | registry.all_grant_actions()
    )
    listed = documents["GrantflowGroupMemberships"]["Statement"][0]
    assert listed["Resource"] == [
        f"arn:aws:identitystore:::group/{GROUP_A}",
        f"arn:aws:identitystore:::group/{GROUP_B}",
    ]
    guard = documents["GrantflowNotInManagementAccount"]["Statement"]
    account = session.client("sts").get_caller_identity()["Account"]
    assert guard == [
        {
            "Sid": "NoGrantsInTheManagementAccount",
            "Effect": "Deny",
            "Action": ["sso:CreateAccountAssignment", "sso:ProvisionPermissionSet"],
            "Resource": f"arn:aws:sso:::account/{account}",
        }
    ]


def test_by_default_no_group_grants_and_not_the_management_account(aws: MotoServer) -> None:
    session = _session()
    _deploy(session, _organization(session)["ou"])
    documents = _attached_policies(session)
    assert "GrantflowGroupMemberships" not in documents
    assert "GrantflowNotInManagementAccount" in documents
    granted = _statement_actions(documents)
    assert "identitystore:CreateGroupMembership" not in granted
    assert "identitystore:GetGroupMembershipId" in granted


def test_an_admin_may_allow_the_management_account(aws: MotoServer) -> None:
    session = _session()
    _deploy(
        session,
        _organization(session)["ou"],
        AllowManagementAccountAssignments="true",
        GrantableGroupIds=GROUP_A,
    )
    documents = _attached_policies(session)
    assert "GrantflowNotInManagementAccount" not in documents
    listed = documents["GrantflowGroupMemberships"]["Statement"][0]["Resource"]
    assert listed == [f"arn:aws:identitystore:::group/{GROUP_A}"]


def test_member_role_reaches_every_account_in_the_ou(aws: MotoServer) -> None:
    session = _session()
    org = _organization(session)
    management_role_arn = _deploy(session, org["ou"])[cloudformation.OUTPUT_ROLE_ARN]
    _deploy_member_stack_set(session, org["ou"], management_role_arn)

    for name in ("dev", "prod"):
        iam = _iam_in(session, org["accounts"][name])
        role = iam.get_role(RoleName=registry.MEMBER_ROLE_NAME)["Role"]
        assert role["Arn"] == f"arn:aws:iam::{org['accounts'][name]}:role/GrantflowMemberRole"
        statement = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement == [
            {
                "Effect": "Allow",
                "Principal": {"AWS": management_role_arn},
                "Action": "sts:AssumeRole",
            }
        ]

    outside = _iam_in(session, org["accounts"]["outside"])
    with pytest.raises(outside.exceptions.NoSuchEntityException):
        outside.get_role(RoleName=registry.MEMBER_ROLE_NAME)
