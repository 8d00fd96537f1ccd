"""A small Identity Center in the per-test moto server, and a fake clock.

Built directly (not with ``small_org``) because granting needs only an instance, a few users,
a group and a customer permission set, and the full demo organization takes many seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3
import pytest
from botocore.client import BaseClient

from grantflow.aws.grants import GrantSettings
from grantflow.aws.identity_center import Waiter
from grantflow.aws.rate_limit import IdentityCenterLimiter
from grantflow.aws.session import ClientFactory
from grantflow.domain.grant_specs import Assignment

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"


@dataclass
class FakeClock:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class Directory:
    factory: ClientFactory
    admin: ClientFactory  # a separate factory for setup and read-back, not counted
    instance_arn: str
    identity_store_id: str
    users: tuple[str, ...]
    group_id: str
    permission_set_arn: str  # a customer's own permission set

    @property
    def sso(self) -> BaseClient:
        return self.admin.client("sso-admin")

    @property
    def store(self) -> BaseClient:
        return self.admin.client("identitystore")

    def assignments(self, account: str, permission_set_arn: str) -> list[Assignment]:
        """Every USER assignment row AWS lists (a list: duplicates would show)."""
        pages = self.sso.get_paginator("list_account_assignments").paginate(
            InstanceArn=self.instance_arn, AccountId=account, PermissionSetArn=permission_set_arn
        )
        return [
            Assignment(row["AccountId"], row["PermissionSetArn"], row["PrincipalId"])
            for page in pages
            for row in page["AccountAssignments"]
            if row["PrincipalType"] == "USER"
        ]

    def permission_sets(self) -> set[str]:
        pages = self.sso.get_paginator("list_permission_sets").paginate(
            InstanceArn=self.instance_arn
        )
        return {arn for page in pages for arn in page["PermissionSets"]}

    def members(self) -> set[str]:
        pages = self.store.get_paginator("list_group_memberships").paginate(
            IdentityStoreId=self.identity_store_id, GroupId=self.group_id
        )
        return {m["MemberId"]["UserId"] for page in pages for m in page["GroupMemberships"]}


@pytest.fixture
def directory(boto_session: boto3.Session) -> Directory:
    admin = ClientFactory(boto_session)
    instance = admin.client("sso-admin").list_instances()["Instances"][0]
    store_id = instance["IdentityStoreId"]
    store = admin.client("identitystore")
    users = tuple(
        store.create_user(
            IdentityStoreId=store_id,
            UserName=name,
            DisplayName=name.title(),
            Name={"GivenName": name.title(), "FamilyName": "Example"},
        )["UserId"]
        for name in ("alice", "bob", "carol")
    )
    group_id = store.create_group(IdentityStoreId=store_id, DisplayName="db-admins")["GroupId"]
    permission_set = admin.client("sso-admin").create_permission_set(
        InstanceArn=instance["InstanceArn"], Name="ReadOnly", SessionDuration="PT1H"
    )["PermissionSet"]["PermissionSetArn"]
    return Directory(
        factory=ClientFactory(boto_session),
        admin=admin,
        instance_arn=instance["InstanceArn"],
        identity_store_id=store_id,
        users=users,
        group_id=group_id,
        permission_set_arn=permission_set,
    )


@pytest.fixture
def limiter() -> IdentityCenterLimiter:
    return IdentityCenterLimiter()


@pytest.fixture
def settings() -> GrantSettings:
    return GrantSettings(waiter=Waiter(timeout=30.0, interval=0.05))
