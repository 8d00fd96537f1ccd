"""The emulated AWS Organization: what build_org promises, read back from the moto server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest

from grantflow.demo.moto_server import MotoServer
from grantflow.demo.org_plan import plan_org
from grantflow.demo.org_shape import PERMISSION_SETS, OrgShape, ResourceType
from grantflow.demo.org_summary import AccountStatus, OrgSummary
from tests.fixtures.org import OrgFactory


def _paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[Any]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page[key]


def _member_session(management: boto3.Session, account_id: str) -> boto3.Session:
    credentials = management.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="test-reader",
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name="us-east-1",
    )


def _ou_tree(orgs: Any, root_id: str) -> set[tuple[str, str]]:
    """(path, OU id) for every OU below the root, walked with paginators."""
    found: set[tuple[str, str]] = set()
    pending = [("Root", root_id)]
    while pending:
        path, parent = pending.pop()
        for ou in _paginate(
            orgs, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent
        ):
            child = (f"{path}/{ou['Name']}", ou["Id"])
            found.add(child)
            pending.append(child)
    return found


def _tags(raw: list[dict[str, str]] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((tag["Key"], tag["Value"]) for tag in raw or []))


def _read_resources(session: boto3.Session, account_id: str, regions: tuple[str, ...]) -> set[Any]:
    """(account, region, type, id, name, tags) for every resource of one account."""
    found: set[Any] = set()
    iam = session.client("iam")
    for role in _paginate(iam, "list_roles", "Roles"):
        tags = iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
        found.add(
            (
                account_id,
                None,
                ResourceType.IAM_ROLE,
                role["RoleName"],
                role["RoleName"],
                _tags(tags),
            )
        )
    s3 = session.client("s3")
    for bucket in _paginate(s3, "list_buckets", "Buckets"):
        name = bucket["Name"]
        region = s3.get_bucket_location(Bucket=name)["LocationConstraint"] or "us-east-1"
        tags = s3.get_bucket_tagging(Bucket=name)["TagSet"]
        found.add((account_id, region, ResourceType.S3_BUCKET, name, name, _tags(tags)))
    for region in regions:
        ec2 = session.client("ec2", region_name=region)
        for reservation in _paginate(ec2, "describe_instances", "Reservations"):
            for instance in reservation["Instances"]:
                tags = _tags(instance.get("Tags"))
                name = dict(tags)["Name"]
                found.add(
                    (
                        account_id,
                        region,
                        ResourceType.EC2_INSTANCE,
                        instance["InstanceId"],
                        name,
                        tags,
                    )
                )
        rds = session.client("rds", region_name=region)
        for db in _paginate(rds, "describe_db_instances", "DBInstances"):
            ident = db["DBInstanceIdentifier"]
            found.add(
                (
                    account_id,
                    region,
                    ResourceType.RDS_INSTANCE,
                    ident,
                    ident,
                    _tags(db.get("TagList")),
                )
            )
        for cluster in _paginate(rds, "describe_db_clusters", "DBClusters"):
            ident = cluster["DBClusterIdentifier"]
            found.add(
                (
                    account_id,
                    region,
                    ResourceType.RDS_CLUSTER,
                    ident,
                    ident,
                    _tags(cluster.get("TagList")),
                )
            )
    return found


def _structure(org: OrgSummary) -> tuple[Any, ...]:
    """Everything about an organization except the ids moto draws for resources."""
    names = {account.id: account.name for account in org.accounts}
    return (
        sorted((a.name, a.email, a.ou_path, a.status) for a in org.accounts),
        sorted(ou.path for ou in org.ous),
        sorted((u.username, u.email, u.display_name, u.title, u.department) for u in org.users),
        sorted((g.name, g.members) for g in org.groups),
        sorted(
            (names[r.account_id], r.region or "", r.type, r.name, r.tags) for r in org.resources
        ),
        sorted(
            (names[a.account_id], a.permission_set_name, a.principal_name) for a in org.assignments
        ),
    )


def test_small_org_accounts_and_ous_read_back(
    small_org: OrgSummary, boto_session: boto3.Session
) -> None:
    orgs = boto_session.client("organizations")
    assert orgs.describe_organization()["Organization"]["Id"] == small_org.organization_id

    tree = _ou_tree(orgs, small_org.root_id)
    assert tree == {(ou.path, ou.id) for ou in small_org.ous}
    assert max(path.count("/") for path, _ in tree) >= 3  # Root/Workloads/Prod/platform

    accounts = {
        (a["Id"], a["Name"], a["Email"], a["Status"])
        for a in _paginate(orgs, "list_accounts", "Accounts")
    }
    assert accounts == {(a.id, a.name, a.email, a.status.value) for a in small_org.accounts}

    placement = {
        (ou.path, a["Id"])
        for ou in small_org.ous
        for a in _paginate(orgs, "list_accounts_for_parent", "Accounts", ParentId=ou.id)
    }
    assert placement == {(a.ou_path, a.id) for a in small_org.member_accounts}

    suspended = {
        a["Id"] for a in _paginate(orgs, "list_accounts", "Accounts") if a["Status"] == "SUSPENDED"
    }
    assert suspended == set(small_org.suspended_account_ids)
    assert len(suspended) == 1

    (excluded,) = small_org.excluded_ou_ids
    in_excluded = list(_paginate(orgs, "list_accounts_for_parent", "Accounts", ParentId=excluded))
    assert len(in_excluded) >= 2
    assert {a["Id"] for a in in_excluded} == small_org.excluded_account_ids
    assert (
        small_org.synced_account_ids
        == {a.id for a in small_org.accounts if a.status is AccountStatus.ACTIVE}
        - small_org.excluded_account_ids
    )


def test_small_org_identity_center_reads_back(
    small_org: OrgSummary, boto_session: boto3.Session
) -> None:
    sso = boto_session.client("sso-admin", region_name=small_org.sso_region)
    store = boto_session.client("identitystore", region_name=small_org.sso_region)
    (instance,) = sso.list_instances()["Instances"]
    assert (instance["InstanceArn"], instance["IdentityStoreId"]) == (
        small_org.instance_arn,
        small_org.identity_store_id,
    )
    store_id = small_org.identity_store_id

    users = {
        (u["UserId"], u["UserName"], u["DisplayName"], u["Emails"][0]["Value"], u["Title"])
        for u in _paginate(store, "list_users", "Users", IdentityStoreId=store_id)
    }
    assert users == {
        (u.user_id, u.username, u.display_name, u.email, u.title) for u in small_org.users
    }
    assert ("alice", "alice@example.com") in {(u.username, u.email) for u in small_org.users}

    groups = {
        (g["GroupId"], g["DisplayName"])
        for g in _paginate(store, "list_groups", "Groups", IdentityStoreId=store_id)
    }
    assert groups == {(g.group_id, g.name) for g in small_org.groups}

    usernames = {u.user_id: u.username for u in small_org.users}
    memberships = {
        (group.name, usernames[m["MemberId"]["UserId"]])
        for group in small_org.groups
        for m in _paginate(
            store,
            "list_group_memberships",
            "GroupMemberships",
            IdentityStoreId=store_id,
            GroupId=group.group_id,
        )
    }
    assert memberships == {(g.name, member) for g in small_org.groups for member in g.members}
    assert all(g.members for g in small_org.groups)

    arns = list(
        _paginate(sso, "list_permission_sets", "PermissionSets", InstanceArn=small_org.instance_arn)
    )
    permission_sets = {
        (
            sso.describe_permission_set(InstanceArn=small_org.instance_arn, PermissionSetArn=arn)[
                "PermissionSet"
            ]["Name"],
            arn,
            policy["Name"],
        )
        for arn in arns
        for policy in _paginate(
            sso,
            "list_managed_policies_in_permission_set",
            "AttachedManagedPolicies",
            InstanceArn=small_org.instance_arn,
            PermissionSetArn=arn,
        )
    }
    assert permission_sets == {(ps.name, ps.arn, ps.name) for ps in small_org.permission_sets}
    assert {ps.name for ps in small_org.permission_sets} == set(PERMISSION_SETS)

    assignments = {
        (a["AccountId"], ps.name, a["PrincipalType"], a["PrincipalId"])
        for account in small_org.accounts
        for ps in small_org.permission_sets
        for a in _paginate(
            sso,
            "list_account_assignments",
            "AccountAssignments",
            InstanceArn=small_org.instance_arn,
            AccountId=account.id,
            PermissionSetArn=ps.arn,
        )
    }
    expected = {
        (a.account_id, a.permission_set_name, a.principal_type.value, a.principal_id)
        for a in small_org.assignments
    }
    assert assignments == expected
    assert {a.principal_type.value for a in small_org.assignments} == {"USER", "GROUP"}


def test_small_org_resources_read_back(small_org: OrgSummary, boto_session: boto3.Session) -> None:
    found: set[Any] = set()
    for account in small_org.member_accounts:
        session = _member_session(boto_session, account.id)
        found |= _read_resources(session, account.id, small_org.regions)
    expected = {(r.account_id, r.region, r.type, r.id, r.name, r.tags) for r in small_org.resources}
    assert found == expected

    built = small_org.resources_in(include_builtin=False)
    assert {r.type for r in built} == set(ResourceType)
    assert {r.region for r in built if r.region} == {"us-east-1", "eu-west-1"}
    owners = {r.tag("owner") for r in built}
    assert None in owners
    assert owners - {None} <= {g.name for g in small_org.groups}
    assert len([r for r in built if r.tag("owner")]) > len(built) / 2
    assert not small_org.resources_in(small_org.suspended_account_ids, include_builtin=False)
    assert small_org.resources_in(small_org.excluded_account_ids, include_builtin=False)


def test_same_seed_same_organization(org_factory: OrgFactory, aws: MotoServer) -> None:
    shape = OrgShape.small()
    first = org_factory(shape, seed=11)
    aws.reset()
    second = org_factory(shape, seed=11)
    assert _structure(first) == _structure(second)
    # moto's own generator is seeded too: control-plane ids repeat on a fresh server.
    assert [(a.id, a.name) for a in first.accounts] == [(a.id, a.name) for a in second.accounts]
    assert [(ou.id, ou.path) for ou in first.ous] == [(ou.id, ou.path) for ou in second.ous]
    assert first.organization_id == second.organization_id


def test_plan_depends_on_the_seed() -> None:
    shape = OrgShape.demo()
    assert plan_org(shape, 1) == plan_org(shape, 1)
    assert plan_org(shape, 1) != plan_org(shape, 2)


def test_shape_rejects_impossible_parameters() -> None:
    with pytest.raises(ValueError, match="unknown teams"):
        replace(OrgShape.small(), teams=("marketing",))
    with pytest.raises(ValueError, match="too few member accounts"):
        replace(OrgShape.small(), member_accounts=4)


def test_render_summarises_counts(small_org: OrgSummary) -> None:
    text = small_org.render()
    assert f"{len(small_org.member_accounts)} member accounts in {len(small_org.ous)} OUs" in text
    assert f"{len(small_org.users)} users, {len(small_org.groups)} groups" in text
    assert "Root/Sandbox" in text
    assert len(text.splitlines()) <= 6


@pytest.mark.slow
def test_demo_shape_pages_and_scale(org_factory: OrgFactory, boto_session: boto3.Session) -> None:
    demo = org_factory(OrgShape.demo())
    assert len(demo.member_accounts) >= 25
    assert len(demo.users) >= 12 and len(demo.groups) >= 5
    assert len(demo.excluded_account_ids) >= 3

    orgs = boto_session.client("organizations")
    # AWS returns at most 20 accounts a page; moto's default page is 100, so ask for 20.
    pages = list(orgs.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 20}))
    assert len(pages) >= 2
    listed = [a["Id"] for page in pages for a in page["Accounts"]]
    assert sorted(listed) == sorted(a.id for a in demo.accounts)

    tree = _ou_tree(orgs, demo.root_id)
    assert {path for path, _ in tree} >= {
        "Root/Workloads/Prod/payments",
        "Root/Workloads/Staging/data",
        "Root/Sandbox",
    }

    store = boto_session.client("identitystore", region_name=demo.sso_region)
    users = list(_paginate(store, "list_users", "Users", IdentityStoreId=demo.identity_store_id))
    assert len(users) == len(demo.users)
    regions = {r.region for r in demo.resources if r.region}
    assert regions == {"us-east-1", "eu-west-1"}
