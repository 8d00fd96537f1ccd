"""IAM Identity Center for the demo: users, groups, memberships, permission sets, assignments.

moto creates one Identity Center instance per (account, region) as soon as its sso-admin
backend exists, so ``list_instances`` in the SSO region of the management account finds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from grantflow.demo.org_clients import AccountClients
from grantflow.demo.org_plan import OrgPlan
from grantflow.demo.org_shape import PERMISSION_SETS
from grantflow.demo.org_summary import (
    AccountAssignment,
    AccountStatus,
    DirectoryGroup,
    DirectoryUser,
    OrgAccount,
    PermissionSetInfo,
    PrincipalType,
)

ENTERPRISE_EXTENSION = "aws:identitystore:enterprise"


@dataclass(frozen=True)
class IdentityCenter:
    instance_arn: str
    identity_store_id: str
    users: tuple[DirectoryUser, ...]
    groups: tuple[DirectoryGroup, ...]
    permission_sets: tuple[PermissionSetInfo, ...]
    assignments: tuple[AccountAssignment, ...]


def build_identity_center(
    clients: AccountClients, region: str, plan: OrgPlan, accounts: Sequence[OrgAccount]
) -> IdentityCenter:
    sso = clients.client("sso-admin", region)
    instances = sso.list_instances()["Instances"]
    if not instances:
        raise LookupError("no IAM Identity Center instance in the management account")
    instance_arn: str = instances[0]["InstanceArn"]
    store_id: str = instances[0]["IdentityStoreId"]
    store = clients.client("identitystore", region)

    users: list[DirectoryUser] = []
    for planned in plan.users:
        user_id = store.create_user(
            IdentityStoreId=store_id,
            UserName=planned.username,
            DisplayName=planned.display_name,
            Name={"GivenName": planned.given_name, "FamilyName": planned.family_name},
            Emails=[{"Value": planned.email, "Type": "work", "Primary": True}],
            Title=planned.title,
            UserType="Employee",
            Extensions={ENTERPRISE_EXTENSION: {"department": planned.department}},
        )["UserId"]
        users.append(
            DirectoryUser(
                user_id,
                planned.username,
                planned.email,
                planned.display_name,
                planned.given_name,
                planned.family_name,
                planned.title,
                planned.department,
            )
        )
    user_ids = {user.username: user.user_id for user in users}

    groups: list[DirectoryGroup] = []
    for planned_group in plan.groups:
        group_id = store.create_group(
            IdentityStoreId=store_id,
            DisplayName=planned_group.name,
            Description=planned_group.description,
        )["GroupId"]
        members = tuple(sorted(u.username for u in plan.users if planned_group.name in u.groups))
        for username in members:
            store.create_group_membership(
                IdentityStoreId=store_id, GroupId=group_id, MemberId={"UserId": user_ids[username]}
            )
        groups.append(
            DirectoryGroup(group_id, planned_group.name, planned_group.description, members)
        )

    permission_sets: list[PermissionSetInfo] = []
    for name, policy_arn in PERMISSION_SETS.items():
        arn = sso.create_permission_set(
            InstanceArn=instance_arn,
            Name=name,
            Description=f"AWS managed policy {name}",
            SessionDuration="PT4H",
        )["PermissionSet"]["PermissionSetArn"]
        attached = _attach_managed_policy(sso, instance_arn, arn, policy_arn)
        permission_sets.append(PermissionSetInfo(name, arn, attached))

    assignments = _planned_assignments(accounts, users, groups)
    ps_arns = {ps.name: ps.arn for ps in permission_sets}
    for assignment in assignments:
        sso.create_account_assignment(
            InstanceArn=instance_arn,
            TargetId=assignment.account_id,
            TargetType="AWS_ACCOUNT",
            PermissionSetArn=ps_arns[assignment.permission_set_name],
            PrincipalType=assignment.principal_type.value,
            PrincipalId=assignment.principal_id,
        )
    return IdentityCenter(
        instance_arn, store_id, tuple(users), tuple(groups), tuple(permission_sets), assignments
    )


def _attach_managed_policy(
    sso: Any, instance_arn: str, permission_set_arn: str, policy_arn: str
) -> str:
    """Attach an AWS managed policy; returns the ARN that was attached.

    moto 5.2.5 looks managed policies up by name and ignores their path, so it rejects
    ``arn:aws:iam::aws:policy/job-function/Billing`` and accepts only ``.../policy/Billing``.
    """
    try:
        sso.attach_managed_policy_to_permission_set(
            InstanceArn=instance_arn,
            PermissionSetArn=permission_set_arn,
            ManagedPolicyArn=policy_arn,
        )
        return policy_arn
    except ClientError as err:
        pathless = f"{policy_arn.split(':policy/', 1)[0]}:policy/{policy_arn.rsplit('/', 1)[1]}"
        if err.response["Error"]["Code"] != "ResourceNotFoundException" or pathless == policy_arn:
            raise
    sso.attach_managed_policy_to_permission_set(
        InstanceArn=instance_arn, PermissionSetArn=permission_set_arn, ManagedPolicyArn=pathless
    )
    return pathless


def _planned_assignments(
    accounts: Sequence[OrgAccount], users: Sequence[DirectoryUser], groups: Sequence[DirectoryGroup]
) -> tuple[AccountAssignment, ...]:
    """Standing access that existed before Grantflow (which must never revoke it).

    security has ReadOnlyAccess on every Prod account, finance has Billing on the management
    account, and the first engineer has PowerUserAccess on the first active Staging account.
    """
    by_group = {group.name: group for group in groups}
    result: list[AccountAssignment] = []
    security = by_group["security"]
    for account in accounts:
        if "/Prod/" in account.ou_path and account.status is AccountStatus.ACTIVE:
            result.append(
                AccountAssignment(
                    account.id, "ReadOnlyAccess", PrincipalType.GROUP, "security", security.group_id
                )
            )
    finance = by_group["finance"]
    management = next(account for account in accounts if account.management)
    result.append(
        AccountAssignment(
            management.id, "Billing", PrincipalType.GROUP, "finance", finance.group_id
        )
    )
    staging = [a for a in accounts if "/Staging/" in a.ou_path and a.status is AccountStatus.ACTIVE]
    if staging and users:
        user = users[0]
        result.append(
            AccountAssignment(
                staging[0].id, "PowerUserAccess", PrincipalType.USER, user.username, user.user_id
            )
        )
    return tuple(result)
