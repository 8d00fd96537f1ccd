"""The floor of a discovery sync: a bare boto3 script reading what Grantflow's sync reads.

It makes the calls the walk cannot do without — its count is the *minimum* a sync's calls are
compared with — through the same role chain (the connector role, the management role with
the external id, each member role) and with the same concurrency (one thread per account,
``workers`` at a time), and times them:

* the organization: ``DescribeOrganization``, ``ListRoots``, per parent outside the excluded
  OUs ``ListAccountsForParent`` and ``ListOrganizationalUnitsForParent`` (per page),
  ``ListAccounts`` (the count of excluded accounts the summary reports) and, per account,
  ``ListTagsForResource`` (the ``aws-account`` record's tags);
* Identity Center: ``ListInstances``, ``ListPermissionSets`` + ``DescribePermissionSet`` each,
  ``ListUsers``, ``ListGroups`` + ``ListGroupMemberships`` each;
* per active account: ``AssumeRole`` of its member role, ``ListRoles`` + ``ListRoleTags`` per
  role except Grantflow's own, ``ListBuckets`` + ``GetBucketLocation`` and ``GetBucketTagging``
  per bucket, and per region ``DescribeInstances`` (+ ``DescribeInstanceInformation`` when the
  region has an instance; not again once SSM answered with an error), ``DescribeDBInstances``
  and ``DescribeDBClusters``.

Every paginated call counts once per page. Nothing is parsed into records: it only lists.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.sync_org import CachedOrg
from grantflow.aws.discovery.iam_roles import GRANTFLOW_ROLE_NAMES, RESERVED_SSO_PREFIX
from grantflow.aws.registry import MEMBER_ROLE_NAME

_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5})
_SKIPPED_STATES = ("terminated", "shutting-down")


@dataclass
class Floor:
    seconds: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ssm_failed: bool = False

    def count(self, op: str, n: int = 1) -> None:
        with self._lock:
            self.calls[op] += n

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class _Creds:
    """Clients of one identity, cached per (service, region). Each thread makes its clients
    from its own boto3 session (sessions are not thread safe), which reads each service model
    once: what a careful script does, and what Grantflow's shared loader does."""

    def __init__(self, creds: dict[str, Any] | None) -> None:
        keys = creds or {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
        self._keys = {"aws_access_key_id": keys["AccessKeyId"],
                      "aws_secret_access_key": keys["SecretAccessKey"],
                      "aws_session_token": keys.get("SessionToken")}  # fmt: skip
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region_name: str = "us-east-1") -> Any:
        key = (service, region_name)
        if key not in self._clients:
            session = getattr(_LOCAL, "session", None)
            if session is None:
                session = _LOCAL.session = boto3.Session(region_name="us-east-1")
            self._clients[key] = session.client(
                service, region_name=region_name, config=_CONFIG, **self._keys
            )
        return self._clients[key]


_LOCAL = threading.local()


def _assume(session: _Creds, floor: Floor, role: str, external_id: str | None) -> Any:
    params = {"RoleArn": role, "RoleSessionName": "floor"}
    if external_id:
        params["ExternalId"] = external_id
    floor.count("sts:AssumeRole")
    return session.client("sts").assume_role(**params)["Credentials"]


def _pages(client: Any, op: str, floor: Floor, name: str, **params: Any) -> list[dict[str, Any]]:
    pages = list(client.get_paginator(op).paginate(**params))
    floor.count(name, len(pages))
    return pages


def _walk(orgs: Any, org: CachedOrg, floor: Floor) -> list[tuple[str, str]]:
    """(account id, status) of every account outside the excluded OUs."""
    orgs.describe_organization()
    floor.count("organizations:DescribeOrganization")
    root = _pages(orgs, "list_roots", floor, "organizations:ListRoots")[0]["Roots"][0]["Id"]
    found: list[tuple[str, str]] = []
    stack = [root]
    while stack:
        parent = stack.pop()
        for page in _pages(orgs, "list_accounts_for_parent", floor,
                           "organizations:ListAccountsForParent", ParentId=parent):  # fmt: skip
            found.extend((a["Id"], a.get("State") or a["Status"]) for a in page["Accounts"])
        for page in _pages(orgs, "list_organizational_units_for_parent", floor,
                           "organizations:ListOrganizationalUnitsForParent", ParentId=parent):  # fmt: skip
            stack.extend(o["Id"] for o in page["OrganizationalUnits"]
                         if o["Id"] not in org.excluded_ou_ids)  # fmt: skip
    _pages(orgs, "list_accounts", floor, "organizations:ListAccounts")
    return found


def _identity_center(session: _Creds, org: CachedOrg, floor: Floor) -> None:
    sso = session.client("sso-admin", region_name=org.sso_region)
    pages = _pages(sso, "list_instances", floor, "sso-admin:ListInstances")
    instance = pages[0]["Instances"][0]
    for page in _pages(sso, "list_permission_sets", floor, "sso-admin:ListPermissionSets",
                       InstanceArn=instance["InstanceArn"]):  # fmt: skip
        for arn in page["PermissionSets"]:
            sso.describe_permission_set(InstanceArn=instance["InstanceArn"], PermissionSetArn=arn)
            floor.count("sso-admin:DescribePermissionSet")
    store = session.client("identitystore", region_name=org.sso_region)
    store_id = instance["IdentityStoreId"]
    _pages(store, "list_users", floor, "identitystore:ListUsers", IdentityStoreId=store_id)
    for page in _pages(store, "list_groups", floor, "identitystore:ListGroups",
                       IdentityStoreId=store_id):  # fmt: skip
        for group in page["Groups"]:
            _pages(store, "list_group_memberships", floor, "identitystore:ListGroupMemberships",
                   IdentityStoreId=store_id, GroupId=group["GroupId"])  # fmt: skip


def _account(management: Any, org: CachedOrg, floor: Floor, account: tuple[str, str]) -> None:
    account_id, status = account
    orgs = management.client("organizations")
    _pages(orgs, "list_tags_for_resource", floor, "organizations:ListTagsForResource",
           ResourceId=account_id)  # fmt: skip
    if status != "ACTIVE":
        return
    role = f"arn:aws:iam::{account_id}:role/{MEMBER_ROLE_NAME}"
    member = _Creds(_assume(management, floor, role, None))
    iam = member.client("iam")
    own = GRANTFLOW_ROLE_NAMES
    for page in _pages(iam, "list_roles", floor, "iam:ListRoles"):
        for r in page["Roles"]:
            grantable = not r.get("Path", "/").startswith(("/aws-service-role/", "/aws-reserved/"))
            if (
                grantable
                and r["RoleName"] not in own
                and not r["RoleName"].startswith(RESERVED_SSO_PREFIX)
            ):
                _pages(iam, "list_role_tags", floor, "iam:ListRoleTags", RoleName=r["RoleName"])
    s3 = member.client("s3")
    for page in _pages(s3, "list_buckets", floor, "s3:ListBuckets"):
        for bucket in page["Buckets"]:
            where = s3.get_bucket_location(Bucket=bucket["Name"]).get("LocationConstraint")
            floor.count("s3:GetBucketLocation")
            regional = member.client("s3", region_name=where or "us-east-1")
            floor.count("s3:GetBucketTagging")
            try:
                regional.get_bucket_tagging(Bucket=bucket["Name"])
            except ClientError as err:
                if err.response["Error"]["Code"] != "NoSuchTagSet":
                    raise
    for region in org.regions:
        ec2 = member.client("ec2", region_name=region)
        live = [i for p in _pages(ec2, "describe_instances", floor, "ec2:DescribeInstances")
                for r in p["Reservations"] for i in r["Instances"]
                if i.get("State", {}).get("Name") not in _SKIPPED_STATES]  # fmt: skip
        if live and not floor._ssm_failed:
            ssm = member.client("ssm", region_name=region)
            try:
                _pages(ssm, "describe_instance_information", floor,
                       "ssm:DescribeInstanceInformation")  # fmt: skip
            except ClientError:
                floor.count("ssm:DescribeInstanceInformation")
                floor._ssm_failed = True
        rds = member.client("rds", region_name=region)
        _pages(rds, "describe_db_instances", floor, "rds:DescribeDBInstances")
        _pages(rds, "describe_db_clusters", floor, "rds:DescribeDBClusters")


def run_floor(org: CachedOrg, external_id: str, workers: int = 8) -> Floor:
    """Read the organization the way the sync does (see module), timed."""
    floor = Floor()
    started = time.perf_counter()
    # The connector's own chain (its role, then the management role): a sync's summary
    # counts from the management role on, so these two calls are not part of the minimum.
    chain = Floor()
    connector = _Creds(_assume(_Creds(None), chain, org.connector_role_arn, None))
    management = _Creds(_assume(connector, chain, org.management_role_arn, external_id))
    accounts = _walk(management.client("organizations"), org, floor)
    _identity_center(management, org, floor)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda a: _account(management, org, floor, a), accounts))
    floor.seconds = time.perf_counter() - started
    return floor
