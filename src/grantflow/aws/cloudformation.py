"""The management-account CloudFormation template, generated from the resource registry.

The template creates:

* ``GrantflowManagementRole``: only ``ConnectorRoleArn`` may assume it, and only with
  ``sts:ExternalId`` equal to ``ConnectorId``;
* a discovery policy and a grant policy on that role, built from :mod:`grantflow.aws.registry`
  (no ``*`` actions, nothing from IAM beyond what discovery reads). Grants are scoped to what
  the integration may grant: account assignments to permission sets tagged
  ``grantflow:managed=true`` (Grantflow's pooled sets, the only ones it may create or change) or
  ``grantflow:assignable=true`` (a customer's set an admin opted in); group memberships to the
  groups listed in ``GrantableGroupIds`` (a separate policy, absent when none are listed);
* unless ``AllowManagementAccountAssignments`` is ``true``, a policy that denies assigning and
  provisioning permission sets in the management account (the account of the stack);
* a service-managed StackSet that puts the read-only ``GrantflowMemberRole`` into every
  account under ``OrganizationalUnitId``, trusting only the management role.

Deploying a service-managed StackSet needs trusted access between CloudFormation StackSets and
AWS Organizations, and it never deploys into the management account itself.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import yaml

from grantflow.aws import registry
from grantflow.aws.registry import GrantMechanism, OperationKind

CONNECTOR_ID_PATTERN = r"^gfc-[a-z0-9]{20}$"
ROLE_ARN_PATTERN = r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
AUDIT_BUCKET_PATTERN = r"^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
AUDIT_BUCKET = "AuditBucketName"  # the organization trail's bucket; Enable Audit needs it
OU_ID_PATTERN = r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$"
# Identity Store group ids (GrantableGroupIds): a GUID, optionally after 10 hex digits and "-"
GROUP_ID_PATTERN = (
    r"^([0-9a-f]{10}-)?[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$"
)
GRANTABLE_GROUPS = "GrantableGroupIds"
ALLOW_MANAGEMENT_ACCOUNT = "AllowManagementAccountAssignments"
SESSION_CUTS = "SessionCutsOnAssignablePermissionSets"
# Ending a revoked user's sessions on a customer's own (assignable) permission set: write its
# inline policy (the cut's deny statement) and provision it; reads are granted already.
SESSION_CUT_ACTIONS = frozenset(
    {
        "sso:PutInlinePolicyToPermissionSet",
        "sso:DeleteInlinePolicyFromPermissionSet",
        "sso:ProvisionPermissionSet",
    }
)
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


def _grant_actions(mechanism: GrantMechanism) -> frozenset[str]:
    return _actions(mechanism, OperationKind.GRANT)


def _tagged(key: str, value: str) -> Json:
    return {"StringEquals": {f"aws:ResourceTag/{key}": value}}


def _identity_center_statements() -> list[Json]:
    # An account assignment (and provisioning) authorizes three resources at once: the
    # instance, the permission set and the account; each must be allowed by some statement.
    # Only the permission set supports a condition key (aws:ResourceTag); the account resource
    # supports none, the instance carries no tag of ours. So the permission set is the gate:
    # the connector may assign a permission set only when it carries grantflow:managed=true
    # (Grantflow's pooled sets) or grantflow:assignable=true (a customer's set an admin opted
    # in), and may change (inline policy, provision, delete) only the managed ones.
    # sso:TagResource is deliberately NOT granted, and CreatePermissionSet requires exactly the
    # managed tag on the request: the connector cannot tag a customer's permission set to take
    # it over, nor create one that claims to be the customer's. AWS offers no condition key on
    # the content of an inline policy: a Grantflow permission set may hold any inline policy;
    # writing them is the pooled feature. The management account is excluded separately
    # (_management_account_guard).
    pooled = registry.POOLED_PERMISSION_SET
    assign = _grant_actions(registry.ACCOUNT_ASSIGNMENT)
    writes = _actions(pooled, OperationKind.WRITE)
    managed = (registry.MANAGED_TAG_KEY, registry.MANAGED_TAG_VALUE)
    assignable = (registry.ASSIGNABLE_TAG_KEY, registry.ASSIGNABLE_TAG_VALUE)
    return [
        _statement(
            "ReadIdentityCenter",
            _actions(pooled, OperationKind.READ),
            [_sub(_SSO_INSTANCE), _sub(_SSO_PERMISSION_SET), _sub(_SSO_ACCOUNT)],
        ),
        _statement(
            "AssignGrantflowPermissionSets",
            assign,
            _sub(_SSO_PERMISSION_SET),
            Condition=_tagged(*managed),
        ),
        _statement(
            "AssignAssignablePermissionSets",
            assign,
            _sub(_SSO_PERMISSION_SET),
            Condition=_tagged(*assignable),
        ),
        _statement(
            "CreateGrantflowPermissionSets",
            _actions(pooled, OperationKind.CREATE),
            [_sub(_SSO_INSTANCE), _sub(_SSO_PERMISSION_SET)],
            Condition={
                "StringEquals": {_REQUEST_TAG: registry.MANAGED_TAG_VALUE},
                "ForAllValues:StringEquals": {"aws:TagKeys": [registry.MANAGED_TAG_KEY]},
            },
        ),
        _statement(
            "ChangeGrantflowPermissionSets",
            writes,
            _sub(_SSO_PERMISSION_SET),
            Condition=_tagged(*managed),
        ),
        _statement(
            "InstanceAndAccountsOfTaggedPermissionSets",
            assign | writes,
            [_sub(_SSO_INSTANCE), _sub(_SSO_ACCOUNT)],
        ),
    ]


def _session_cut_policy() -> Json:
    """With SessionCutsOnAssignablePermissionSets: the cut's writes on the customer's
    assignable permission sets (the instance and account resources of these actions are
    allowed by InstanceAndAccountsOfTaggedPermissionSets; the management account stays
    guarded by ManagementAccountGuard)."""
    assignable = (registry.ASSIGNABLE_TAG_KEY, registry.ASSIGNABLE_TAG_VALUE)
    assert _actions(registry.POOLED_PERMISSION_SET, OperationKind.WRITE) >= SESSION_CUT_ACTIONS
    return _policy(
        _statement(
            "CutSessionsOnAssignablePermissionSets",
            SESSION_CUT_ACTIONS,
            _sub(_SSO_PERMISSION_SET),
            Condition=_tagged(*assignable),
        )
    )


def _identity_store_arns(*kinds: str) -> list[Json]:
    arns = {
        "identitystore": f"arn:{_PARTITION}:identitystore::${{AWS::AccountId}}:identitystore/*",
        "user": f"arn:{_PARTITION}:identitystore:::user/*",
        "membership": f"arn:{_PARTITION}:identitystore:::membership/*",
        "group": f"arn:{_PARTITION}:identitystore:::group/*",
    }
    return [_sub(arns[kind]) for kind in kinds]


def _grant_statements() -> list[Json]:
    reads = _actions(registry.GROUP_MEMBERSHIP, OperationKind.READ)
    return [
        *_identity_center_statements(),
        _statement(
            "ReadGroupMemberships",
            reads,
            _identity_store_arns("identitystore", "group", "user", "membership"),
        ),
    ]


# Fn::Join takes no function as its delimiter, so the partition of the group ARNs is spelt out
# per partition that has an Identity Store (conditions InChina, InGovCloud).
_PARTITIONS = (("InChina", "aws-cn"), ("InGovCloud", "aws-us-gov"))
_DEFAULT_PARTITION = "aws"


def _listed_group_arns(partition: str) -> Json:
    """``arn:<partition>:identitystore:::group/<id>`` for each id of GrantableGroupIds."""
    prefix = f"arn:{partition}:identitystore:::group/"
    joined = {"Fn::Join": [f",{prefix}", {"Ref": GRANTABLE_GROUPS}]}
    return {"Fn::Split": [",", {"Fn::Join": ["", [prefix, joined]]}]}


def _listed_groups() -> Json:
    arns: Json = _listed_group_arns(_DEFAULT_PARTITION)
    for condition, partition in reversed(_PARTITIONS):
        arns = {"Fn::If": [condition, _listed_group_arns(partition), arns]}
    return arns


def _group_membership_policy() -> Json:
    """Add and remove members of the groups listed in GrantableGroupIds, and of no other.

    Identity Store groups carry no tags and Create/DeleteGroupMembership offer no condition
    key on the group, but they authorize the Group resource by its ARN
    (``arn:…:identitystore:::group/<GroupId>``) besides the identity store, the user and (to
    delete) the membership. As with account assignments each resource must be allowed by some
    statement: the listed groups are the gate."""
    actions = _grant_actions(registry.GROUP_MEMBERSHIP)
    return _policy(
        _statement("ListedGroupsOnly", actions, _listed_groups()),
        _statement(
            "StoreUsersAndMembershipsOfListedGroups",
            actions,
            _identity_store_arns("identitystore", "user", "membership"),
        ),
    )


def _management_account_guard() -> Json:
    """Deny assigning or provisioning in this (the management) account, whatever is tagged.

    The stack is deployed in the Organization's management account, so ``AWS::AccountId`` is
    its id. DeleteAccountAssignment stays allowed: a grant made while an admin allowed the
    management account can still be revoked after the admin turned it off."""
    actions = frozenset(
        {
            registry.operation_to_action("sso-admin", "CreateAccountAssignment"),
            registry.operation_to_action("sso-admin", "ProvisionPermissionSet"),
        }
    )
    statement = _statement(
        "NoGrantsInTheManagementAccount",
        actions,
        _sub(f"arn:{_PARTITION}:sso:::account/${{AWS::AccountId}}"),
    )
    return _policy({**statement, "Effect": "Deny"})


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
        GRANTABLE_GROUPS: {
            "Type": "CommaDelimitedList",
            "Default": "",
            "AllowedPattern": f"^$|{GROUP_ID_PATTERN}",
            "ConstraintDescription": "Identity Store group ids, separated by commas",
            "Description": "Identity Center groups whose membership Grantflow may grant and "
            "revoke (group ids; empty: no group grants)",
        },
        ALLOW_MANAGEMENT_ACCOUNT: {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["false", "true"],
            "Description": "Whether Grantflow may assign permission sets in the management "
            "account itself (false: denied, whatever the permission set)",
        },
        SESSION_CUTS: {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["false", "true"],
            "Description": "Whether Grantflow may end revoked users' sessions on your "
            "assignable permission sets (writes their inline policy and provisions them; "
            "Grantflow's own permission sets always allow it)",
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
                {
                    "Label": {"default": "What Grantflow may grant"},
                    "Parameters": [GRANTABLE_GROUPS, ALLOW_MANAGEMENT_ACCOUNT, SESSION_CUTS],
                },
            ],
            "ParameterLabels": {
                "ConnectorId": {"default": "Connector ID"},
                "ConnectorRoleArn": {"default": "Connector role ARN"},
                "OrganizationalUnitId": {"default": "Organizational unit or root ID"},
                GRANTABLE_GROUPS: {"default": "Groups Grantflow may grant"},
                ALLOW_MANAGEMENT_ACCOUNT: {"default": "Allow grants in the management account"},
                SESSION_CUTS: {"default": "End sessions on your permission sets at revocation"},
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
            "HasAuditBucket": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AuditBucketName"}, ""]}]},
            "HasGrantableGroups": {
                "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": GRANTABLE_GROUPS}]}, ""]}]
            },
            **{
                condition: {"Fn::Equals": [{"Ref": "AWS::Partition"}, partition]}
                for condition, partition in _PARTITIONS
            },
            "ExcludeManagementAccount": {
                "Fn::Equals": [{"Ref": ALLOW_MANAGEMENT_ACCOUNT}, "false"]
            },
            "CutsSessionsOnAssignable": {"Fn::Equals": [{"Ref": SESSION_CUTS}, "true"]},
        },
        "Resources": {
            "ManagementRole": _management_role(),
            "DiscoveryPolicy": _managed_policy(
                "GrantflowDiscovery", "Grantflow discovery (read only)", _discovery_policy()
            ),
            "GrantPolicy": _managed_policy(
                "GrantflowGrants",
                "Grantflow grants through Identity Center (tagged permission sets only)",
                _policy(*_grant_statements()),
            ),
            "GroupMembershipPolicy": {
                **_managed_policy(
                    "GrantflowGroupMemberships",
                    "Grantflow group grants: members of the listed groups only",
                    _group_membership_policy(),
                ),
                "Condition": "HasGrantableGroups",
            },
            "ManagementAccountGuard": {
                **_managed_policy(
                    "GrantflowNotInManagementAccount",
                    "Grantflow never assigns permission sets in the management account",
                    _management_account_guard(),
                ),
                "Condition": "ExcludeManagementAccount",
            },
            "SessionCutPolicy": {
                **_managed_policy(
                    "GrantflowSessionCuts",
                    "Grantflow ends revoked users' sessions on assignable permission sets",
                    _session_cut_policy(),
                ),
                "Condition": "CutsSessionsOnAssignable",
            },
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


@dataclass(frozen=True)
class GrantScope:
    """What the stack lets Grantflow grant beyond tagged permission sets (template parameters).

    ``group_ids``: the Identity Center groups whose membership Grantflow may grant
    (GrantableGroupIds); ``allow_management_account``: whether permission sets may be assigned
    in the management account (AllowManagementAccountAssignments). The defaults, no groups and
    not the management account, are left out of the deploy command and the console link."""

    group_ids: tuple[str, ...] = ()
    allow_management_account: bool = False
    session_cuts: bool = False  # SessionCutsOnAssignablePermissionSets

    def values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.group_ids:
            ids = [_check(g, GROUP_ID_PATTERN, GRANTABLE_GROUPS) for g in self.group_ids]
            values[GRANTABLE_GROUPS] = ",".join(sorted(set(ids)))
        if self.allow_management_account:
            values[ALLOW_MANAGEMENT_ACCOUNT] = "true"
        if self.session_cuts:
            values[SESSION_CUTS] = "true"
        return values


def _parameter_values(
    connector_id: str, connector_role_arn: str | None, ou_id: str, scope: GrantScope | None,
    audit_bucket: str | None = None,
) -> dict[str, str]:  # fmt: skip
    role = (
        ROLE_ARN_PLACEHOLDER
        if connector_role_arn is None
        else _check(connector_role_arn, ROLE_ARN_PATTERN, "ConnectorRoleArn")
    )
    bucket = {} if audit_bucket is None else {
        AUDIT_BUCKET: _check(audit_bucket, AUDIT_BUCKET_PATTERN, AUDIT_BUCKET)
    }  # fmt: skip
    return {
        "ConnectorId": _check(connector_id, CONNECTOR_ID_PATTERN, "ConnectorId"),
        "ConnectorRoleArn": role,
        "OrganizationalUnitId": _check(ou_id, OU_ID_PATTERN, "OrganizationalUnitId"),
        **bucket,
        **(scope or GrantScope()).values(),
    }


def deploy_command(
    connector_id: str,
    connector_role_arn: str | None,
    ou_id: str,
    stack_name: str = "grantflow",
    *,
    scope: GrantScope | None = None,
    audit_bucket: str = "",
) -> str:
    """The ``aws cloudformation deploy`` line for the template saved as ``TEMPLATE_FILE``.

    ``connector_role_arn`` is the role an admin confirmed; without one the line carries
    ``ROLE_ARN_PLACEHOLDER``, which the parameter's AllowedPattern rejects if run as is.
    ``AuditBucketName`` is always on the line (``''``: no session audit), so whoever turns
    on Enable Audit sees where the organization trail bucket goes."""
    values = _parameter_values(connector_id, connector_role_arn, ou_id, scope, audit_bucket)
    overrides = " ".join(
        shlex.quote(f"{key}={value}") if value else f"{key}=''" for key, value in values.items()
    )
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
    *,
    scope: GrantScope | None = None,
    audit_bucket: str = "",
) -> str:
    """The console link that opens the quick-create page with every parameter filled in."""
    values = _parameter_values(connector_id, connector_role_arn, ou_id, scope,
                               audit_bucket or None)  # fmt: skip
    query = {"templateURL": template_url, "stackName": stack_name}
    query.update({f"param_{key}": value for key, value in values.items()})
    return (
        f"https://console.aws.amazon.com/cloudformation/home?region={quote(region, safe='')}"
        f"#/stacks/quickcreate?{urlencode(query)}"
    )
