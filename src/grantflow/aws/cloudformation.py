"""The management-account CloudFormation template, generated from the resource registry.

The template creates:

* ``GrantflowManagementRole``: only ``ConnectorRoleArn`` may assume it, and only with
  ``sts:ExternalId`` equal to ``ConnectorId``;
* a discovery policy and a grant policy on that role, built from :mod:`grantflow.aws.registry`
  (no ``*`` actions, nothing from IAM beyond what discovery reads);
* a service-managed StackSet that puts the read-only ``GrantflowMemberRole`` into every
  account under ``OrganizationalUnitId``, trusting only the management role.

Deploying a service-managed StackSet needs trusted access between CloudFormation StackSets and
AWS Organizations, and it never deploys into the management account itself.
"""

from __future__ import annotations

import json
import re
import shlex
from urllib.parse import quote, urlencode

import yaml

from grantflow.aws import registry
from grantflow.aws.registry import GrantMechanism, OperationKind

CONNECTOR_ID_PATTERN = r"^gfc-[a-z0-9]{20}$"
ROLE_ARN_PATTERN = r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
AUDIT_BUCKET_PATTERN = r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
OU_ID_PATTERN = r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$"
# ConnectorRoleArn until an admin confirms the connector's role (never a valid role ARN)
ROLE_ARN_PLACEHOLDER = "<confirm-the-connector-role-first>"

TEMPLATE_FILE = "grantflow-management.yaml"
OUTPUT_ROLE_ARN = "ManagementAccountRoleArnOutput"
EC2_PREREQUISITE_NOTE = (
    "EC2 sessions: the connector role (ConnectorRoleArn) needs the AWS managed policy "
    "AmazonSSMManagedInstanceCore, and the instances must be managed by SSM (SSM Agent "
    "running, with an instance profile that allows it)."
)

Json = dict[str, object]
_PARTITION = "${AWS::Partition}"
_SSO_INSTANCE = f"arn:{_PARTITION}:sso:::instance/*"
_SSO_PERMISSION_SET = f"arn:{_PARTITION}:sso:::permissionSet/*"
_SSO_ACCOUNT = f"arn:{_PARTITION}:sso:::account/*"
_MANAGED_TAG = f"aws:ResourceTag/{registry.MANAGED_TAG_KEY}"
_REQUEST_TAG = f"aws:RequestTag/{registry.MANAGED_TAG_KEY}"


def _sub(text: str) -> Json:
    return {"Fn::Sub": text}


def _statement(sid: str, actions: frozenset[str], resources: object, **extra: object) -> Json:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resources,
        **extra,
    }


def _policy(*statements: Json) -> Json:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _actions(mechanism: GrantMechanism, kind: OperationKind) -> frozenset[str]:
    return frozenset(op.action for op in mechanism.operations if op.kind is kind)


def _pooled_permission_set_statements() -> list[Json]:
    # Permission set ARNs (permissionSet/ssoins-…/ps-…) carry no name, so a name prefix cannot
    # be expressed in Resource. Instead Grantflow tags every permission set it creates
    # grantflow:managed=true: CreatePermissionSet is allowed only with that tag on the request
    # (aws:RequestTag), and the writes are allowed on permission sets only when the permission
    # set already carries it (aws:ResourceTag). sso:TagResource is deliberately NOT granted,
    # so the connector cannot tag a customer's own permission set to take it over.
    # The instance and account resources of those writes carry no such tag, hence the separate
    # statement for them. AWS offers no condition key on the content of an inline policy:
    # a Grantflow permission set may hold any inline policy; that is the product's purpose.
    pooled = registry.POOLED_PERMISSION_SET
    own = set(registry.ACCOUNT_ASSIGNMENT.actions)
    reads = _actions(pooled, OperationKind.READ) - own
    writes = _actions(pooled, OperationKind.WRITE)
    tag_keys = {"ForAllValues:StringLike": {"aws:TagKeys": ["grantflow:*"]}}
    return [
        _statement(
            "CreateGrantflowPermissionSets",
            _actions(pooled, OperationKind.CREATE),
            [_sub(_SSO_INSTANCE), _sub(_SSO_PERMISSION_SET)],
            Condition={"StringEquals": {_REQUEST_TAG: registry.MANAGED_TAG_VALUE}, **tag_keys},
        ),
        _statement(
            "ChangeGrantflowPermissionSets",
            writes,
            _sub(_SSO_PERMISSION_SET),
            Condition={"StringEquals": {_MANAGED_TAG: registry.MANAGED_TAG_VALUE}},
        ),
        _statement(
            "ChangeGrantflowPermissionSetsInstanceAndAccount",
            writes,
            [_sub(_SSO_INSTANCE), _sub(_SSO_ACCOUNT)],
        ),
        _statement(
            "ReadPermissionSets",
            reads,
            [_sub(_SSO_INSTANCE), _sub(_SSO_PERMISSION_SET), _sub(_SSO_ACCOUNT)],
        ),
    ]


def _grant_statements() -> list[Json]:
    # Account assignments must work with the customer's own permission sets (the "AWS account"
    # resource type grants any of them), so they cannot be narrowed below "any permission set
    # and any account of this Identity Center instance". Group memberships are limited to the
    # identity store in this account; IAM has no way to name "only some groups" in advance.
    identity_store = [
        _sub(f"arn:{_PARTITION}:identitystore::${{AWS::AccountId}}:identitystore/*"),
        _sub(f"arn:{_PARTITION}:identitystore:::group/*"),
        _sub(f"arn:{_PARTITION}:identitystore:::user/*"),
        _sub(f"arn:{_PARTITION}:identitystore:::membership/*"),
    ]
    return [
        _statement(
            "AccountAssignments",
            registry.ACCOUNT_ASSIGNMENT.actions,
            [_sub(_SSO_INSTANCE), _sub(_SSO_PERMISSION_SET), _sub(_SSO_ACCOUNT)],
        ),
        _statement("GroupMemberships", registry.GROUP_MEMBERSHIP.actions, identity_store),
        *_pooled_permission_set_statements(),
    ]


def _discovery_policy() -> Json:
    member_role = f"arn:{_PARTITION}:iam::*:role/{registry.MEMBER_ROLE_NAME}"
    return _policy(
        _statement("Discovery", registry.management_read_actions(), "*"),
        _statement("AssumeMemberRole", registry.role_chaining_actions(), _sub(member_role)),
    )


def _trust_policy(principal: object, condition: Json | None = None) -> Json:
    statement: Json = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole",
    }
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def member_template_dict() -> Json:
    """The template the StackSet deploys into every member account."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Grantflow read-only member role (deployed by the Grantflow StackSet)",
        "Parameters": {
            "ManagementRoleArn": {
                "Type": "String",
                "AllowedPattern": ROLE_ARN_PATTERN,
                "Description": "ARN of GrantflowManagementRole in the management account",
            }
        },
        "Resources": {
            "MemberRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": registry.MEMBER_ROLE_NAME,
                    "Description": "Read-only discovery role assumed by Grantflow",
                    "MaxSessionDuration": 3600,
                    "AssumeRolePolicyDocument": _trust_policy({"Ref": "ManagementRoleArn"}),
                    "Policies": [
                        {
                            "PolicyName": "GrantflowMemberRead",
                            "PolicyDocument": _policy(
                                _statement("Discovery", registry.member_read_actions(), "*")
                            ),
                        }
                    ],
                },
            }
        },
        "Outputs": {"MemberRoleArn": {"Value": {"Fn::GetAtt": ["MemberRole", "Arn"]}}},
    }


def _parameters() -> Json:
    return {
        "ConnectorId": {
            "Type": "String",
            "AllowedPattern": CONNECTOR_ID_PATTERN,
            "ConstraintDescription": "a Grantflow connector ID: gfc- and 20 lowercase letters "
            "or digits",
            "Description": "The connector ID shown by Grantflow; used as the sts:ExternalId",
        },
        "ConnectorRoleArn": {
            "Type": "String",
            "AllowedPattern": ROLE_ARN_PATTERN,
            "ConstraintDescription": "an IAM role ARN",
            "Description": "The IAM role the Grantflow connector runs as, as an admin "
            "confirmed it in Grantflow",
        },
        "OrganizationalUnitId": {
            "Type": "String",
            "AllowedPattern": OU_ID_PATTERN,
            "ConstraintDescription": "an organization root ID (r-...) or OU ID (ou-...)",
            "Description": "Root or OU whose accounts get the read-only member role",
        },
        "AuditBucketName": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": AUDIT_BUCKET_PATTERN,
            "ConstraintDescription": "empty, or an S3 bucket name",
            "Description": "Organization trail bucket for session audit (empty: no audit)",
        },
    }


def _metadata() -> Json:
    return {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {
                    "Label": {"default": "Grantflow connector"},
                    "Parameters": ["ConnectorId", "ConnectorRoleArn"],
                },
                {
                    "Label": {"default": "Member accounts"},
                    "Parameters": ["OrganizationalUnitId"],
                },
            ],
            "ParameterLabels": {
                "ConnectorId": {"default": "Connector ID"},
                "ConnectorRoleArn": {"default": "Connector role ARN"},
                "OrganizationalUnitId": {"default": "Organizational unit or root ID"},
            },
        }
    }


def _management_role() -> Json:
    trust = _trust_policy(
        {"Ref": "ConnectorRoleArn"}, {"StringEquals": {"sts:ExternalId": {"Ref": "ConnectorId"}}}
    )
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": registry.MANAGEMENT_ROLE_NAME,
            "Description": "Assumed by the Grantflow connector to discover and grant access",
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": trust,
        },
    }


def _audit_policy() -> Json:
    """Read the trail's log files, in that one bucket only (with Enable Audit)."""
    bucket = f"arn:{_PARTITION}:s3:::${{AuditBucketName}}"
    return _policy(
        _statement("ListTrailLogs", frozenset({"s3:ListBucket"}), _sub(bucket)),
        _statement("ReadTrailLogs", frozenset({"s3:GetObject"}), _sub(bucket + "/AWSLogs/*")),
    )


def _managed_policy(name: str, description: str, document: Json) -> Json:
    return {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "ManagedPolicyName": name,
            "Description": description,
            "Roles": [{"Ref": "ManagementRole"}],
            "PolicyDocument": document,
        },
    }


def _member_stack_set() -> Json:
    return {
        "Type": "AWS::CloudFormation::StackSet",
        "Properties": {
            "StackSetName": {"Fn::Sub": "${AWS::StackName}-member-role"},
            "Description": "Grantflow read-only member role in every account of the OU",
            "PermissionModel": "SERVICE_MANAGED",
            "AutoDeployment": {"Enabled": True, "RetainStacksOnAccountRemoval": False},
            "Capabilities": ["CAPABILITY_NAMED_IAM"],
            "ManagedExecution": {"Active": True},
            "Parameters": [
                {
                    "ParameterKey": "ManagementRoleArn",
                    "ParameterValue": {"Fn::GetAtt": ["ManagementRole", "Arn"]},
                }
            ],
            "StackInstancesGroup": [
                {
                    "DeploymentTargets": {
                        "OrganizationalUnitIds": [{"Ref": "OrganizationalUnitId"}]
                    },
                    "Regions": [{"Ref": "AWS::Region"}],
                }
            ],
            "TemplateBody": member_template_body(),
        },
    }


def member_template_body() -> str:
    return json.dumps(member_template_dict(), indent=1)


def template_dict() -> Json:
    """The management-account template as a dict, in CloudFormation's JSON form."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Grantflow: cross-account access for the Grantflow connector",
        "Metadata": _metadata(),
        "Parameters": _parameters(),
        "Conditions": {
            "HasAuditBucket": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuditBucketName"}, ""]}]}
        },
        "Resources": {
            "ManagementRole": _management_role(),
            "DiscoveryPolicy": _managed_policy(
                "GrantflowDiscovery", "Grantflow discovery (read only)", _discovery_policy()
            ),
            "GrantPolicy": _managed_policy(
                "GrantflowGrants",
                "Grantflow grants through Identity Center",
                _policy(*_grant_statements()),
            ),
            "AuditPolicy": {
                **_managed_policy(
                    "GrantflowSessionAudit",
                    "Grantflow session audit: read the organization trail's log files",
                    _audit_policy(),
                ),
                "Condition": "HasAuditBucket",
            },
            "MemberRoleStackSet": _member_stack_set(),
        },
        "Outputs": {
            OUTPUT_ROLE_ARN: {
                "Description": "Give this ARN to Grantflow as the Management Account Role ARN",
                "Value": {"Fn::GetAtt": ["ManagementRole", "Arn"]},
            }
        },
    }


def render_template() -> str:
    """The template as YAML text."""
    return yaml.safe_dump(template_dict(), sort_keys=False, width=100)


def _check(value: str, pattern: str, name: str) -> str:
    if not re.fullmatch(pattern, value):
        raise ValueError(f"{name} {value!r} does not match {pattern}")
    return value


def _parameter_values(
    connector_id: str, connector_role_arn: str | None, ou_id: str
) -> dict[str, str]:
    role = (
        ROLE_ARN_PLACEHOLDER
        if connector_role_arn is None
        else _check(connector_role_arn, ROLE_ARN_PATTERN, "ConnectorRoleArn")
    )
    return {
        "ConnectorId": _check(connector_id, CONNECTOR_ID_PATTERN, "ConnectorId"),
        "ConnectorRoleArn": role,
        "OrganizationalUnitId": _check(ou_id, OU_ID_PATTERN, "OrganizationalUnitId"),
    }


def deploy_command(
    connector_id: str, connector_role_arn: str | None, ou_id: str, stack_name: str = "grantflow"
) -> str:
    """The ``aws cloudformation deploy`` line for the template saved as ``TEMPLATE_FILE``.

    ``connector_role_arn`` is the role an admin confirmed; without one the line carries
    ``ROLE_ARN_PLACEHOLDER``, which the parameter's AllowedPattern rejects if run as is."""
    values = _parameter_values(connector_id, connector_role_arn, ou_id)
    overrides = " ".join(shlex.quote(f"{key}={value}") for key, value in values.items())
    return (
        f"aws cloudformation deploy --template-file {TEMPLATE_FILE} "
        f"--stack-name {shlex.quote(stack_name)} --capabilities CAPABILITY_NAMED_IAM "
        f"--parameter-overrides {overrides}"
    )


def quick_create_url(
    template_url: str,
    region: str,
    connector_id: str,
    connector_role_arn: str,
    ou_id: str,
    stack_name: str = "grantflow",
) -> str:
    """The console link that opens the quick-create page with every parameter filled in."""
    values = _parameter_values(connector_id, connector_role_arn, ou_id)
    query = {"templateURL": template_url, "stackName": stack_name}
    query.update({f"param_{key}": value for key, value in values.items()})
    return (
        f"https://console.aws.amazon.com/cloudformation/home?region={quote(region, safe='')}"
        f"#/stacks/quickcreate?{urlencode(query)}"
    )
