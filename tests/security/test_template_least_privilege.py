"""Whoever holds the connector's identity can grant only what the integration may grant.

moto enforces no IAM (and names permission sets with an instance ARN, corrected here), so the
grant code runs against moto while every AWS call it makes is recorded, and each call is then
evaluated against the template's policies (as a stack with the given parameters would attach
them) by tests/security/iam_policy.py, which follows the documented IAM semantics.

Regression for issue 16 item 6: the previous template allowed sso:CreateAccountAssignment on
every permission set and account (an untagged AdministratorAccess, the management account),
group memberships on every group, and permission sets created with any grantflow:* tag.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from grantflow.aws import cloudformation, registry
from grantflow.aws.grants import GrantSettings, apply_grant, apply_revoke
from grantflow.aws.identity_center import Waiter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.demo.moto_server import MotoServer
from grantflow.domain.grant_specs import (
    AccountAssignmentSpec,
    GrantSpec,
    GroupMembershipSpec,
    PooledPermission,
    PooledPermissionSetSpec,
    PooledResourceType,
)
from tests.security.iam_policy import (
    Decision,
    Request,
    Resource,
    Stack,
    UnsupportedPolicy,
    evaluate,
    role_policies,
)

MANAGEMENT = "123456789012"  # moto's account: the stack's (the management) account
MEMBER = "111122223333"
BUCKET_ARN = "arn:aws:s3:::payments-exports"
ALLOWED, IMPLICIT, EXPLICIT = Decision.ALLOWED, Decision.IMPLICIT_DENY, Decision.EXPLICIT_DENY
MANAGED = {registry.MANAGED_TAG_KEY: registry.MANAGED_TAG_VALUE}
ASSIGNABLE = {registry.ASSIGNABLE_TAG_KEY: registry.ASSIGNABLE_TAG_VALUE}


def _stack(**parameters: str) -> Stack:
    return Stack(
        parameters={
            "ConnectorId": "gfc-0123456789abcdefghij",
            "ConnectorRoleArn": "arn:aws:iam::999988887777:role/grantflow-connector",
            "OrganizationalUnitId": "r-abcd",
            **parameters,
        },
        account_id=MANAGEMENT,
    )


def _policies(**parameters: str) -> list[Any]:
    return role_policies(cloudformation.template_dict(), _stack(**parameters))


# --- recording the grant code's calls ------------------------------------------------------


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def action(self) -> str:
        return registry.operation_to_action(self.service, self.operation)


class RecordingFactory(ClientFactory):
    """A client factory that keeps every call's parameters and response, in order."""

    def __init__(self, session: boto3.Session) -> None:
        super().__init__(session)
        self.recorded: list[Call] = []

    def _new_client(self, service: str, region: str) -> BaseClient:
        client = super()._new_client(service, region)

        def before(params: dict[str, Any], model: Any, **_: Any) -> None:
            self.recorded.append(Call(service, model.name, copy.deepcopy(params)))

        def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            last = self.recorded[-1]
            assert (last.service, last.operation) == (service, model.name)
            last.response = parsed

        client.meta.events.register("provide-client-params", before)
        client.meta.events.register("after-call", after)
        return client

    def take(self) -> list[Call]:
        taken, self.recorded = self.recorded, []
        return taken


def _aws_permission_set_arn(arn: str) -> str:
    """The ARN AWS gives a permission set. moto 5.2.5 names them
    ``arn:aws:sso:::instance/ssoins-…/ps-…``; AWS (and IAM) ``…:permissionSet/ssoins-…/ps-…``."""
    prefix, _, rest = arn.partition(":::")
    kind, _, path = rest.partition("/")
    if kind == "instance" and "/ps-" in f"/{path}":
        return f"{prefix}:::permissionSet/{path}"
    return arn


@dataclass
class World:
    """What IAM would know about the resources: permission set tags, memberships."""

    permission_set_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    memberships: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → group, user

    def request(self, call: Call) -> Request:
        """The resources (and request keys) ``call`` is authorized against."""
        p, resources = call.params, []
        context: dict[str, str | tuple[str, ...]] = {}
        if "InstanceArn" in p:
            resources.append(Resource(p["InstanceArn"]))
        if "PermissionSetArn" in p:
            arn = p["PermissionSetArn"]
            tags = self.permission_set_tags.get(arn, {})
            resources.append(Resource(_aws_permission_set_arn(arn), tags))
        if call.operation == "CreatePermissionSet":
            instance_id = p["InstanceArn"].rsplit("/", 1)[1]
            resources.append(Resource(f"arn:aws:sso:::permissionSet/{instance_id}/ps-new"))
            tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
            context = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
            if tags:
                context["aws:TagKeys"] = tuple(tags)
        account = p.get("TargetId", p.get("AccountId"))
        if account is not None:
            resources.append(Resource(f"arn:aws:sso:::account/{account}"))
        if "IdentityStoreId" in p:
            store = p["IdentityStoreId"]
            resources.append(Resource(f"arn:aws:identitystore::{MANAGEMENT}:identitystore/{store}"))
        group, user = p.get("GroupId"), p.get("MemberId", {}).get("UserId")
        if "MembershipId" in p:
            resources.append(Resource(f"arn:aws:identitystore:::membership/{p['MembershipId']}"))
            group, user = self.memberships[p["MembershipId"]]
        if group is not None:
            resources.append(Resource(f"arn:aws:identitystore:::group/{group}"))
        if user is not None:
            resources.append(Resource(f"arn:aws:identitystore:::user/{user}"))
        return Request(call.action, tuple(resources) or (Resource("*"),), context)

    def learn(self, call: Call) -> None:
        p, r = call.params, call.response
        if call.operation == "CreatePermissionSet" and "PermissionSet" in r:
            tags = {t["Key"]: t["Value"] for t in p.get("Tags", [])}
            self.permission_set_tags[r["PermissionSet"]["PermissionSetArn"]] = tags
        if "MembershipId" in r and "GroupId" in p:
            self.memberships[r["MembershipId"]] = (p["GroupId"], p["MemberId"]["UserId"])


def _decisions(world: World, calls: list[Call], policies: list[Any]) -> list[tuple[str, Decision]]:
    decisions = []
    for call in calls:
        decisions.append((call.action, evaluate(policies, world.request(call))))
        world.learn(call)
    return decisions


def _writes(decisions: list[tuple[str, Decision]]) -> list[tuple[str, Decision]]:
    write_actions = {
        op.action for op in registry.all_operations() if op.kind is not registry.OperationKind.READ
    }
    return [(action, d) for action, d in decisions if action in write_actions]


# --- a small Identity Center in moto -------------------------------------------------------


@dataclass(frozen=True)
class Org:
    factory: RecordingFactory
    world: World
    instance_arn: str
    identity_store_id: str
    user: str
    group: str
    other_group: str
    assignable_set: str  # a customer's permission set an admin tagged grantflow:assignable
    admin_set: str  # a customer's AdministratorAccess, untagged


@pytest.fixture
def org(boto_session: boto3.Session) -> Org:
    sso, store = boto_session.client("sso-admin"), boto_session.client("identitystore")
    instance = sso.list_instances()["Instances"][0]
    store_id = instance["IdentityStoreId"]
    user = store.create_user(
        IdentityStoreId=store_id,
        UserName="mallory",
        DisplayName="Mallory",
        Name={"GivenName": "Mallory", "FamilyName": "Example"},
    )["UserId"]
    group, other = (
        store.create_group(IdentityStoreId=store_id, DisplayName=name)["GroupId"]
        for name in ("db-readers", "org-admins")
    )
    world = World()

    def permission_set(name: str, tags: dict[str, str]) -> str:
        arn: str = sso.create_permission_set(
            InstanceArn=instance["InstanceArn"],
            Name=name,
            SessionDuration="PT1H",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["PermissionSet"]["PermissionSetArn"]
        world.permission_set_tags[arn] = tags
        return arn

    return Org(
        factory=RecordingFactory(boto_session),
        world=world,
        instance_arn=instance["InstanceArn"],
        identity_store_id=store_id,
        user=user,
        group=group,
        other_group=other,
        assignable_set=permission_set("ReadOnly", ASSIGNABLE),
        admin_set=permission_set("AdministratorAccess", {}),
    )


def _common(o: Org) -> dict[str, str]:
    return {
        "instance_arn": o.instance_arn,
        "identity_store_id": o.identity_store_id,
        "principal_id": o.user,
    }


def _assignment(o: Org, permission_set: str, account: str = MEMBER) -> AccountAssignmentSpec:
    return AccountAssignmentSpec(
        **_common(o), account_id=account, permission_set_arn=permission_set
    )


def _membership(o: Org, group: str) -> GroupMembershipSpec:
    return GroupMembershipSpec(**_common(o), group_id=group)


def _pooled(o: Org, account: str = MEMBER) -> PooledPermissionSetSpec:
    return PooledPermissionSetSpec(
        **_common(o),
        resource_type=PooledResourceType.S3_BUCKET,
        resource_arn=BUCKET_ARN,
        resource_id="payments-exports",
        account_id=account,
        permission=PooledPermission.READ_ONLY,
    )


_SETTINGS = GrantSettings(waiter=Waiter(timeout=30.0, interval=0.05))


def _grant_calls(o: Org, spec: GrantSpec) -> tuple[list[Call], list[Call]]:
    """The calls of granting ``spec`` and of revoking it, recorded against moto."""
    limiter = IdentityCenterLimiter()
    o.factory.take()
    handle = apply_grant(o.factory, spec, limiter, settings=_SETTINGS)
    granted = o.factory.take()
    apply_revoke(o.factory, handle, False, limiter, settings=_SETTINGS)
    return granted, o.factory.take()


# --- what the integration may grant is allowed, every call of it -----------------------------


def test_every_call_of_granting_and_revoking_what_may_be_granted_is_allowed(org: Org) -> None:
    policies = _policies(GrantableGroupIds=org.group)
    decisions = []
    for spec in (_pooled(org), _assignment(org, org.assignable_set), _membership(org, org.group)):
        granted, revoked = _grant_calls(org, spec)
        decisions += _decisions(org.world, granted + revoked, policies)

    refused = [(action, d) for action, d in decisions if d is not ALLOWED]
    assert refused == []
    # The grant code really made every kind of write (so this test cannot pass vacuously),
    # and sent the tag the template requires on the permission set it created.
    assert {action for action, _ in _writes(decisions)} == {
        "sso:CreatePermissionSet",
        "sso:PutInlinePolicyToPermissionSet",
        "sso:ProvisionPermissionSet",
        "sso:CreateAccountAssignment",
        "sso:DeleteAccountAssignment",
        "sso:DeletePermissionSet",
        "identitystore:CreateGroupMembership",
        "identitystore:DeleteGroupMembership",
    }
    assert MANAGED in org.world.permission_set_tags.values()


# --- what it may not grant is refused ----------------------------------------------------------


def test_an_untagged_permission_set_cannot_be_assigned(org: Org) -> None:
    granted, revoked = _grant_calls(org, _assignment(org, org.admin_set))
    decisions = _writes(_decisions(org.world, granted + revoked, _policies()))
    assert decisions == [
        ("sso:CreateAccountAssignment", IMPLICIT),
        ("sso:DeleteAccountAssignment", IMPLICIT),
    ]


@pytest.mark.parametrize("listed", ["", "group"])
def test_only_listed_groups_can_be_granted(org: Org, listed: str) -> None:
    policies = _policies(GrantableGroupIds=org.group if listed else "")
    granted, revoked = _grant_calls(org, _membership(org, org.other_group))
    assert _writes(_decisions(org.world, granted + revoked, policies)) == [
        ("identitystore:CreateGroupMembership", IMPLICIT),
        ("identitystore:DeleteGroupMembership", IMPLICIT),
    ]


def test_the_management_account_is_excluded_unless_an_admin_allows_it(org: Org) -> None:
    granted, revoked = _grant_calls(org, _pooled(org, account=MANAGEMENT))
    writes = _writes(_decisions(org.world, granted, _policies()))
    assert writes == [
        ("sso:CreatePermissionSet", ALLOWED),  # creating touches no account
        ("sso:PutInlinePolicyToPermissionSet", ALLOWED),
        ("sso:ProvisionPermissionSet", EXPLICIT),
        ("sso:CreateAccountAssignment", EXPLICIT),
    ]
    for customer_set in (org.assignable_set, org.admin_set):
        assign = _grant_calls(org, _assignment(org, customer_set, account=MANAGEMENT))[0]
        assert ("sso:CreateAccountAssignment", EXPLICIT) in _decisions(
            org.world, assign, _policies()
        )
    # A grant made while an admin allowed it can still be revoked after the admin stopped.
    assert ("sso:DeleteAccountAssignment", ALLOWED) in _decisions(org.world, revoked, _policies())

    opted_in = _policies(AllowManagementAccountAssignments="true")
    again, _ = _grant_calls(org, _pooled(org, account=MANAGEMENT))
    assert {d for _, d in _decisions(org.world, again, opted_in)} == {ALLOWED}


def _sso(
    action: str, permission_set: Resource, context: dict[str, str | tuple[str, ...]] | None = None
) -> Request:
    instance = Resource("arn:aws:sso:::instance/ssoins-1111111111111111")
    return Request(f"sso:{action}", (instance, permission_set), context or {})


CUSTOMER_SET = Resource("arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-aaaaaaaaaaaaaaaa")
ASSIGNABLE_SET = Resource(CUSTOMER_SET.arn, ASSIGNABLE)
MANAGED_SET = Resource(CUSTOMER_SET.arn, MANAGED)
NEW_SET = Resource("arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-new")


@pytest.mark.parametrize(
    ("request_", "decision"),
    [
        # it cannot tag a customer's permission set (to make it managed or assignable) …
        (_sso("TagResource", CUSTOMER_SET), IMPLICIT),
        (_sso("TagResource", ASSIGNABLE_SET), IMPLICIT),
        # … nor create one without the managed tag, with another tag, or claiming assignable
        (_sso("CreatePermissionSet", NEW_SET), IMPLICIT),
        (
            _sso(
                "CreatePermissionSet",
                NEW_SET,
                {
                    "aws:RequestTag/grantflow:managed": "false",
                    "aws:TagKeys": ("grantflow:managed",),
                },
            ),
            IMPLICIT,
        ),
        (
            _sso(
                "CreatePermissionSet",
                NEW_SET,
                {
                    "aws:RequestTag/grantflow:managed": "true",
                    "aws:RequestTag/grantflow:assignable": "true",
                    "aws:TagKeys": ("grantflow:managed", "grantflow:assignable"),
                },
            ),
            IMPLICIT,
        ),
        (
            _sso(
                "CreatePermissionSet",
                NEW_SET,
                {
                    "aws:RequestTag/grantflow:managed": "true",
                    "aws:TagKeys": ("grantflow:managed",),
                },
            ),
            ALLOWED,
        ),
        # it changes only its own permission sets, never a customer's (opted in or not)
        (_sso("PutInlinePolicyToPermissionSet", ASSIGNABLE_SET), IMPLICIT),
        (_sso("PutInlinePolicyToPermissionSet", CUSTOMER_SET), IMPLICIT),
        (_sso("DeletePermissionSet", ASSIGNABLE_SET), IMPLICIT),
        (_sso("AttachManagedPolicyToPermissionSet", MANAGED_SET), IMPLICIT),
        (_sso("PutInlinePolicyToPermissionSet", MANAGED_SET), ALLOWED),
    ],
)
def test_the_connector_cannot_widen_its_own_scope(request_: Request, decision: Decision) -> None:
    assert evaluate(_policies(GrantableGroupIds=""), request_) is decision


# --- the evaluator: resolves like CloudFormation, decides like IAM ---------------------------


def test_the_resolved_policies_are_what_cloudformation_attaches(aws: MotoServer) -> None:
    """The evaluator's reading of the template equals the policies moto's CloudFormation
    deploys (same intrinsic functions resolved, same conditions)."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    groups = "a1b2c3d4-0000-4000-8000-000000000001,a1b2c3d4-0000-4000-8000-000000000002"
    parameters = {**_stack().parameters, "GrantableGroupIds": groups}
    session.client("cloudformation").create_stack(
        StackName="grantflow",
        TemplateBody=cloudformation.render_template(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    iam = session.client("iam")
    deployed = []
    role = registry.MANAGEMENT_ROLE_NAME
    for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)
        deployed.append(document["PolicyVersion"]["Document"])

    def canonical(documents: list[Any]) -> list[str]:
        loaded = [json.loads(d) if isinstance(d, str) else d for d in documents]
        return sorted(json.dumps(d, sort_keys=True) for d in loaded)

    assert canonical(deployed) == canonical(_policies(GrantableGroupIds=groups))


def _allow(resource: str | list[str], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "sso:Create*", "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return {"Statement": [statement]}


def test_every_resource_of_a_request_must_be_allowed() -> None:
    ps = Resource("arn:aws:sso:::permissionSet/i/ps-1", {"team": "a"})
    account = Resource("arn:aws:sso:::account/1")
    request = Request("sso:CreateAccountAssignment", (ps, account))
    tagged = _allow(
        "arn:aws:sso:::permissionSet/*", {"StringEquals": {"aws:ResourceTag/team": "a"}}
    )
    accounts = _allow("arn:aws:sso:::account/*")
    assert evaluate([tagged], request) is IMPLICIT
    assert evaluate([tagged, accounts], request) is ALLOWED
    other_team = Request(request.action, (Resource(ps.arn, {"team": "b"}), account))
    assert evaluate([tagged, accounts], other_team) is IMPLICIT
    deny = {"Statement": [{"Effect": "Deny", "Action": "sso:*", "Resource": account.arn}]}
    assert evaluate([tagged, accounts, deny], request) is EXPLICIT


def test_the_evaluator_refuses_what_it_does_not_model() -> None:
    request = Request("sso:CreatePermissionSet", (NEW_SET,))
    with pytest.raises(UnsupportedPolicy):
        evaluate([_allow("*", {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}})], request)
    with pytest.raises(UnsupportedPolicy):
        evaluate(
            [{"Statement": [{"Effect": "Allow", "NotAction": "x:*", "Resource": "*"}]}], request
        )
    keys = {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}
    assert evaluate([_allow("*", keys)], request) is ALLOWED  # no tags: ForAllValues holds
