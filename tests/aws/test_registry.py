"""The registry is the single source of the IAM actions; the template must match it exactly."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore import xform_name
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource

from grantflow.aws import cloudformation, registry
from grantflow.aws.registry import AccountScope, Operation, operation_to_action


def _permission_policies(template: dict[str, object]) -> list[dict[str, object]]:
    """Every permission policy document (not trust policies) in a template."""
    documents: list[dict[str, object]] = []
    resources = template["Resources"]
    assert isinstance(resources, dict)
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents.append(props["PolicyDocument"])
        for inline in props.get("Policies", []):
            documents.append(inline["PolicyDocument"])
    return documents


def _actions(template: dict[str, object]) -> set[str]:
    found: set[str] = set()
    for document in _permission_policies(template):
        for statement in document["Statement"]:  # type: ignore[attr-defined]
            actions = statement["Action"]
            found.update([actions] if isinstance(actions, str) else actions)
    return found


def _embedded_member_template() -> dict[str, object]:
    stack_set = cloudformation.template_dict()["Resources"]["MemberRoleStackSet"]  # type: ignore[index]
    return json.loads(stack_set["Properties"]["TemplateBody"])  # type: ignore[no-any-return]


def test_management_template_grants_exactly_the_management_actions() -> None:
    expected = (
        registry.management_read_actions()
        | registry.role_chaining_actions()
        | registry.session_audit_actions()
        | registry.all_grant_actions()
    )
    assert _actions(cloudformation.template_dict()) == set(expected)


def test_session_audit_reads_only_the_named_bucket() -> None:
    resource = cloudformation.template_dict()["Resources"]["AuditPolicy"]  # type: ignore[index]
    assert resource["Condition"] == "HasAuditBucket"
    for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
        assert "${AuditBucketName}" in statement["Resource"]["Fn::Sub"]


def test_member_template_grants_exactly_the_member_read_actions() -> None:
    assert _actions(_embedded_member_template()) == set(registry.member_read_actions())


def test_every_registry_action_is_in_some_template() -> None:
    granted = _actions(cloudformation.template_dict()) | _actions(_embedded_member_template())
    missing = (registry.all_read_actions() | registry.all_grant_actions()) - granted
    assert missing == set()


def test_no_wildcard_or_iam_write_actions() -> None:
    granted = _actions(cloudformation.template_dict()) | _actions(_embedded_member_template())
    assert {a for a in granted if "*" in a} == set()
    assert {a for a in granted if a.startswith("iam:")} == {"iam:ListRoles", "iam:ListRoleTags"}
    assert "AdministratorAccess" not in cloudformation.render_template()
    assert "sso:TagResource" not in granted


def test_operation_to_action_maps_known_differences() -> None:
    assert operation_to_action("sso-admin", "CreateAccountAssignment") == (
        "sso:CreateAccountAssignment"
    )
    assert operation_to_action("identitystore", "ListGroups") == "identitystore:ListGroups"
    assert operation_to_action("s3", "ListBuckets") == "s3:ListAllMyBuckets"
    assert operation_to_action("s3", "GetBucketTagging") == "s3:GetBucketTagging"
    assert operation_to_action("s3", "GetBucketLocation") == "s3:GetBucketLocation"
    assert operation_to_action("rds", "ListTagsForResource") == "rds:ListTagsForResource"
    assert operation_to_action("sts", "AssumeRole") == "sts:AssumeRole"


def test_every_operation_maps_to_a_real_iam_action() -> None:
    """Checked against the IAM action list cfn-lint ships (from the Service Authorization Ref)."""
    known = load_resource(AdditionalSpecs, "Policies.json")
    unknown = set()
    for op in registry.all_operations():
        prefix, name = operation_to_action(op.service, op.name).split(":")
        if name.lower() not in known.get(prefix, {}).get("Actions", {}):
            unknown.add((op.service, op.name))
    assert unknown == set()


@pytest.fixture(scope="module")
def botocore_operations() -> dict[str, set[str]]:
    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    )
    services = {op.service for op in registry.all_operations()}
    return {s: set(session.client(s).meta.service_model.operation_names) for s in services}


def test_every_operation_exists_in_boto3(botocore_operations: dict[str, set[str]]) -> None:
    missing = {
        (op.service, op.name)
        for op in registry.all_operations()
        if op.name not in botocore_operations[op.service]
    }
    assert missing == set()


def test_descriptors_name_real_paginators() -> None:
    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    )
    wrong = set()
    for rt in registry.REGISTRY:
        client = session.client(rt.service)
        if rt.paginator != xform_name(rt.list_operation) or not client.can_paginate(rt.paginator):
            wrong.add(rt.key)
        if Operation(rt.service, rt.list_operation) not in rt.read_operations:
            wrong.add(rt.key)
    assert wrong == set()


def test_registry_keys_and_scopes() -> None:
    keys = [rt.key for rt in registry.REGISTRY]
    assert len(keys) == len(set(keys))
    assert set(keys) == {
        "aws-account",
        "identity-center-group",
        "iam-role",
        "s3-bucket",
        "ec2-instance",
        "rds-instance",
        "rds-cluster",
    }
    scopes = {(rt.key, rt.account_scope) for rt in registry.REGISTRY}
    assert ("aws-account", AccountScope.MANAGEMENT) in scopes
    assert ("s3-bucket", AccountScope.MEMBER) in scopes
    assert registry.resource_type("s3-bucket").permissions[1].key == "read-write"
    with pytest.raises(KeyError):
        registry.resource_type("nope")


def test_unauthorized_operations_need_no_action() -> None:
    assert "sts:GetCallerIdentity" not in registry.all_read_actions()
